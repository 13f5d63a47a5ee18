//! Field types: what a value must look like, and the one canonical form it is stored in.
//!
//! Normalizing at ingest matters twice over: blind indexes hash exact strings, so
//! `Alice@Example.COM` and `alice@example.com` must become the same bytes before hashing; and
//! a value that was valid once must stay valid, so every normalized value re-validates to
//! itself.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, UtcOffset};

use crate::error::ValueError;

/// Longest `string` value, in characters, when the field sets no `max_length`.
pub const DEFAULT_MAX_LENGTH: usize = 4096;

/// Largest `json` value, in bytes of compact JSON; larger documents belong in object storage.
pub const MAX_JSON_BYTES: usize = 65_536;

/// Longest accepted decimal string; beyond this it is not an amount but a payload.
const MAX_DECIMAL_CHARS: usize = 64;

/// The type of a field, as written in the policy (`type = "email"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Free text without control characters other than newline and tab.
    String,
    /// An e-mail address; the domain is lower-cased.
    Email,
    /// An E.164 phone number, stored as `+` and digits.
    Phone,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An RFC 3339 timestamp, stored in UTC with a `Z` suffix.
    Datetime,
    /// An IPv4 or IPv6 address in canonical form.
    Ip,
    /// An ISO 3166-1 alpha-2 country code, upper-case.
    Country,
    /// A basic BCP 47 language tag such as `fr`, `pt-BR` or `zh-Hant-TW`.
    Language,
    /// A point `{"lat": …, "lon": …}` in degrees.
    Geo,
    /// A JSON integer that fits in 64 bits.
    Integer,
    /// A JSON number, or a decimal string such as `"12.50"` when precision matters (money).
    Decimal,
    /// `true` or `false`.
    Bool,
    /// Any JSON document up to [`MAX_JSON_BYTES`].
    Json,
}

impl FieldType {
    /// Every type, for documentation and exhaustive tests.
    pub const ALL: [Self; 13] = [
        Self::String,
        Self::Email,
        Self::Phone,
        Self::Date,
        Self::Datetime,
        Self::Ip,
        Self::Country,
        Self::Language,
        Self::Geo,
        Self::Integer,
        Self::Decimal,
        Self::Bool,
        Self::Json,
    ];

    /// The name used in the policy file.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Date => "date",
            Self::Datetime => "datetime",
            Self::Ip => "ip",
            Self::Country => "country",
            Self::Language => "language",
            Self::Geo => "geo",
            Self::Integer => "integer",
            Self::Decimal => "decimal",
            Self::Bool => "bool",
            Self::Json => "json",
        }
    }

    /// Checks a value and returns its canonical form, with the default string length limit.
    ///
    /// Validation never echoes the value in the error, because the value is personal data.
    pub fn validate(&self, v: &Value) -> Result<Value, ValueError> {
        self.validate_with_limit(v, DEFAULT_MAX_LENGTH)
    }

    /// Whether an exact-match blind index makes sense. Structured values (json, geo) have no
    /// single canonical string a client would search for.
    pub fn is_searchable_kind(&self) -> bool {
        !matches!(self, Self::Json | Self::Geo)
    }

    /// Whether a retention period can be counted from a field of this type.
    pub fn is_temporal(&self) -> bool {
        matches!(self, Self::Date | Self::Datetime)
    }

    /// Like [`Self::validate`], with `max_chars` as the limit for `string` values (the field's
    /// `max_length`).
    pub(crate) fn validate_with_limit(
        &self,
        v: &Value,
        max_chars: usize,
    ) -> Result<Value, ValueError> {
        match self {
            Self::String => string(v, max_chars).map(Value::String),
            Self::Email => email(text(v, "an e-mail address")?).map(Value::String),
            Self::Phone => phone(text(v, "a phone number")?).map(Value::String),
            Self::Date => date(text(v, "a date")?).map(Value::String),
            Self::Datetime => datetime(text(v, "a date and time")?).map(Value::String),
            Self::Ip => ip(text(v, "an IP address")?).map(Value::String),
            Self::Country => country(text(v, "a country code")?).map(Value::String),
            Self::Language => language(text(v, "a language tag")?).map(Value::String),
            Self::Geo => geo(v),
            Self::Integer => match v.as_i64() {
                Some(n) => Ok(Value::from(n)),
                None if v.is_number() => Err(ValueError::new(
                    "invalid_integer",
                    "expected a whole number between -2^63 and 2^63-1",
                )),
                None => Err(wrong_type(v, "an integer")),
            },
            Self::Decimal => decimal(v),
            Self::Bool => match v {
                Value::Bool(_) => Ok(v.clone()),
                _ => Err(wrong_type(v, "true or false")),
            },
            Self::Json => {
                let size = serde_json::to_vec(v)
                    .map(|bytes| bytes.len())
                    .unwrap_or(usize::MAX);
                if size > MAX_JSON_BYTES {
                    Err(ValueError::new(
                        "too_large",
                        format!("JSON values are limited to {MAX_JSON_BYTES} bytes"),
                    ))
                } else {
                    Ok(v.clone())
                }
            }
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FieldType {
    type Err = String;

    /// Parses the policy-file name; the error lists the valid names for the diagnostic.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|ty| ty.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(Self::as_str).collect();
                format!(
                    "unknown field type `{s}`; expected one of: {}",
                    names.join(", ")
                )
            })
    }
}

/// The exact string a blind index hashes for a normalized value.
///
/// Two values a person would call "the same" must map to the same string: e-mails compare
/// case-insensitively (lower-cased whole), decimals compare numerically (`12.50`, `12.5` and
/// the JSON number `12.5` all become `12.5`). Other types are already canonical after
/// [`FieldType::validate`], so their stored string is used as is.
pub fn index_form(ty: FieldType, normalized: &Value) -> String {
    match (ty, normalized) {
        (FieldType::Email, Value::String(s)) => s.to_lowercase(),
        (FieldType::Decimal, Value::String(s)) => decimal_index_form(s),
        (FieldType::Decimal, Value::Number(n)) => decimal_index_form(&n.to_string()),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

fn decimal_index_form(s: &str) -> String {
    match s.split_once('.') {
        Some((int, frac)) if frac.bytes().all(|b| b.is_ascii_digit()) => {
            let frac = frac.trim_end_matches('0');
            let int = if int == "-0" && frac.is_empty() {
                "0"
            } else {
                int
            };
            if frac.is_empty() {
                int.to_owned()
            } else {
                format!("{int}.{frac}")
            }
        }
        _ => s.to_owned(),
    }
}

fn wrong_type(v: &Value, expected: &str) -> ValueError {
    let found = match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ValueError::new("wrong_type", format!("expected {expected}, found {found}"))
}

fn text<'v>(v: &'v Value, expected: &str) -> Result<&'v str, ValueError> {
    v.as_str().ok_or_else(|| wrong_type(v, expected))
}

fn string(v: &Value, max_chars: usize) -> Result<String, ValueError> {
    let s = text(v, "a string")?;
    // Browsers submit textarea line breaks as CRLF; storing one form keeps comparisons and
    // exports stable.
    // Record strings are the one free text that may span lines: newline and tab (and CR in a
    // CRLF pair) are kept, every other C0, DEL and C1 control is refused like in any free
    // text field.
    let s = s.replace("\r\n", "\n");
    if s.chars()
        .any(|c| crate::is_control_char(c) && c != '\n' && c != '\t')
    {
        return Err(ValueError::new(
            "control_character",
            "text may not contain control characters other than newline and tab",
        ));
    }
    if s.chars().count() > max_chars {
        return Err(ValueError::new(
            "too_long",
            format!("text is limited to {max_chars} characters"),
        ));
    }
    Ok(s)
}

/// A practical subset of the RFC 5322 addr-spec: a dot-atom local part (no quoted strings, no
/// comments), `@`, and a domain name with at least one dot (no address literals). UTF-8
/// letters are allowed in both parts (RFC 6531). The domain is lower-cased, the local part
/// kept as written because RFC 5321 lets servers treat it case-sensitively.
fn email(s: &str) -> Result<String, ValueError> {
    let invalid = |why: &str| ValueError::new("invalid_email", why.to_owned());
    let s = s.trim();
    if s.len() > 254 {
        return Err(invalid("an e-mail address has at most 254 characters"));
    }
    let (local, domain) = s
        .rsplit_once('@')
        .ok_or_else(|| invalid("an e-mail address needs an `@`"))?;
    let atext = |c: char| {
        c.is_ascii_alphanumeric()
            || "!#$%&'*+-/=?^_`{|}~".contains(c)
            || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
    };
    if local.is_empty()
        || local.len() > 64
        || local
            .split('.')
            .any(|atom| atom.is_empty() || !atom.chars().all(atext))
    {
        return Err(invalid("the part before `@` is not a valid mailbox name"));
    }
    let domain = domain.to_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c == '-' || c.is_alphanumeric())
    };
    let top_level_ok = labels
        .last()
        .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()));
    if labels.len() < 2 || !labels.iter().all(label_ok) || !top_level_ok {
        return Err(invalid("the part after `@` is not a valid domain name"));
    }
    Ok(format!("{local}@{domain}"))
}

/// E.164: `+`, a country code not starting with 0, 7 to 15 digits in all. Spaces, dashes,
/// dots, parentheses and a trunk `(0)` are formatting and removed; a leading `00` is the
/// international call prefix and becomes `+`.
fn phone(s: &str) -> Result<String, ValueError> {
    let compact: String = s
        .trim()
        .replace("(0)", "")
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = compact
        .strip_prefix('+')
        .or_else(|| compact.strip_prefix("00"))
        .unwrap_or("");
    let valid = (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if valid {
        Ok(format!("+{digits}"))
    } else {
        Err(ValueError::new(
            "invalid_phone",
            "expected an international number: `+`, country code and number, 7 to 15 digits",
        ))
    }
}

fn date(s: &str) -> Result<String, ValueError> {
    let invalid = || ValueError::new("invalid_date", "expected a calendar date as YYYY-MM-DD");
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| s[range].parse::<u16>().map_err(|_| invalid());
    let year = i32::from(number(0..4)?);
    let month = u8::try_from(number(5..7)?).map_err(|_| invalid())?;
    let day = u8::try_from(number(8..10)?).map_err(|_| invalid())?;
    let month = Month::try_from(month).map_err(|_| invalid())?;
    let date = Date::from_calendar_date(year, month, day).map_err(|_| invalid())?;
    Ok(format_date(date))
}

pub(crate) fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn datetime(s: &str) -> Result<String, ValueError> {
    let invalid = || {
        ValueError::new(
            "invalid_datetime",
            "expected an RFC 3339 date and time, e.g. 2024-05-01T12:30:00Z",
        )
    };
    let parsed = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| invalid())?;
    format_datetime(parsed).ok_or_else(invalid)
}

/// UTC, RFC 3339, `Z` suffix, fractional seconds only when non-zero; `None` when the instant
/// falls outside years 0000-9999 once converted to UTC.
pub(crate) fn format_datetime(t: OffsetDateTime) -> Option<String> {
    t.checked_to_offset(UtcOffset::UTC)
        .and_then(|utc| utc.format(&Rfc3339).ok())
}

fn ip(s: &str) -> Result<String, ValueError> {
    s.parse::<IpAddr>()
        // An IPv4-mapped IPv6 address is the IPv4 client; one form keeps the blind index exact.
        .map(|addr| addr.to_canonical().to_string())
        .map_err(|_| ValueError::new("invalid_ip", "expected an IPv4 or IPv6 address"))
}

fn country(s: &str) -> Result<String, ValueError> {
    let code = s.trim().to_ascii_uppercase();
    if code.len() == 2 && COUNTRIES.split(' ').any(|c| c == code) {
        Ok(code)
    } else {
        Err(ValueError::new(
            "invalid_country",
            "expected an ISO 3166-1 alpha-2 country code such as FR or DE",
        ))
    }
}

/// Basic BCP 47: a 2-3 letter language, an optional 4-letter script and an optional region
/// (2 letters or 3 digits), with the conventional casing `zh-Hant-TW`. `_` is accepted as a
/// separator because POSIX locales use it. Subtags are not checked against the IANA registry.
fn language(s: &str) -> Result<String, ValueError> {
    let invalid = || {
        ValueError::new(
            "invalid_language",
            "expected a language tag such as en, pt-BR or zh-Hant-TW",
        )
    };
    let s = s.trim();
    let mut parts = s.split(['-', '_']);
    let lang = parts.next().unwrap_or("");
    if !(2..=3).contains(&lang.len()) || !lang.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(invalid());
    }
    let mut out = lang.to_ascii_lowercase();
    let mut rest: Vec<&str> = parts.collect();
    if let Some(script) = rest.first().copied()
        && script.len() == 4
        && script.bytes().all(|b| b.is_ascii_alphabetic())
    {
        out.push('-');
        out.push_str(&script[..1].to_ascii_uppercase());
        out.push_str(&script[1..].to_ascii_lowercase());
        rest.remove(0);
    }
    match rest.as_slice() {
        [] => {}
        [region]
            if (region.len() == 2 && region.bytes().all(|b| b.is_ascii_alphabetic()))
                || (region.len() == 3 && region.bytes().all(|b| b.is_ascii_digit())) =>
        {
            out.push('-');
            out.push_str(&region.to_ascii_uppercase());
        }
        _ => return Err(invalid()),
    }
    Ok(out)
}

fn geo(v: &Value) -> Result<Value, ValueError> {
    let invalid = || {
        ValueError::new(
            "invalid_geo",
            "expected {\"lat\": -90..90, \"lon\": -180..180} and no other keys",
        )
    };
    let object = v
        .as_object()
        .ok_or_else(|| wrong_type(v, "an object with lat and lon"))?;
    if object.len() != 2 {
        return Err(invalid());
    }
    let coordinate = |key: &str, limit: f64| {
        object
            .get(key)
            .and_then(Value::as_f64)
            .filter(|x| x.is_finite() && x.abs() <= limit)
            .ok_or_else(invalid)
    };
    let lat = coordinate("lat", 90.0)?;
    let lon = coordinate("lon", 180.0)?;
    Ok(geo_value(lat, lon))
}

pub(crate) fn geo_value(lat: f64, lon: f64) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("lat".to_owned(), Value::from(lat));
    object.insert("lon".to_owned(), Value::from(lon));
    Value::Object(object)
}

fn decimal(v: &Value) -> Result<Value, ValueError> {
    match v {
        // serde_json numbers are always finite, so any number is a valid decimal.
        Value::Number(_) => Ok(v.clone()),
        Value::String(s) => canonical_decimal(s).map(Value::String).ok_or_else(|| {
            ValueError::new(
                "invalid_decimal",
                "expected a number or a decimal string such as \"12.50\"",
            )
        }),
        _ => Err(wrong_type(v, "a number or a decimal string")),
    }
}

/// `[+-]digits[.digits]` with leading zeros and `+` removed and `-0` written `0`; trailing
/// zeros are kept because `12.50` states a precision.
pub(crate) fn canonical_decimal(s: &str) -> Option<String> {
    if s.len() > MAX_DECIMAL_CHARS {
        return None;
    }
    let (negative, unsigned) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = match unsigned.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (unsigned, None),
    };
    let digits_only = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(int) || !frac.is_none_or(digits_only) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let is_zero = int == "0" && frac.is_none_or(|f| f.bytes().all(|b| b == b'0'));
    let sign = if negative && !is_zero { "-" } else { "" };
    Some(match frac {
        Some(frac) => format!("{sign}{int}.{frac}"),
        None => format!("{sign}{int}"),
    })
}

/// ISO 3166-1 alpha-2, officially assigned codes (249).
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ \
DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR \
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY \
HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP \
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY \
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA \
RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ \
VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_list_is_complete_and_sorted() {
        let codes: Vec<&str> = COUNTRIES.split(' ').collect();
        assert_eq!(codes.len(), 249);
        assert!(codes.windows(2).all(|w| w[0] < w[1]));
        assert!(codes.iter().all(|c| c.len() == 2));
    }

    #[test]
    fn decimal_forms() {
        assert_eq!(canonical_decimal("12.50").as_deref(), Some("12.50"));
        assert_eq!(canonical_decimal("+007.5").as_deref(), Some("7.5"));
        assert_eq!(canonical_decimal("-0.00").as_deref(), Some("0.00"));
        assert_eq!(canonical_decimal("-3").as_deref(), Some("-3"));
        for bad in ["", "-", ".5", "5.", "1e3", "1,5", " 1", "0x10", "--1"] {
            assert_eq!(canonical_decimal(bad), None, "{bad:?}");
        }
        assert_eq!(decimal_index_form("12.50"), "12.5");
        assert_eq!(decimal_index_form("12.00"), "12");
        assert_eq!(decimal_index_form("0.00"), "0");
    }
}

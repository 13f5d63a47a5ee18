//! Anonymization strategies applied to a field when its record expires with
//! `on_expiry = "anonymize"`.
//!
//! The strategy is declared per field in the policy and checked against the field type at load,
//! so an expiry run can never meet, say, an IP mask on a date. [`Anonymize::apply`] lives here
//! rather than in the retention job because only this crate knows each type's canonical form.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::types::{FieldType, canonical_decimal, geo_value};

/// How a field is made non-identifying when its record expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anonymize {
    /// Remove the field from the record.
    Drop,
    /// Keep the field but set it to JSON null, so its presence is still countable.
    Null,
    /// Replace with a keyed hash, so equal values stay linkable for statistics without being
    /// readable. The key is the caller's (per tenant) and must be destroyed with the tenant.
    Hmac,
    /// Keep the network: IPv4 /24, IPv6 /48.
    IpMask,
    /// Keep only the month or the year of a date.
    GeneralizeDate(DateGranularity),
    /// Round coordinates to one decimal (about 11 km); a country is already coarse.
    CoarseGeo,
    /// Round a number down to a multiple of `width` (ages 30-39 become 30).
    Bucket {
        /// The bucket width; strictly positive.
        width: i64,
    },
}

/// The precision [`Anonymize::GeneralizeDate`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateGranularity {
    /// Keep year and month; the day becomes the 1st.
    Month,
    /// Keep the year; the date becomes 1 January.
    Year,
}

impl Anonymize {
    /// Whether the strategy makes sense for a field type; enforced at policy load.
    pub fn is_compatible_with(&self, ty: FieldType) -> bool {
        match self {
            Self::Drop | Self::Null => true,
            Self::Hmac => !matches!(ty, FieldType::Json | FieldType::Bool),
            Self::IpMask => ty == FieldType::Ip,
            Self::GeneralizeDate(_) => ty.is_temporal(),
            Self::CoarseGeo => matches!(ty, FieldType::Geo | FieldType::Country),
            Self::Bucket { .. } => matches!(ty, FieldType::Integer | FieldType::Decimal),
        }
    }

    /// The field types the strategy accepts, for diagnostics.
    pub(crate) fn compatible_types(&self) -> String {
        let names: Vec<&str> = FieldType::ALL
            .iter()
            .filter(|ty| self.is_compatible_with(**ty))
            .map(FieldType::as_str)
            .collect();
        names.join(", ")
    }

    /// Anonymizes one normalized value of type `ty`.
    ///
    /// Returns `None` when the field must be removed, otherwise the replacement value.
    /// `hmac` is called with the value's [`crate::index_form`] and must return the keyed hash
    /// as text; it is only called for [`Anonymize::Hmac`]. A value that does not have the
    /// shape its type promises is replaced by null rather than kept, so a bug upstream can
    /// never leave personal data behind.
    pub fn apply(
        &self,
        ty: FieldType,
        value: &Value,
        hmac: impl FnOnce(&str) -> String,
    ) -> Option<Value> {
        if value.is_null() {
            return (*self != Self::Drop).then_some(Value::Null);
        }
        let replaced = match self {
            Self::Drop => return None,
            Self::Null => None,
            Self::Hmac => Some(Value::String(hmac(&crate::types::index_form(ty, value)))),
            Self::IpMask => value.as_str().and_then(mask_ip).map(Value::String),
            Self::GeneralizeDate(granularity) => value
                .as_str()
                .and_then(|s| generalize_date(ty, s, *granularity))
                .map(Value::String),
            Self::CoarseGeo => coarse_geo(ty, value),
            Self::Bucket { width } => bucket(value, *width),
        };
        Some(replaced.unwrap_or(Value::Null))
    }
}

fn mask_ip(s: &str) -> Option<String> {
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(IpAddr::from([a, b, c, 0]).to_string())
        }
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[3..].fill(0);
            Some(IpAddr::from(segments).to_string())
        }
    }
}

fn generalize_date(ty: FieldType, s: &str, granularity: DateGranularity) -> Option<String> {
    // Both date and datetime values start with the canonical `YYYY-MM-DD`.
    let (year, month) = (s.get(0..4)?, s.get(5..7)?);
    let month = match granularity {
        DateGranularity::Month => month,
        DateGranularity::Year => "01",
    };
    let date = format!("{year}-{month}-01");
    Some(match ty {
        FieldType::Datetime => format!("{date}T00:00:00Z"),
        _ => date,
    })
}

fn coarse_geo(ty: FieldType, value: &Value) -> Option<Value> {
    if ty == FieldType::Country {
        return Some(value.clone());
    }
    let round = |x: f64| (x * 10.0).round() / 10.0;
    let lat = value.get("lat")?.as_f64()?;
    let lon = value.get("lon")?.as_f64()?;
    Some(geo_value(round(lat), round(lon)))
}

fn bucket(value: &Value, width: i64) -> Option<Value> {
    if width <= 0 {
        return None;
    }
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(Value::from(i.div_euclid(width) * width))
            } else {
                let x = n.as_f64()?;
                // Whole-number buckets; precision loss on huge floats only affects the bucket
                // boundary, never lets the exact value through.
                let w = width as f64;
                Some(Value::from((x / w).floor() * w))
            }
        }
        Value::String(s) => {
            let canonical = canonical_decimal(s)?;
            let (int, frac) = canonical.split_once('.').unwrap_or((&canonical, ""));
            let mut floor: i128 = int.parse().ok()?;
            if floor < 0 && frac.bytes().any(|b| b != b'0') {
                floor -= 1;
            }
            let width = i128::from(width);
            Some(Value::String((floor.div_euclid(width) * width).to_string()))
        }
        _ => None,
    }
}

impl fmt::Display for Anonymize {
    /// The policy-file spelling, e.g. `generalize_date:month` or `bucket:10`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Drop => f.write_str("drop"),
            Self::Null => f.write_str("null"),
            Self::Hmac => f.write_str("hmac"),
            Self::IpMask => f.write_str("ip_mask"),
            Self::GeneralizeDate(DateGranularity::Month) => f.write_str("generalize_date:month"),
            Self::GeneralizeDate(DateGranularity::Year) => f.write_str("generalize_date:year"),
            Self::CoarseGeo => f.write_str("coarse_geo"),
            Self::Bucket { width } => write!(f, "bucket:{width}"),
        }
    }
}

impl FromStr for Anonymize {
    type Err = String;

    /// Parses the policy-file spelling; the error explains the valid spellings.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "drop" => Self::Drop,
            "null" => Self::Null,
            "hmac" => Self::Hmac,
            "ip_mask" => Self::IpMask,
            "coarse_geo" => Self::CoarseGeo,
            "generalize_date:month" => Self::GeneralizeDate(DateGranularity::Month),
            "generalize_date:year" => Self::GeneralizeDate(DateGranularity::Year),
            "generalize_date" => {
                return Err(
                    "`generalize_date` needs a granularity: `generalize_date:month` or \
                     `generalize_date:year`"
                        .to_owned(),
                );
            }
            _ => match s.strip_prefix("bucket:") {
                Some(width) => match width.parse::<i64>() {
                    Ok(width) if width > 0 => Self::Bucket { width },
                    _ => {
                        return Err(format!(
                            "bucket width `{width}` must be a positive whole number, e.g. `bucket:10`"
                        ));
                    }
                },
                None => {
                    return Err(format!(
                        "unknown anonymization strategy `{s}`; expected one of: drop, null, hmac, \
                         ip_mask, coarse_geo, generalize_date:month, generalize_date:year, \
                         bucket:<width>"
                    ));
                }
            },
        })
    }
}

impl Serialize for Anonymize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn no_hmac(_: &str) -> String {
        unreachable!("hmac is only called for the hmac strategy")
    }

    #[test]
    fn spellings_round_trip() {
        for s in [
            "drop",
            "null",
            "hmac",
            "ip_mask",
            "coarse_geo",
            "generalize_date:month",
            "generalize_date:year",
            "bucket:10",
        ] {
            assert_eq!(s.parse::<Anonymize>().unwrap().to_string(), s);
        }
        for bad in [
            "bucket:0",
            "bucket:-5",
            "bucket:",
            "generalize_date",
            "mask",
            "DROP",
        ] {
            assert!(bad.parse::<Anonymize>().is_err(), "{bad}");
        }
    }

    #[test]
    fn strategies() {
        let ip = FieldType::Ip;
        assert_eq!(
            Anonymize::IpMask.apply(ip, &json!("192.0.2.77"), no_hmac),
            Some(json!("192.0.2.0"))
        );
        assert_eq!(
            Anonymize::IpMask.apply(ip, &json!("2001:db8:1234:5678::1"), no_hmac),
            Some(json!("2001:db8:1234::"))
        );
        assert_eq!(
            Anonymize::GeneralizeDate(DateGranularity::Month).apply(
                FieldType::Datetime,
                &json!("2024-05-17T10:11:12Z"),
                no_hmac
            ),
            Some(json!("2024-05-01T00:00:00Z"))
        );
        assert_eq!(
            Anonymize::GeneralizeDate(DateGranularity::Year).apply(
                FieldType::Date,
                &json!("1990-07-04"),
                no_hmac
            ),
            Some(json!("1990-01-01"))
        );
        assert_eq!(
            Anonymize::CoarseGeo.apply(
                FieldType::Geo,
                &json!({"lat": 48.8566, "lon": 2.3522}),
                no_hmac
            ),
            Some(json!({"lat": 48.9, "lon": 2.4}))
        );
        assert_eq!(
            Anonymize::Bucket { width: 10 }.apply(FieldType::Integer, &json!(37), no_hmac),
            Some(json!(30))
        );
        assert_eq!(
            Anonymize::Bucket { width: 10 }.apply(FieldType::Integer, &json!(-1), no_hmac),
            Some(json!(-10))
        );
        assert_eq!(
            Anonymize::Bucket { width: 100 }.apply(FieldType::Decimal, &json!("-12.50"), no_hmac),
            Some(json!("-100"))
        );
        assert_eq!(
            Anonymize::Hmac.apply(FieldType::Email, &json!("A@example.com"), |s| format!(
                "h({s})"
            )),
            Some(json!("h(a@example.com)"))
        );
        assert_eq!(
            Anonymize::Drop.apply(ip, &json!("192.0.2.1"), no_hmac),
            None
        );
        assert_eq!(
            Anonymize::Null.apply(ip, &json!("192.0.2.1"), no_hmac),
            Some(Value::Null)
        );
        // Malformed input is nulled, never passed through.
        assert_eq!(
            Anonymize::IpMask.apply(ip, &json!("not an ip"), no_hmac),
            Some(Value::Null)
        );
    }
}

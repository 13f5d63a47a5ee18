//! The values an audit event claims for its filter columns, read fast.
//!
//! Two readers need them: `ward audit verify` compares every stored event with the plain
//! filter columns stored beside it (`at`, `tenant`, `subject`, `actor`, `action`, `outcome`),
//! and the SQLite store's audit bundles store no columns at all, so every read of a bundle
//! filters on what its events say. Deserializing each event with serde for that took 27% of
//! the verifying CPU in a profile, so [`Columns::of`] first tries [`scan`]: a strict reader
//! of exactly the layout `serde_json::to_vec(&AuditEvent)` writes (keys in declaration
//! order, no whitespace, strings without escapes, `at` in the `Z` form `time` prints).
//! Whatever it does not recognise it declines, and the exact serde [`project`]ion decides
//! instead.
//!
//! Why the verdicts cannot change: `scan` only accepts documents that are valid UTF-8 JSON
//! objects whose keys are literal ASCII bytes (so no two spellings of a key), whose strings
//! hold no escape or control character (so their JSON value is their bytes), and that end at
//! the closing brace. On such a document serde reads the same six values: the same string
//! slices, UUIDs through the same `uuid` parser, and a time that the fixed-format parser
//! below computes exactly as `time`'s RFC 3339 parser followed by [`crate::to_micros`]
//! (the property test in this module checks that agreement on arbitrary events). Every
//! other input, including offsets other than `Z`, leap seconds, times before 1970, `null`
//! options, `detail` values and unknown keys, goes to serde, which is exact by definition.

use std::borrow::Cow;

use time::OffsetDateTime;
use uuid::Uuid;

/// What an event says its filter columns hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns<'a> {
    /// `at` as Unix microseconds, as `crate::to_micros` encodes it.
    pub at: i64,
    /// `tenant`.
    pub tenant: Option<Uuid>,
    /// `subject`.
    pub subject: Option<Uuid>,
    /// `actor.id`.
    pub actor: Cow<'a, str>,
    /// `action`.
    pub action: Cow<'a, str>,
    /// `outcome`.
    pub outcome: Cow<'a, str>,
}

impl<'a> Columns<'a> {
    /// The event's column values, or `None` when serde cannot read them either.
    pub fn of(event: &'a [u8]) -> Option<Self> {
        scan(event).or_else(|| project(event))
    }
}

/// The event fields that are copied into filter columns, read by serde without building the
/// whole event. Exact for every input; the reference the fast path must agree with.
#[derive(serde::Deserialize)]
struct Projection<'a> {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    #[serde(borrow)]
    actor: ActorProjection<'a>,
    #[serde(default)]
    tenant: Option<Uuid>,
    #[serde(default)]
    subject: Option<Uuid>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    outcome: Cow<'a, str>,
}

#[derive(serde::Deserialize)]
struct ActorProjection<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

/// The slow, exact path: serde.
pub fn project(event: &[u8]) -> Option<Columns<'_>> {
    let p: Projection<'_> = serde_json::from_slice(event).ok()?;
    Some(Columns {
        at: crate::to_micros(p.at),
        tenant: p.tenant,
        subject: p.subject,
        actor: p.actor.id,
        action: p.action,
        outcome: p.outcome,
    })
}

/// The fast path: reads the canonical layout of a serialized `AuditEvent`,
///
/// `{"at":"…Z","request_id":"…","actor":{"id":"…","role":"…"}[,"tenant":"<uuid>"]`
/// `[,"subject":"<uuid>"][,"record":"…"][,"collection":"…"][,"purpose":"…"]`
/// `,"action":"…","outcome":"…"[,"reason":"…"][,"client":"…"]}`
///
/// and returns `None` (decline, not "mismatch") for anything else, `detail` included.
pub fn scan(event: &[u8]) -> Option<Columns<'_>> {
    let mut s = Scanner {
        rest: std::str::from_utf8(event).ok()?,
    };
    s.lit("{\"at\":\"")?;
    let at = parse_utc_micros(s.string()?.as_bytes())?;
    s.lit(",\"request_id\":\"")?;
    s.string()?;
    s.lit(",\"actor\":{\"id\":\"")?;
    let actor = s.string()?;
    s.lit(",\"role\":\"")?;
    s.string()?;
    s.lit("}")?;
    let tenant = if s.eat(",\"tenant\":\"") {
        Some(s.uuid()?)
    } else {
        None
    };
    let subject = if s.eat(",\"subject\":\"") {
        Some(s.uuid()?)
    } else {
        None
    };
    // Not a column: any JSON string is fine to serde here, so it is only skipped.
    for key in [",\"record\":\"", ",\"collection\":\"", ",\"purpose\":\""] {
        if s.eat(key) {
            s.string()?;
        }
    }
    s.lit(",\"action\":\"")?;
    let action = s.string()?;
    s.lit(",\"outcome\":\"")?;
    let outcome = s.string()?;
    for key in [",\"reason\":\"", ",\"client\":\""] {
        if s.eat(key) {
            s.string()?;
        }
    }
    // `detail`, trailing whitespace or anything else: decline.
    (s.rest == "}").then_some(Columns {
        at,
        tenant,
        subject,
        actor: Cow::Borrowed(actor),
        action: Cow::Borrowed(action),
        outcome: Cow::Borrowed(outcome),
    })
}

/// A cursor over the rest of a document already known to be UTF-8.
struct Scanner<'a> {
    rest: &'a str,
}

impl<'a> Scanner<'a> {
    /// Consumes `literal`, or declines.
    fn lit(&mut self, literal: &str) -> Option<()> {
        self.rest = self.rest.strip_prefix(literal)?;
        Some(())
    }

    /// Consumes `literal` if it is next.
    fn eat(&mut self, literal: &str) -> bool {
        self.lit(literal).is_some()
    }

    /// A string's content after its opening quote, through the closing quote. Declines on
    /// an escape or a control character (which serde would reject or decode).
    fn string(&mut self) -> Option<&'a str> {
        let end = plain_len(self.rest.as_bytes())?;
        let (value, tail) = self.rest.split_at_checked(end)?;
        self.rest = tail.strip_prefix('"')?;
        Some(value)
    }

    /// A hyphenated UUID string's content after its opening quote, through the closing quote.
    fn uuid(&mut self) -> Option<Uuid> {
        let (value, tail) = self.rest.split_at_checked(36)?;
        self.rest = tail.strip_prefix('"')?;
        // The same parser serde's `Uuid` visitor uses (`Uuid::from_str`); it accepts only
        // hex digits and hyphens, so no quote or escape can hide in `value`.
        Uuid::try_parse_ascii(value.as_bytes()).ok()
    }
}

/// Index of the first byte that ends a plain JSON string: `"`, `\` or a control character
/// (below 0x20). `None` if there is none. Eight bytes at a time (SWAR), as serde_json does.
fn plain_len(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTE: u64 = u64::from_ne_bytes([b'"'; 8]);
    const BACKSLASH: u64 = u64::from_ne_bytes([b'\\'; 8]);
    const SPACE: u64 = u64::from_ne_bytes([0x20; 8]);
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        // High bit of each byte that is zero after the xor / below 0x20. A borrow can only
        // flag bytes above a real hit, so the lowest flagged byte is exact.
        let quote = v ^ QUOTE;
        let backslash = v ^ BACKSLASH;
        let hits = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (v.wrapping_sub(SPACE) & !v))
            & HIGH;
        if hits != 0 {
            return Some(offset + (hits.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| offset + i)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.f]Z` (1 to 9 fraction digits, years 1970 to 9999, seconds
/// 00 to 59) to Unix microseconds, truncating sub-microsecond digits as
/// `crate::to_micros` does. `None` for every other form, valid RFC 3339 or not: such
/// strings take the serde path.
///
/// Years before 1970 are declined because `to_micros` truncates toward zero, which differs
/// from flooring below the epoch; events are never that old, so the fast path need not care.
fn parse_utc_micros(s: &[u8]) -> Option<i64> {
    let (head, fraction) = s.split_at_checked(19)?;
    let &[
        y0,
        y1,
        y2,
        y3,
        b'-',
        mo0,
        mo1,
        b'-',
        d0,
        d1,
        b'T',
        h0,
        h1,
        b':',
        mi0,
        mi1,
        b':',
        s0,
        s1,
    ] = head
    else {
        return None;
    };
    let year = digits(&[y0, y1, y2, y3])?;
    let month = digits(&[mo0, mo1])?;
    let day = digits(&[d0, d1])?;
    let hour = digits(&[h0, h1])?;
    let minute = digits(&[mi0, mi1])?;
    let second = digits(&[s0, s1])?;
    let valid = year >= 1970
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let nanos = if fraction == b"Z" {
        0
    } else {
        let f = fraction.strip_prefix(b".")?.strip_suffix(b"Z")?;
        if f.is_empty() || f.len() > 9 {
            return None;
        }
        digits(f)? * 10_u32.pow(9 - f.len() as u32)
    };
    let secs =
        days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3_600 + minute * 60 + second);
    Some(secs * 1_000_000 + i64::from(nanos / 1_000))
}

/// The decimal value of ASCII digits (at most 9 of them), or `None` if one is not a digit.
fn digits(ds: &[u8]) -> Option<u32> {
    ds.iter().try_fold(0_u32, |acc, &d| {
        let v = d.wrapping_sub(b'0');
        (v < 10).then_some(acc * 10 + u32::from(v))
    })
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a valid proleptic Gregorian date in a year from 1970 on
/// (H. Hinnant's `days_from_civil`, with March as the first month so February's leap day
/// falls at the end of the shifted year). All terms are non-negative in that range.
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let y = i64::from(if month <= 2 { year - 1 } else { year });
    let era = y / 400;
    let year_of_era = y - era * 400;
    let shifted_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;
    use time::format_description::well_known::Rfc3339;
    use time::{Date, Month, UtcOffset};
    use ward_audit::{Action, Actor, AuditEvent, Outcome};

    use super::*;

    /// What `time` and `to_micros` make of a timestamp string.
    fn reference_micros(s: &str) -> Option<i64> {
        OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .map(crate::to_micros)
    }

    fn typical_event() -> AuditEvent {
        AuditEvent {
            at: time::macros::datetime!(2026-11-27 21:03:24.123456 UTC),
            request_id: "req-01jdxk2z9q3yb8v6n4m7t5r1w0".into(),
            actor: Actor {
                id: "key:3f2a9c1e".into(),
                role: "app".into(),
            },
            tenant: Some(Uuid::from_u128(0x0192_3b4c_5d6e_7f80_9a0b_1c2d_3e4f_5a6b)),
            subject: Some(Uuid::from_u128(0x0192_3b4c_5d6e_7f80_9a0b_1c2d_3e4f_5a6c)),
            record: Some(Uuid::from_u128(0x0192_3b4c_5d6e_7f80_9a0b_1c2d_3e4f_5a6d)),
            collection: Some("contact".into()),
            purpose: Some("essential.service".into()),
            action: Action::RecordRead,
            outcome: Outcome::Allowed,
            reason: None,
            client: Some("9f86d081884c7d659a2feaa0c55ad015".into()),
            detail: None,
        }
    }

    #[test]
    fn every_action_round_trips_its_name() {
        for &action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
    }

    #[test]
    fn fast_path_is_taken_for_a_typical_event() {
        let mut event = typical_event();
        let bytes = event.to_bytes();
        let fast = scan(&bytes).expect("a typical event is scanned");
        assert_eq!(Some(fast.clone()), project(&bytes));
        assert_eq!(fast.at, crate::to_micros(event.at));
        assert_eq!(
            parse_utc_micros(b"2026-11-27T21:03:24.123456Z"),
            Some(fast.at)
        );
        assert!(matches!(fast.actor, Cow::Borrowed("key:3f2a9c1e")));
        // A denial with its reason, and a system event without tenant, subject or client.
        event.outcome = Outcome::Denied;
        event.reason = Some("purpose not allowed for collection contact".into());
        let bytes = event.to_bytes();
        assert_eq!(scan(&bytes), project(&bytes));
        assert!(scan(&bytes).is_some());
        let system = AuditEvent {
            actor: Actor::system("retention"),
            tenant: None,
            subject: None,
            record: None,
            collection: None,
            purpose: None,
            client: None,
            ..typical_event()
        };
        let bytes = system.to_bytes();
        assert!(scan(&bytes).is_some());
        assert_eq!(scan(&bytes), project(&bytes));
    }

    #[test]
    fn odd_inputs_are_declined_but_still_decided_by_serde() {
        let bytes = typical_event().to_bytes();
        let text = String::from_utf8(bytes).expect("utf-8");
        let cases = [
            // Whitespace, an escape, an offset, `null`, a key serde ignores, `detail`.
            text.replace(",\"request_id\"", ", \"request_id\""),
            format!("{text} "),
            text.replace("key:3f2a9c1e", "key:3f2a9c1\\u0065"),
            text.replace('Z', "+00:00"),
            text.replace('Z', "z"),
            text.replace("T21", " 21"),
            text.replace(",\"action\"", ",\"tenant2\":1,\"action\""),
            text.replace(",\"collection\"", ",\"detail\":null,\"collection\""),
            format!("{},\"detail\":{{\"n\":1}}}}", &text[..text.len() - 1]),
            text.replace("\"subject\":", "\"subject\":null,\"x\":"),
            // A duplicate column: serde refuses it too.
            text.replace(",\"outcome\"", ",\"action\":\"x\",\"outcome\""),
        ];
        for case in &cases {
            assert_eq!(scan(case.as_bytes()), None, "{case}");
            let slow = project(case.as_bytes());
            assert_eq!(Columns::of(case.as_bytes()), slow, "{case}");
        }
        // An escape in the actor is decoded by serde; the row holding the decoded value
        // passes, the raw one fails.
        let escaped = text.replace("key:3f2a9c1e", "key:3f2a9c1\\u0065");
        assert_eq!(
            Columns::of(escaped.as_bytes()).map(|c| c.actor.into_owned()),
            Some("key:3f2a9c1e".to_owned())
        );
        // Garbage and truncations are unreadable on both paths.
        for bad in [&b"{}"[..], b"", b"null", &text.as_bytes()[..text.len() - 1]] {
            assert_eq!(scan(bad), None);
            assert_eq!(Columns::of(bad), None);
        }
    }

    #[test]
    fn epoch_and_simple_dates() {
        assert_eq!(parse_utc_micros(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc_micros(b"1970-01-01T00:00:00.000001Z"), Some(1));
        assert_eq!(
            parse_utc_micros(b"1970-01-02T00:00:00Z"),
            Some(86_400_000_000)
        );
        assert_eq!(
            parse_utc_micros(b"2001-09-09T01:46:40Z"),
            Some(1_000_000_000_000_000)
        );
        assert_eq!(
            parse_utc_micros(b"9999-12-31T23:59:59.999999999Z"),
            Some(253_402_300_799_999_999)
        );
    }

    #[test]
    fn leap_years_and_month_ends() {
        for (s, valid) in [
            ("2000-02-29T12:00:00Z", true),
            ("2004-02-29T00:00:00Z", true),
            ("2024-02-29T23:59:59Z", true),
            ("1972-02-29T00:00:00Z", true),
            ("2100-02-29T00:00:00Z", false),
            ("1900-02-28T00:00:00Z", false), // before 1970: declined
            ("2023-02-29T00:00:00Z", false),
            ("2000-02-30T00:00:00Z", false),
            ("2100-03-01T00:00:00Z", true),
            ("2100-02-28T23:59:59Z", true),
            ("2400-02-29T00:00:00Z", true),
            ("2026-04-31T00:00:00Z", false),
            ("2026-04-30T00:00:00Z", true),
            ("2026-12-31T00:00:00Z", true),
            ("2026-12-32T00:00:00Z", false),
            ("2026-13-01T00:00:00Z", false),
            ("2026-00-01T00:00:00Z", false),
            ("2026-01-00T00:00:00Z", false),
        ] {
            let fast = parse_utc_micros(s.as_bytes());
            assert_eq!(fast.is_some(), valid, "{s}");
            if valid {
                assert_eq!(fast, reference_micros(s), "{s}");
            }
        }
        // The day after 2100-02-28 is 2100-03-01 (2100 is not a leap year).
        let a = parse_utc_micros(b"2100-02-28T00:00:00Z").expect("valid");
        let b = parse_utc_micros(b"2100-03-01T00:00:00Z").expect("valid");
        assert_eq!(b - a, 86_400_000_000);
    }

    #[test]
    fn fractions_of_every_length_truncate_like_to_micros() {
        for (s, micros) in [
            ("2026-11-27T21:03:24.1Z", 100_000),
            ("2026-11-27T21:03:24.12Z", 120_000),
            ("2026-11-27T21:03:24.123Z", 123_000),
            ("2026-11-27T21:03:24.1234Z", 123_400),
            ("2026-11-27T21:03:24.12345Z", 123_450),
            ("2026-11-27T21:03:24.123456Z", 123_456),
            ("2026-11-27T21:03:24.1234567Z", 123_456),
            ("2026-11-27T21:03:24.12345678Z", 123_456),
            ("2026-11-27T21:03:24.123456789Z", 123_456),
            ("2026-11-27T21:03:24.999999999Z", 999_999),
            ("2026-11-27T21:03:24.000000999Z", 0),
            ("2026-11-27T21:03:24.0Z", 0),
            ("2026-11-27T21:03:24.000000000Z", 0),
        ] {
            let base = reference_micros("2026-11-27T21:03:24Z").expect("valid");
            assert_eq!(parse_utc_micros(s.as_bytes()), Some(base + micros), "{s}");
            assert_eq!(parse_utc_micros(s.as_bytes()), reference_micros(s), "{s}");
        }
    }

    #[test]
    fn other_forms_are_declined() {
        for s in [
            "2026-11-27T21:03:24.Z",
            "2026-11-27T21:03:24.1234567890Z", // `time` reads it; 10 digits: serde decides
            "2026-11-27T21:03:24",
            "2026-11-27T21:03:24+00:00",
            "2026-11-27T21:03:24.5+01:00",
            "2026-11-27t21:03:24Z",
            "2026-11-27 21:03:24Z",
            "2026-11-27T21:03:24z",
            "2026-11-27T21:03:24ZZ",
            "2016-12-31T23:59:60Z", // a leap second
            "2026-11-27T24:00:00Z",
            "2026-11-27T23:60:00Z",
            "1969-12-31T23:59:59.999999Z",
            "0000-01-01T00:00:00Z",
            "+2026-11-27T21:03:24Z",
            "2026-1-27T21:03:24Z",
            "2026-11-27T21:03:2Z",
            "2026-11-27T21:03:24.-1Z",
            "2026-11-27T21:03:24.1 Z",
            "2026/11/27T21:03:24Z",
            "",
        ] {
            assert_eq!(parse_utc_micros(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn days_from_civil_matches_time_every_day() {
        // Every day from 1970 to 2500, and every 1st of March and 28th of February after.
        let mut date = Date::from_calendar_date(1970, Month::January, 1).expect("valid");
        let mut expected = 0;
        while date.year() < 2500 {
            let (y, m, d) = (
                date.year() as u32,
                u8::from(date.month()) as u32,
                date.day(),
            );
            assert_eq!(days_from_civil(y, m, u32::from(d)), expected, "{date}");
            assert!(u32::from(d) <= days_in_month(y, m));
            date = date.next_day().expect("in range");
            expected += 1;
        }
        for year in 2500..=9999 {
            for (month, day) in [(Month::February, 28), (Month::March, 1)] {
                let date = Date::from_calendar_date(year, month, day).expect("valid");
                let days = date.midnight().assume_utc().unix_timestamp() / 86_400;
                assert_eq!(
                    days_from_civil(year as u32, u8::from(month).into(), day.into()),
                    days
                );
            }
            assert_eq!(is_leap(year as u32), time::util::is_leap_year(year));
        }
    }

    #[test]
    fn plain_len_finds_the_first_stop_byte() {
        let mut s = vec![b'a'; 40];
        assert_eq!(plain_len(&s), None);
        for stop in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
            for at in 0..40 {
                let mut t = s.clone();
                t[at] = stop;
                if at + 3 < 40 {
                    t[at + 3] = b'"';
                }
                assert_eq!(plain_len(&t), Some(at), "{stop} at {at}");
            }
        }
        // Bytes that do not stop a string, next to ones that do.
        s[..8].copy_from_slice(&[0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xff]);
        assert_eq!(plain_len(&s), None);
        s[9] = 0x21;
        s[10] = 0x1f;
        assert_eq!(plain_len(&s), Some(10));
    }

    fn arb_time() -> impl Strategy<Value = OffsetDateTime> {
        let secs = prop_oneof![
            8 => 0_i64..=253_402_300_799,          // 1970 to 9999
            1 => -62_167_219_200_i64..0,           // 0000 to 1969: declined
            1 => 1_700_000_000_i64..1_900_000_000, // now-ish
        ];
        let nanos = prop_oneof![
            Just(0_u32),
            (0_u32..1_000_000).prop_map(|n| n * 1_000),
            (0_u32..1_000).prop_map(|n| n * 1_000_000),
            0_u32..1_000_000_000,
        ];
        let offset = prop_oneof![
            8 => Just(0_i32),
            1 => -86_399_i32..=86_399,
        ];
        (secs, nanos, offset).prop_filter_map("representable", |(s, n, o)| {
            let utc = OffsetDateTime::from_unix_timestamp(s)
                .ok()?
                .replace_nanosecond(n)
                .ok()?;
            let t = utc.to_offset(UtcOffset::from_whole_seconds(o - o % 60).ok()?);
            // Only what serializes: years 0 to 9999 in the offset shown.
            (0..=9999).contains(&t.year()).then_some(t)
        })
    }

    fn arb_text() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-z0-9:._-]{0,24}",
            1 => "[a-z\"\\\\\u{0}-\u{1f}\u{7f}é€😀 ]{0,12}",
            1 => any::<String>(),
        ]
    }

    fn arb_detail() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            arb_text().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(arb_text(), inner, 0..4).prop_map(|m| json!(m)),
            ]
        })
    }

    fn arb_event() -> impl Strategy<Value = AuditEvent> {
        let uuid = || proptest::option::of(any::<u128>().prop_map(Uuid::from_u128));
        let text = || proptest::option::of(arb_text());
        let head = (
            arb_time(),
            arb_text(),
            arb_text(),
            arb_text(),
            uuid(),
            uuid(),
            uuid(),
        );
        let tail = (
            text(),
            text(),
            proptest::sample::select(Action::ALL.to_vec()),
            any::<bool>(),
            text(),
            text(),
            proptest::option::weighted(0.2, arb_detail()),
        );
        (head, tail).prop_map(
            |(
                (at, request_id, id, role, tenant, subject, record),
                (collection, purpose, action, denied, reason, client, detail),
            )| AuditEvent {
                at,
                request_id,
                actor: Actor { id, role },
                tenant,
                subject,
                record,
                collection,
                purpose,
                action,
                outcome: if denied {
                    Outcome::Denied
                } else {
                    Outcome::Allowed
                },
                reason,
                client,
                detail,
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn fast_path_agrees_with_serde_or_declines(event in arb_event()) {
            let bytes = event.to_bytes();
            let slow = project(&bytes);
            prop_assert!(slow.is_some(), "serde reads every serialized event");
            if let Some(fast) = scan(&bytes) {
                prop_assert_eq!(Some(fast), slow);
            }
            prop_assert_eq!(Columns::of(&bytes), project(&bytes));
        }

        #[test]
        fn plain_events_take_the_fast_path(event in arb_event()) {
            // Escape-free strings, a UTC time from 1970 on and no detail: always scanned.
            let plain = |s: &str| !s.chars().any(|c| c == '"' || c == '\\' || c < ' ');
            let scannable = event.at.offset().is_utc()
                && event.at.year() >= 1970
                && event.detail.is_none()
                && [&event.request_id, &event.actor.id, &event.actor.role]
                    .into_iter()
                    .chain(&event.collection)
                    .chain(&event.purpose)
                    .chain(&event.reason)
                    .chain(&event.client)
                    .all(|s| plain(s));
            let bytes = event.to_bytes();
            prop_assert_eq!(scan(&bytes).is_some(), scannable);
        }
    }
}

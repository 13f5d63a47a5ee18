//! Periods of time as written in the policy (`"60d"`, `"5min"`, `"2y"`).
//!
//! Only fixed-length units are accepted: a "month" has no fixed length, and a retention
//! promise that silently means 28 or 31 days depending on the calendar is not one Ward can
//! prove it keeps. A year is defined as 365 days for the same reason.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;
const YEAR: i64 = 365 * DAY;

/// Longest accepted period. Far beyond any real retention, and small enough that adding it to
/// any timestamp Ward stores cannot overflow date arithmetic.
const MAX_SECONDS: i64 = 1000 * YEAR;

/// Units from largest to smallest; `Display` picks the first that divides evenly.
const UNITS: [(&str, i64, &str); 6] = [
    ("y", YEAR, "year"),
    ("w", WEEK, "week"),
    ("d", DAY, "day"),
    ("h", HOUR, "hour"),
    ("min", MINUTE, "minute"),
    ("s", 1, "second"),
];

/// A strictly positive span of time, at most 1000 years, with one-second resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    seconds: i64,
}

/// Why a period string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeriodError {
    /// Not of the form `<digits><unit>`.
    #[error(
        "`{0}` is not a period: write a positive whole number and a unit, e.g. \"90s\", \
         \"30min\", \"24h\", \"60d\", \"6w\", \"2y\""
    )]
    Malformed(String),
    /// The unit is not one of s, min, h, d, w, y.
    #[error(
        "`{input}`: `{unit}` is not a period unit: use s, min, h, d, w or y{}",
        month_hint(.unit)
    )]
    UnknownUnit {
        /// The period as written.
        input: String,
        /// The unit as written.
        unit: String,
    },
    /// Zero-length periods would make data expire before it is written.
    #[error("a period must be longer than zero")]
    Zero,
    /// Longer than 1000 years.
    #[error("`{0}` is too long: periods are limited to 1000 years")]
    TooLong(String),
}

fn month_hint(unit: &str) -> &'static str {
    if matches!(unit, "m" | "mo" | "month" | "months") {
        " (months have no fixed length: write days, e.g. \"30d\", or \"min\" for minutes)"
    } else {
        ""
    }
}

impl Period {
    /// Parses `"<digits><unit>"` with unit s, min, h, d, w or y (365 days).
    pub fn parse(s: &str) -> Result<Self, PeriodError> {
        let digits_end = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| PeriodError::Malformed(s.to_owned()))?;
        let (digits, unit) = s.split_at(digits_end);
        if digits.is_empty() {
            return Err(PeriodError::Malformed(s.to_owned()));
        }
        let factor = match unit {
            "s" => 1,
            "min" => MINUTE,
            "h" => HOUR,
            "d" => DAY,
            "w" => WEEK,
            "y" => YEAR,
            _ if unit.chars().all(|c| c.is_ascii_alphabetic()) => {
                return Err(PeriodError::UnknownUnit {
                    input: s.to_owned(),
                    unit: unit.to_owned(),
                });
            }
            _ => return Err(PeriodError::Malformed(s.to_owned())),
        };
        let count: i64 = digits
            .parse()
            .map_err(|_| PeriodError::TooLong(s.to_owned()))?;
        let seconds = count
            .checked_mul(factor)
            .filter(|&secs| secs <= MAX_SECONDS)
            .ok_or_else(|| PeriodError::TooLong(s.to_owned()))?;
        Self::from_seconds(seconds).ok_or(PeriodError::Zero)
    }

    /// A period of `seconds`, if it is positive and at most 1000 years.
    pub fn from_seconds(seconds: i64) -> Option<Self> {
        (seconds > 0 && seconds <= MAX_SECONDS).then_some(Self { seconds })
    }

    /// A period of whole days, if positive and at most 1000 years.
    pub fn from_days(days: i64) -> Option<Self> {
        days.checked_mul(DAY).and_then(Self::from_seconds)
    }

    /// Compile-time constructor for defaults; callers pass literals known to be in range.
    pub(crate) const fn from_seconds_const(seconds: i64) -> Self {
        Self { seconds }
    }

    /// Compile-time constructor for defaults; callers pass literals known to be in range.
    pub(crate) const fn from_days_const(days: i64) -> Self {
        Self {
            seconds: days * DAY,
        }
    }

    /// Length in seconds.
    pub fn seconds(&self) -> i64 {
        self.seconds
    }

    /// Length in whole days, rounded down (a 36-hour period is 1 day).
    pub fn days(&self) -> i64 {
        self.seconds / DAY
    }

    /// The period as a `time::Duration`, for date arithmetic.
    pub fn as_duration(&self) -> time::Duration {
        time::Duration::seconds(self.seconds)
    }

    /// Words for humans, e.g. "3 years", "60 days", "1 week", for the rendered notice.
    pub fn humanize(&self) -> String {
        let (_, size, word) = self.unit();
        let count = self.seconds / size;
        if count == 1 {
            format!("1 {word}")
        } else {
            format!("{count} {word}s")
        }
    }

    fn unit(&self) -> (&'static str, i64, &'static str) {
        UNITS
            .iter()
            .copied()
            .find(|(_, size, _)| self.seconds % size == 0)
            // The last unit is one second, which divides everything.
            .unwrap_or(UNITS[UNITS.len() - 1])
    }
}

impl fmt::Display for Period {
    /// Writes the period back in the largest unit that divides it evenly, which is also the
    /// shortest spelling: 86400 seconds is `1d`, 14 days is `2w`, 730 days is `2y`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (suffix, size, _) = self.unit();
        write!(f, "{}{suffix}", self.seconds / size)
    }
}

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(Period::parse("90s").unwrap().seconds(), 90);
        assert_eq!(Period::parse("30min").unwrap().seconds(), 1800);
        assert_eq!(Period::parse("24h").unwrap().seconds(), 86_400);
        assert_eq!(Period::parse("60d").unwrap().days(), 60);
        assert_eq!(Period::parse("6w").unwrap().days(), 42);
        assert_eq!(Period::parse("2y").unwrap().days(), 730);
        assert_eq!(
            Period::parse("2y").unwrap().as_duration(),
            time::Duration::days(730)
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "", "d", "60", "-5d", "+5d", " 5d", "5d ", "5 d", "1.5h", "5D", "3x",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Period::parse("0d"), Err(PeriodError::Zero));
        assert!(matches!(
            Period::parse("3m"),
            Err(PeriodError::UnknownUnit { .. })
        ));
        assert!(Period::parse("3m").unwrap_err().to_string().contains("30d"));
        assert!(matches!(
            Period::parse("1001y"),
            Err(PeriodError::TooLong(_))
        ));
        assert!(matches!(
            Period::parse("99999999999999999999s"),
            Err(PeriodError::TooLong(_))
        ));
        assert!(Period::parse("1000y").is_ok());
    }

    #[test]
    fn display_is_shortest_and_round_trips() {
        for (input, shown) in [
            ("90s", "90s"),
            ("60s", "1min"),
            ("120min", "2h"),
            ("24h", "1d"),
            ("14d", "2w"),
            ("60d", "60d"),
            ("730d", "2y"),
            ("3y", "3y"),
        ] {
            let p = Period::parse(input).unwrap();
            assert_eq!(p.to_string(), shown);
            assert_eq!(Period::parse(shown).unwrap(), p);
        }
        assert_eq!(Period::parse("3y").unwrap().humanize(), "3 years");
        assert_eq!(Period::parse("1d").unwrap().humanize(), "1 day");
    }

    #[test]
    fn ordering() {
        assert!(Period::parse("2y").unwrap() > Period::parse("700d").unwrap());
        assert!(Period::parse("1h").unwrap() < Period::parse("61min").unwrap());
    }
}

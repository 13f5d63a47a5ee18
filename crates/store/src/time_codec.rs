//! Times are stored as Unix microseconds: portable across SQLite and PostgreSQL, ordered,
//! and exact enough for audit ordering.

use time::OffsetDateTime;

/// Encodes a time for storage.
pub fn to_micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

/// Decodes a stored time; out-of-range values (a hand-edited row) clamp to the epoch.
pub fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

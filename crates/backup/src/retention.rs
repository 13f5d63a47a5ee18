//! Which snapshots to keep: data snapshots on a daily/weekly/monthly schedule and never past
//! a maximum age; key snapshots only for the key window, so an erased subject's key is gone
//! from every backup once the window has passed.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::Stream;
use crate::id::SnapshotId;

/// The retention policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Newest data snapshot of each of the last `daily` days that have one.
    pub daily: u32,
    /// … of each of the last `weekly` ISO weeks.
    pub weekly: u32,
    /// … of each of the last `monthly` months.
    pub monthly: u32,
    /// No data snapshot older than this is kept, whatever the counts say.
    #[serde(with = "seconds")]
    pub max_age: Duration,
    /// Key snapshots are kept this long, and no longer.
    #[serde(with = "seconds")]
    pub key_window: Duration,
}

impl Default for Retention {
    /// 7 daily, 4 weekly, 12 monthly, at most 365 days; keys 30 days.
    fn default() -> Self {
        Self {
            daily: 7,
            weekly: 4,
            monthly: 12,
            max_age: Duration::days(365),
            key_window: Duration::days(30),
        }
    }
}

/// Maps a time to its day, week or month.
type Bucket = fn(OffsetDateTime) -> (i32, u32);

mod seconds {
    use serde::{Deserialize as _, Deserializer, Serializer};
    use time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.whole_seconds())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        i64::deserialize(d).map(Duration::seconds)
    }
}

impl Retention {
    /// The snapshots among `snapshots` (id, time) that the policy no longer keeps at `now`.
    #[must_use]
    pub fn expired(
        &self,
        now: OffsetDateTime,
        snapshots: &[(SnapshotId, OffsetDateTime)],
    ) -> Vec<SnapshotId> {
        let mut data: Vec<_> = snapshots
            .iter()
            .filter(|(id, _)| id.stream() == Stream::Data)
            .collect();
        data.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        let mut keep: BTreeSet<&SnapshotId> = BTreeSet::new();
        let buckets: [(u32, Bucket); 3] = [
            (self.daily, |t| (t.year(), u32::from(t.ordinal()))),
            (self.weekly, |t| {
                let (y, w, _) = t.to_iso_week_date();
                (y, u32::from(w))
            }),
            (self.monthly, |t| (t.year(), u32::from(u8::from(t.month())))),
        ];
        for (count, bucket) in buckets {
            let mut last = None;
            let mut kept = 0;
            for (id, at) in &data {
                if kept >= count {
                    break;
                }
                let b = bucket(*at);
                if last != Some(b) {
                    keep.insert(id);
                    last = Some(b);
                    kept += 1;
                }
            }
        }
        let oldest_data = now - self.max_age;
        let oldest_keys = now - self.key_window;
        snapshots
            .iter()
            .filter(|(id, at)| match id.stream() {
                Stream::Data => !keep.contains(id) || *at < oldest_data,
                Stream::Keys => *at < oldest_keys,
            })
            .map(|(id, _)| id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn snaps(stream: Stream, times: &[OffsetDateTime]) -> Vec<(SnapshotId, OffsetDateTime)> {
        times
            .iter()
            .map(|t| (SnapshotId::new(*t, stream, 0).unwrap(), *t))
            .collect()
    }

    #[test]
    fn a_year_of_daily_data_snapshots_keeps_the_schedule() {
        let start = datetime!(2026-01-01 02:00 UTC);
        let times: Vec<_> = (0..400).map(|d| start + Duration::days(d)).collect();
        let all = snaps(Stream::Data, &times);
        let now = *times.last().unwrap();
        let expired = Retention::default().expired(now, &all);
        let kept: Vec<_> = all
            .iter()
            .filter(|(id, _)| !expired.contains(id))
            .map(|(_, t)| *t)
            .collect();
        // 7 daily + a few weekly (overlapping the last days) + monthly, all within a year.
        assert!(kept.len() >= 12 && kept.len() <= 23, "{}", kept.len());
        assert!(kept.iter().all(|t| now - *t <= Duration::days(365)));
        for d in 0..7 {
            assert!(kept.contains(&(now - Duration::days(d))), "day {d}");
        }
    }

    #[test]
    fn nothing_older_than_the_maximum_age_survives() {
        let now = datetime!(2027-06-01 00:00 UTC);
        let all = snaps(Stream::Data, &[now - Duration::days(400)]);
        assert_eq!(Retention::default().expired(now, &all).len(), 1);
    }

    #[test]
    fn key_snapshots_last_only_the_key_window() {
        let now = datetime!(2027-06-01 00:00 UTC);
        let all = snaps(
            Stream::Keys,
            &[now - Duration::days(31), now - Duration::days(29), now],
        );
        let expired = Retention::default().expired(now, &all);
        assert_eq!(expired, vec![all[0].0.clone()]);
    }
}

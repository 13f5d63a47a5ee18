//! Sliding windows with bounded memory, one per (rule, scope key).
//!
//! A window remembers at most `threshold` (+1 for distinct counts) timestamps, because that is
//! all a hit needs; a fired window starts afresh, so a sustained attack produces one hit per
//! `threshold` events, each a bump of the same alert. At most [`MAX_KEYS`] keys are tracked
//! per rule: past it, windows with nothing left inside them are dropped first, then arbitrary
//! ones (an attacker spraying keys loses his own state, never memory).

use std::collections::{HashMap, VecDeque};

use uuid::Uuid;

/// Most keys one rule tracks at a time.
pub(crate) const MAX_KEYS: usize = 16_384;

/// Most audit indices an alert keeps from one hit.
pub(crate) const MAX_HIT_EVENTS: usize = 16;

/// What a window remembers about one event: its time (Unix microseconds) and its audit index.
type Mark = (i64, Option<u64>);

/// Counts events of one key within the window.
#[derive(Debug, Default)]
pub(crate) struct Count {
    marks: VecDeque<Mark>,
}

impl Count {
    /// Adds an event at `at`; returns the hit's audit indices when `threshold` events now lie
    /// within `window` (and starts the window afresh).
    pub(crate) fn add(
        &mut self,
        at: i64,
        idx: Option<u64>,
        threshold: usize,
        window: i64,
    ) -> Option<Vec<u64>> {
        while self.marks.front().is_some_and(|(t, _)| *t <= at - window) {
            self.marks.pop_front();
        }
        self.marks.push_back((at, idx));
        if self.marks.len() >= threshold {
            let events = indices(self.marks.iter());
            self.marks.clear();
            return Some(events);
        }
        None
    }

    fn newest(&self) -> Option<i64> {
        self.marks.back().map(|(t, _)| *t)
    }
}

/// Counts the distinct subjects of one key within the window.
#[derive(Debug, Default)]
pub(crate) struct Distinct {
    seen: HashMap<Uuid, Mark>,
    newest: i64,
}

impl Distinct {
    /// Adds `subject` seen at `at`; returns the hit's audit indices when more than
    /// `threshold` distinct subjects now lie within `window` (and starts afresh).
    pub(crate) fn add(
        &mut self,
        subject: Uuid,
        at: i64,
        idx: Option<u64>,
        threshold: usize,
        window: i64,
    ) -> Option<Vec<u64>> {
        self.newest = self.newest.max(at);
        self.seen.insert(subject, (at, idx));
        if self.seen.len() <= threshold {
            return None;
        }
        // Only over the threshold is it worth forgetting what slid out of the window.
        self.seen.retain(|_, (t, _)| *t > at - window);
        if self.seen.len() <= threshold {
            return None;
        }
        let mut marks: Vec<&Mark> = self.seen.values().collect();
        marks.sort_unstable();
        let events = indices(marks.into_iter());
        self.seen.clear();
        Some(events)
    }
}

/// The first audit indices of a hit, in order, capped.
fn indices<'a>(marks: impl Iterator<Item = &'a Mark>) -> Vec<u64> {
    marks.filter_map(|(_, i)| *i).take(MAX_HIT_EVENTS).collect()
}

/// Windows by key, bounded.
#[derive(Debug)]
pub(crate) struct Windows<W> {
    map: HashMap<String, W>,
}

impl<W: Default> Windows<W> {
    pub(crate) fn new() -> Self {
        Self {
            map: HashMap::new(),
        }
    }

    /// The window of `key`, made room for if new. `stale` says whether a window has nothing
    /// left inside it.
    pub(crate) fn get(&mut self, key: &str, stale: impl Fn(&W) -> bool) -> &mut W {
        if !self.map.contains_key(key) && self.map.len() >= MAX_KEYS {
            self.map.retain(|_, w| !stale(w));
            if self.map.len() >= MAX_KEYS
                && let Some(k) = self.map.keys().next().cloned()
            {
                self.map.remove(&k);
            }
        }
        self.map.entry(key.to_owned()).or_default()
    }

    /// How many keys are tracked.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// Whether a count window has nothing within `window` of `now`.
pub(crate) fn count_stale(w: &Count, now: i64, window: i64) -> bool {
    w.newest().is_none_or(|t| t <= now - window)
}

/// Whether a distinct window has nothing within `window` of `now`.
pub(crate) fn distinct_stale(w: &Distinct, now: i64, window: i64) -> bool {
    w.seen.is_empty() || w.newest <= now - window
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    #[test]
    fn count_fires_at_threshold_within_window_only() {
        let mut c = Count::default();
        for i in 0..4 {
            assert!(c.add(i * MIN, Some(i as u64), 5, 5 * MIN).is_none());
        }
        // The first event slid out: 4 in the window.
        assert!(c.add(5 * MIN, Some(4), 5, 5 * MIN).is_none());
        let hit = c.add(5 * MIN + 1, Some(5), 5, 5 * MIN).unwrap();
        assert_eq!(hit, vec![1, 2, 3, 4, 5]);
        // Fired windows start afresh.
        assert!(c.add(5 * MIN + 2, Some(6), 5, 5 * MIN).is_none());
    }

    #[test]
    fn distinct_counts_subjects_not_events() {
        let mut d = Distinct::default();
        let subjects: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        for i in 0..100 {
            assert!(
                d.add(subjects[i % 3], i as i64, Some(i as u64), 3, MIN)
                    .is_none()
            );
        }
        assert!(d.add(Uuid::new_v4(), 101, Some(101), 3, MIN).is_some());
    }

    #[test]
    fn keys_are_bounded() {
        let mut w: Windows<Count> = Windows::new();
        for i in 0..(MAX_KEYS + 100) {
            w.get(&format!("k{i}"), |c| count_stale(c, 0, MIN))
                .add(0, None, 10, MIN);
        }
        assert_eq!(w.len(), MAX_KEYS);
    }
}

//! Failed-authentication throttle and failure aggregation, so that guessing tokens is slow and
//! cannot flood the durable audit log.
//!
//! Two token buckets apply to every failure: one per *source* (the keyed hash of the client
//! address, never the address itself) and one per *presented token* (a short prefix of its
//! SHA-256: Ward's readable token prefixes name only the key type, so throttling by them would
//! let anyone lock out every key of a type). Each bucket holds the policy's
//! `lockout_threshold` failures and refills over `lockout_window`. A request whose source or
//! token bucket is empty is refused before it reaches the store; a valid token from another
//! source has its own, full buckets and is never slowed. Successful authentications consume
//! nothing, so a busy client with a good key is never throttled.
//!
//! Failures are audited per (source, window of `lockout_window`): the first failure of a
//! window is written at once (so a single probe is durable), the rest of the window, refused
//! ones included, is only counted and written as one summary event when the window closes or
//! the server stops. Everything here is in memory and bounded: at most [`MAX_ENTRIES`] keys
//! per map, and nothing outlives the policy's `ip_hash_window`.

use std::collections::HashMap;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// Most keys each map holds; past it, idle entries are dropped first, then arbitrary ones
/// (an attacker spraying addresses loses his own throttle state, not a victim's access).
pub(crate) const MAX_ENTRIES: usize = 65_536;

/// Which bucket refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// Whole seconds until one more attempt is allowed (at least 1).
    pub(crate) retry_after: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens left at `at`; may dip below zero under concurrency, which only lengthens the
    /// wait.
    level: f64,
    at: OffsetDateTime,
}

/// Failures of one source within one window, not yet written as a summary.
#[derive(Debug, Clone)]
pub(crate) struct WindowCount {
    /// Start of the window.
    pub(crate) start: OffsetDateTime,
    /// Failures after the first (which was written when it happened).
    pub(crate) failures: u64,
    /// Requests refused by the throttle (they never reached the store).
    pub(crate) throttled: u64,
    /// Whether the window's first failure was written as it happened.
    written: bool,
}

/// What a failed or refused attempt asks the caller to audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// First failure of the source's window: write one event now.
    First {
        /// Start of the window.
        start: OffsetDateTime,
    },
    /// Counted for the window's summary; nothing to write now.
    Counted,
}

#[derive(Default)]
struct State {
    sources: HashMap<String, Bucket>,
    tokens: HashMap<[u8; 16], Bucket>,
    windows: HashMap<String, WindowCount>,
}

/// The throttle and aggregator of one server process.
pub(crate) struct AuthGuard {
    threshold: f64,
    window: Duration,
    keep: Duration,
    state: Mutex<State>,
}

impl AuthGuard {
    /// `threshold` failures per `window` (both from the policy's `[security]`); source hashes
    /// are forgotten after `keep` (`ip_hash_window`) at the latest.
    pub(crate) fn new(threshold: u32, window: Duration, keep: Duration) -> Self {
        Self {
            threshold: f64::from(threshold.max(1)),
            window: if window.is_positive() {
                window
            } else {
                Duration::seconds(1)
            },
            keep,
            state: Mutex::new(State::default()),
        }
    }

    fn refill(&self, b: &mut Bucket, now: OffsetDateTime) {
        let elapsed = (now - b.at).as_seconds_f64().max(0.0);
        let rate = self.threshold / self.window.as_seconds_f64();
        b.level = (b.level + elapsed * rate).min(self.threshold);
        b.at = now;
    }

    fn wait(&self, b: &Bucket) -> Option<u64> {
        if b.level >= 1.0 {
            return None;
        }
        let rate = self.threshold / self.window.as_seconds_f64();
        // Saturating float-to-int cast; the value is positive and at most a window long.
        Some(((1.0 - b.level) / rate).ceil().max(1.0) as u64)
    }

    /// Whether `source` or `token` is out of attempts; counts a refusal toward the source's
    /// window summary. Consumes nothing.
    pub(crate) fn check(
        &self,
        source: Option<&str>,
        token: Option<&[u8; 16]>,
        now: OffsetDateTime,
    ) -> Result<(), Refusal> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut worst = None::<u64>;
        if let Some(b) = source.and_then(|s| st.sources.get_mut(s)) {
            self.refill(b, now);
            worst = worst.max(self.wait(b));
        }
        if let Some(b) = token.and_then(|t| st.tokens.get_mut(t)) {
            self.refill(b, now);
            worst = worst.max(self.wait(b));
        }
        match worst {
            None => Ok(()),
            Some(retry_after) => {
                if let Some(s) = source {
                    let start = self.window_start(now);
                    let w = st.windows.entry(s.to_owned()).or_insert(WindowCount {
                        start,
                        failures: 0,
                        throttled: 0,
                        written: false,
                    });
                    // A refusal in a new window joins that window; the old one is flushed by
                    // the next `take_closed`.
                    if w.start == start {
                        w.throttled += 1;
                    }
                }
                Err(Refusal { retry_after })
            }
        }
    }

    /// Charges a failed authentication to both buckets and the source's window.
    pub(crate) fn fail(
        &self,
        source: Option<&str>,
        token: Option<&[u8; 16]>,
        now: OffsetDateTime,
    ) -> (Record, Option<(String, WindowCount)>) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let full = Bucket {
            level: self.threshold,
            at: now,
        };
        if let Some(s) = source {
            if !st.sources.contains_key(s) {
                make_room(&mut st.sources, |b| self.is_idle(b, now));
            }
            let b = st.sources.entry(s.to_owned()).or_insert(full);
            self.refill(b, now);
            b.level = (b.level - 1.0).max(-self.threshold);
        }
        if let Some(t) = token {
            if !st.tokens.contains_key(t) {
                make_room(&mut st.tokens, |b| self.is_idle(b, now));
            }
            let b = st.tokens.entry(*t).or_insert(full);
            self.refill(b, now);
            b.level = (b.level - 1.0).max(-self.threshold);
        }
        let start = self.window_start(now);
        let key = source.unwrap_or("").to_owned();
        let (rec, old) = match st.windows.get_mut(&key) {
            Some(w) if w.start == start && w.written => {
                w.failures += 1;
                (Record::Counted, None)
            }
            Some(w) if w.start == start => {
                w.written = true;
                (Record::First { start }, None)
            }
            Some(w) => {
                // The source's previous window closed: hand its counts back for a summary.
                let old = std::mem::replace(
                    w,
                    WindowCount {
                        start,
                        failures: 0,
                        throttled: 0,
                        written: true,
                    },
                );
                (Record::First { start }, Some((key.clone(), old)))
            }
            None => {
                let evicted = if st.windows.len() >= MAX_ENTRIES {
                    evict_one(&mut st.windows)
                } else {
                    None
                };
                st.windows.insert(
                    key,
                    WindowCount {
                        start,
                        failures: 0,
                        throttled: 0,
                        written: true,
                    },
                );
                (Record::First { start }, evicted)
            }
        };
        (rec, old.filter(|(_, w)| w.failures + w.throttled > 0))
    }

    /// Windows that have closed by `now` (all of them when `all`), with their source, for
    /// their summary events; also forgets idle buckets and anything older than the IP-hash
    /// window.
    pub(crate) fn take_closed(&self, now: OffsetDateTime, all: bool) -> Vec<(String, WindowCount)> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.window_start(now);
        let mut out = Vec::new();
        st.windows.retain(|source, w| {
            if all || w.start < current {
                if w.failures + w.throttled > 0 {
                    out.push((source.clone(), w.clone()));
                }
                false
            } else {
                true
            }
        });
        let horizon = now - self.keep;
        st.sources
            .retain(|_, b| !self.is_idle(b, now) && b.at >= horizon);
        st.tokens
            .retain(|_, b| !self.is_idle(b, now) && b.at >= horizon);
        out
    }

    /// A bucket that has refilled completely carries no information and may go.
    fn is_idle(&self, b: &Bucket, now: OffsetDateTime) -> bool {
        let mut b = *b;
        self.refill(&mut b, now);
        b.level >= self.threshold
    }

    fn window_start(&self, now: OffsetDateTime) -> OffsetDateTime {
        let w = self.window.whole_seconds().max(1);
        let t = now.unix_timestamp();
        OffsetDateTime::from_unix_timestamp(t - t.rem_euclid(w)).unwrap_or(now)
    }

    /// How many keys are held (bounded-memory tests).
    #[cfg(test)]
    fn sizes(&self) -> (usize, usize, usize) {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (st.sources.len(), st.tokens.len(), st.windows.len())
    }
}

fn make_room<K: Clone + Eq + std::hash::Hash>(
    map: &mut HashMap<K, Bucket>,
    idle: impl Fn(&Bucket) -> bool,
) {
    if map.len() < MAX_ENTRIES {
        return;
    }
    map.retain(|_, b| !idle(b));
    if map.len() >= MAX_ENTRIES {
        evict_one(map);
    }
}

fn evict_one<K: Clone + Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) -> Option<(K, V)> {
    let k = map.keys().next()?.clone();
    map.remove_entry(&k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-15 09:00 UTC);

    fn guard() -> AuthGuard {
        AuthGuard::new(3, Duration::minutes(15), Duration::days(7))
    }

    #[test]
    fn threshold_failures_lock_the_source_until_a_token_refills() {
        let g = guard();
        for _ in 0..3 {
            assert_eq!(g.check(Some("a"), None, T0), Ok(()));
            g.fail(Some("a"), None, T0);
        }
        let r = g.check(Some("a"), None, T0).unwrap_err();
        // One failure refills every 5 minutes.
        assert_eq!(r.retry_after, 300);
        assert!(
            g.check(Some("a"), None, T0 + Duration::seconds(299))
                .is_err()
        );
        assert_eq!(
            g.check(Some("a"), None, T0 + Duration::seconds(300)),
            Ok(())
        );
        // Another source is untouched.
        assert_eq!(g.check(Some("b"), None, T0), Ok(()));
    }

    #[test]
    fn a_repeated_token_is_throttled_across_sources() {
        let g = guard();
        let tok = [7u8; 16];
        for i in 0..3 {
            g.fail(Some(&format!("s{i}")), Some(&tok), T0);
        }
        assert!(g.check(Some("fresh"), Some(&tok), T0).is_err());
        assert_eq!(g.check(Some("fresh"), Some(&[8u8; 16]), T0), Ok(()));
    }

    #[test]
    fn one_written_event_then_one_summary_per_window() {
        let g = guard();
        let (first, old) = g.fail(Some("a"), None, T0);
        assert_eq!(first, Record::First { start: T0 });
        assert!(old.is_none());
        for _ in 0..9 {
            assert_eq!(g.fail(Some("a"), None, T0).0, Record::Counted);
        }
        let _ = g.check(Some("a"), None, T0);
        assert!(g.take_closed(T0 + Duration::minutes(14), false).is_empty());
        let closed = g.take_closed(T0 + Duration::minutes(15), false);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].0, "a");
        assert_eq!((closed[0].1.failures, closed[0].1.throttled), (9, 1));
        assert!(g.take_closed(T0 + Duration::minutes(15), true).is_empty());
    }

    #[test]
    fn a_new_window_hands_back_the_old_counts() {
        let g = guard();
        g.fail(Some("a"), None, T0);
        g.fail(Some("a"), None, T0);
        let (rec, old) = g.fail(Some("a"), None, T0 + Duration::minutes(20));
        assert_eq!(
            rec,
            Record::First {
                start: T0 + Duration::minutes(15)
            }
        );
        assert_eq!(old.map(|(s, w)| (s, w.failures)), Some(("a".to_owned(), 1)));
    }

    #[test]
    fn memory_is_bounded_and_idle_state_is_forgotten() {
        let g = guard();
        for i in 0..(MAX_ENTRIES + 100) {
            let mut t = [0u8; 16];
            t[..8].copy_from_slice(&(i as u64).to_le_bytes());
            g.fail(Some(&format!("s{i}")), Some(&t), T0);
        }
        let (s, t, w) = g.sizes();
        assert!(s <= MAX_ENTRIES && t <= MAX_ENTRIES && w <= MAX_ENTRIES);
        // Once refilled (one window later) and flushed, nothing is kept.
        let _ = g.take_closed(T0 + Duration::minutes(16), false);
        assert_eq!(g.sizes(), (0, 0, 0));
    }
}

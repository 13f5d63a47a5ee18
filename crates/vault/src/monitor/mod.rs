//! Detection rules over the audit stream, evaluated as it is appended.
//!
//! The vault hands every commit's audit events to the [`Monitor`] right after the commit
//! succeeded (`Vault::commit`), with the log indices the store assigned; nothing polls the
//! database. Each built-in rule ([`ward_policy::RuleName`]) classifies an event into at most
//! one observation with a scope key (`rules.rs`); observations are counted in sliding windows
//! of bounded size per key (`windows.rs`), and a window that reaches its threshold is a
//! [`Hit`], which `alerts.rs` turns into an alert row (opened once per rule and scope while
//! unresolved, bumped after that) and an audit event of its own.
//!
//! The state is in memory and per process: with several servers on one PostgreSQL, each
//! counts what it appended itself, and the alert table deduplicates across them. Failed
//! authentication is reported by the throttle (`observe_auth_failure`), because those events
//! are aggregated before they reach the log; findings that are no event at all (permissions,
//! audit verification) arrive through `Vault::report_finding`.

mod alerts;
mod rules;
mod windows;

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;
use uuid::Uuid;
use ward_policy::{MonitoringSettings, RuleName, RuleSettings, Severity};
use ward_store::Op;

pub(crate) use alerts::Recent;
pub(crate) use alerts::alert_out as alert_view;
pub use alerts::{AlertChange, AlertOut, MAX_ALERT_PAGE};
pub(crate) use rules::Observation;
use windows::{Count, Distinct, Windows, count_stale, distinct_stale};

/// A rule's window reached its threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub(crate) rule: RuleName,
    pub(crate) scope: String,
    pub(crate) tenant: Option<Uuid>,
    pub(crate) severity: Severity,
    pub(crate) at: OffsetDateTime,
    /// The audit indices that triggered it (capped).
    pub(crate) events: Vec<u64>,
}

/// The rule engine of one server process.
pub(crate) struct Monitor {
    rules: HashMap<RuleName, RuleSettings>,
    state: Mutex<State>,
}

struct State {
    counts: HashMap<RuleName, Windows<Count>>,
    distinct: Windows<Distinct>,
}

impl Monitor {
    pub(crate) fn new(settings: &MonitoringSettings) -> Self {
        let rules = RuleName::ALL
            .iter()
            .filter_map(|r| settings.rule(*r).map(|s| (*r, s)))
            .collect();
        Self {
            rules,
            state: Mutex::new(State {
                counts: HashMap::new(),
                distinct: Windows::new(),
            }),
        }
    }

    /// What the rules see in a commit's audit events, each with its position among them.
    pub(crate) fn observe_ops(&self, ops: &[Op]) -> Vec<(usize, Observation)> {
        let mut out = Vec::new();
        if self.rules.is_empty() {
            return out;
        }
        let mut n = 0;
        for op in ops {
            if let Op::Audit(event) = op {
                rules::classify(event, |o| {
                    if self.rules.contains_key(&o.rule) {
                        out.push((n, o));
                    }
                });
                n += 1;
            }
        }
        out
    }

    /// Counts a committed commit's observations; `indices` are its audit indices in order.
    pub(crate) fn feed(&self, seen: Vec<(usize, Observation)>, indices: &[u64]) -> Vec<Hit> {
        seen.into_iter()
            .filter_map(|(n, o)| self.observe(o, indices.get(n).copied()))
            .collect()
    }

    /// A failed authentication from `source` (keyed hash of the client address) against
    /// `account` (a short hash prefix of the presented credential or login account).
    pub(crate) fn observe_auth_failure(
        &self,
        source: Option<&str>,
        account: Option<&[u8; 16]>,
        at: OffsetDateTime,
    ) -> Vec<Hit> {
        let mut hits = Vec::new();
        if !self.rules.contains_key(&RuleName::FailedAuthentication) {
            return hits;
        }
        let scopes = [
            source.map(|s| format!("source:{s}")),
            account.map(|a| format!("credential:{}", hex::encode(&a[..8]))),
        ];
        for scope in scopes.into_iter().flatten() {
            let o = Observation {
                rule: RuleName::FailedAuthentication,
                scope,
                tenant: None,
                subject: None,
                at,
            };
            hits.extend(self.observe(o, None));
        }
        hits
    }

    /// Counts one observation.
    pub(crate) fn observe(&self, o: Observation, idx: Option<u64>) -> Option<Hit> {
        let settings = self.rules.get(&o.rule)?;
        let threshold = usize::try_from(settings.threshold)
            .unwrap_or(usize::MAX)
            .max(1);
        let window = settings.window.seconds().saturating_mul(1_000_000);
        let now = micros(o.at);
        let events = if o.rule == RuleName::BulkRead {
            let subject = o.subject?;
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.distinct
                .get(&o.scope, |w| distinct_stale(w, now, window))
                .add(subject, now, idx, threshold, window)?
        } else if threshold == 1 {
            idx.into_iter().collect()
        } else {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.counts
                .entry(o.rule)
                .or_insert_with(Windows::new)
                .get(&o.scope, |w| count_stale(w, now, window))
                .add(now, idx, threshold, window)?
        };
        Some(Hit {
            rule: o.rule,
            scope: o.scope,
            tenant: o.tenant,
            severity: settings.severity,
            at: o.at,
            events,
        })
    }
}

fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;

/// Runs `events` through a fresh rule engine with `settings`, one commit per `per_commit`
/// events, with consecutive indices; returns how many hits they made. For `ward bench
/// --rules`, which times it: the engine is otherwise only reachable through a vault's commits.
pub fn evaluate_rules(
    settings: &MonitoringSettings,
    events: Vec<ward_audit::AuditEvent>,
    per_commit: usize,
) -> usize {
    let monitor = Monitor::new(settings);
    let mut ops: Vec<Op> = Vec::with_capacity(per_commit);
    let mut indices = Vec::with_capacity(per_commit);
    let mut hits = 0;
    for (next, event) in (0u64..).zip(events) {
        ops.push(Op::Audit(Box::new(event)));
        indices.push(next);
        if ops.len() >= per_commit.max(1) {
            hits += monitor.feed(monitor.observe_ops(&ops), &indices).len();
            ops.clear();
            indices.clear();
        }
    }
    if !ops.is_empty() {
        hits += monitor.feed(monitor.observe_ops(&ops), &indices).len();
    }
    hits
}

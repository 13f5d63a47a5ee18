//! Alerts: hits stored durably, listed, acknowledged and resolved.
//!
//! A hit opens an alert for its (rule, scope) unless an unresolved one exists, which is then
//! bumped (count, last seen, events). Opening is an audit event (`alert_open`), as are
//! acknowledging and resolving; bumps are not, so an attack that keeps hitting costs one row
//! update per hit and no storage. Writes of one process are serialized (a lock), and the
//! store's unique index settles a race between processes: the loser bumps instead.
//!
//! A hit of an alert this process wrote less than [`BUMP_INTERVAL`] ago is only counted in
//! memory and written with the next write of that alert: at the next hit after the interval,
//! before any alert is listed or changed, and every minute from the server's housekeeping
//! (`flush_auth_failures`). A flood of failed logins thus writes about one row update a
//! minute, whatever its rate.
//!
//! Operators see every alert (alerts carry ids and counts, never a data value); a tenant's
//! owner, admins and auditors see those of their tenant; the owner (and operators) close them.

use std::collections::HashMap;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, Actor, AuditEvent};
use ward_policy::RuleName;
use ward_store::{AlertOp, AlertQuery, AlertRow, Committed, Op, StoreError};

use super::Hit;
use super::windows::MAX_HIT_EVENTS;
use crate::{Operation, PlatformOperation, RequestContext, Result, Vault, VaultError};

/// How long after writing an alert further hits of it are only counted in memory.
const BUMP_INTERVAL: time::Duration = time::Duration::seconds(60);

/// Scope prefix of the alert a full rule folds new scopes into.
const OVERFLOW: &str = "overflow:";

/// Most alerts whose recent hits are held in memory; past it, all are written out.
const MAX_RECENT: usize = 4_096;

/// Most unresolved alerts of one rule with scopes of their own. Scopes come from what callers
/// choose (a source address, a key): an attacker with many addresses must not make one alert
/// row (and one webhook delivery) per address. Past it, new scopes are counted in one
/// `overflow:<tenant>` alert of the rule, whose count tells how much was folded into it.
pub(crate) const MAX_OPEN_PER_RULE: u64 = 200;

/// Alerts this process wrote lately, with the hits counted since.
#[derive(Default)]
pub(crate) struct Recent {
    map: HashMap<(RuleName, String), RecentAlert>,
}

struct RecentAlert {
    id: Uuid,
    tenant: Option<Uuid>,
    severity: ward_policy::Severity,
    /// When it was last written.
    written: OffsetDateTime,
    /// Hits since, not yet written.
    hits: i64,
    /// Time of the latest of them.
    at: OffsetDateTime,
    /// The alert's events as last written plus those of the hits since (capped).
    events: Vec<u64>,
}

/// Most audit indices an alert keeps in all.
const MAX_ALERT_EVENTS: usize = 64;

/// Largest page of alerts.
pub const MAX_ALERT_PAGE: u32 = 500;

/// An alert as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlertOut {
    /// Alert id.
    pub id: Uuid,
    /// The rule that opened it.
    pub rule: String,
    /// What the rule counted by (`actor:<id>`, `source:<hash>`, `tenant:<id>`, …).
    pub scope: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// The tenant concerned, if any.
    pub tenant: Option<Uuid>,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    /// First hit.
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    /// Latest hit.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// Hits so far.
    pub count: i64,
    /// Audit log indices of the events that triggered it (the first ones).
    pub events: Vec<u64>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub acknowledged_at: Option<OffsetDateTime>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
}

/// What to do to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertChange {
    /// Someone is looking at it.
    Acknowledge,
    /// It is dealt with.
    Resolve,
}

impl Vault {
    /// Commits `ops` and feeds their audit events to the rule engine once they are durable.
    /// Every commit of the vault goes through here, so no audited change escapes the rules.
    pub(crate) async fn commit(&self, ops: Vec<Op>) -> ward_store::Result<Committed> {
        let seen = self.inner.monitor.observe_ops(&ops);
        let committed = self.inner.store.commit(ops).await?;
        if !seen.is_empty() {
            let hits = self.inner.monitor.feed(seen, &committed.audit_indices);
            self.raise(hits).await;
        }
        Ok(committed)
    }

    /// Reports a finding that is no audit event (a permission problem `ward doctor` found, a
    /// failed audit verification): it opens (or bumps) an alert of `rule` for `scope` at once.
    pub async fn report_finding(&self, rule: RuleName, scope: &str) {
        let Some(settings) = self.policy().monitoring.rule(rule) else {
            return;
        };
        let hit = Hit {
            rule,
            scope: scope.to_owned(),
            tenant: None,
            severity: settings.severity,
            at: self.now(),
            events: Vec::new(),
        };
        self.raise(vec![hit]).await;
    }

    /// Sets the `ward_alerts_open{rule,severity}` gauges from the store (every rule and
    /// severity, zero included, so a closed alert's series drops back to 0).
    ///
    /// # Errors
    /// If the store cannot be read.
    pub async fn update_alert_metrics(&self) -> Result<()> {
        let counts = self.inner.store.open_alert_counts().await?;
        for rule in RuleName::ALL {
            for severity in ward_policy::Severity::ALL {
                let n = counts
                    .iter()
                    .find(|(r, s, _)| r == rule.as_str() && s == severity.as_str())
                    .map_or(0, |(_, _, n)| *n);
                #[allow(clippy::cast_precision_loss)] // a count of alerts is far below 2^52
                metrics::gauge!(
                    "ward_alerts_open",
                    "rule" => rule.as_str(),
                    "severity" => severity.as_str()
                )
                .set(n as f64);
            }
        }
        Ok(())
    }

    /// Charges a failed authentication to the failed-authentication rule.
    pub(crate) async fn observe_auth_failure(
        &self,
        source: Option<&str>,
        account: Option<&[u8; 16]>,
    ) {
        let hits = self
            .inner
            .monitor
            .observe_auth_failure(source, account, self.now());
        self.raise(hits).await;
    }

    /// Stores hits as alerts. A failure is logged, never returned: the change that caused
    /// the hit is already committed and answered.
    pub(crate) async fn raise(&self, hits: Vec<Hit>) {
        if hits.is_empty() {
            return;
        }
        let mut recent = self.inner.alert_writes.lock().await;
        for hit in hits {
            metrics::counter!("ward_alert_hits_total", "rule" => hit.rule.as_str()).increment(1);
            if let Some(r) = recent.map.get_mut(&(hit.rule, hit.scope.clone()))
                && hit.at - r.written < BUMP_INTERVAL
            {
                r.hits += 1;
                r.at = r.at.max(hit.at);
                merge(&mut r.events, &hit.events);
                continue;
            }
            if let Err(e) = self.raise_one(&mut recent, &hit).await {
                tracing::warn!(rule = hit.rule.as_str(), error = %e, "alert not stored");
            }
        }
    }

    /// Writes the hits counted in memory (every alert's with `all`, else those whose
    /// interval has passed) and forgets alerts with no hit pending.
    pub(crate) async fn flush_alerts(&self, all: bool) -> Result<()> {
        let mut recent = self.inner.alert_writes.lock().await;
        self.flush_recent(&mut recent, all).await
    }

    async fn flush_recent(&self, recent: &mut Recent, all: bool) -> Result<()> {
        let now = self.now();
        let due: Vec<(RuleName, String)> = recent
            .map
            .iter()
            .filter(|(_, r)| all || now - r.written >= BUMP_INTERVAL || r.hits == 0)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(r) = recent.map.remove(&key) else {
                continue;
            };
            if r.hits == 0 {
                continue;
            }
            let bump = Op::Alert(AlertOp::Bump {
                id: r.id,
                hits: r.hits,
                at: r.at,
                events: json_list(&r.events),
            });
            match self.inner.store.commit(vec![bump]).await {
                Ok(_) => {}
                // Resolved meanwhile (on another server): the hits open a new alert.
                Err(StoreError::NotFound(_)) => {
                    let hit = Hit {
                        rule: key.0,
                        scope: key.1,
                        tenant: r.tenant,
                        severity: r.severity,
                        at: r.at,
                        events: Vec::new(),
                    };
                    self.raise_one(recent, &hit).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn raise_one(&self, recent: &mut Recent, hit: &Hit) -> Result<()> {
        if recent.map.len() >= MAX_RECENT {
            Box::pin(self.flush_recent(recent, true)).await?;
        }
        let rule = hit.rule.as_str();
        // Two tries: a concurrent opening (Conflict) or resolution (NotFound) changes which
        // row to write, once.
        for _ in 0..2 {
            let (id, events, outcome) = match self.inner.store.live_alert(rule, &hit.scope).await? {
                Some(a) => {
                    let mut events: Vec<u64> = serde_json::from_str(&a.events).unwrap_or_default();
                    merge(&mut events, &hit.events);
                    let done = self
                        .inner
                        .store
                        .commit(vec![Op::Alert(AlertOp::Bump {
                            id: a.id,
                            hits: 1,
                            at: hit.at,
                            events: json_list(&events),
                        })])
                        .await;
                    (a.id, events, done)
                }
                None if !hit.scope.starts_with(OVERFLOW) && self.rule_is_full(rule).await? => {
                    let folded = Hit {
                        scope: match hit.tenant {
                            Some(t) => format!("{OVERFLOW}{t}"),
                            None => format!("{OVERFLOW}platform"),
                        },
                        ..hit.clone()
                    };
                    return Box::pin(self.raise_one(recent, &folded)).await;
                }
                None => {
                    let events = hit.events[..hit.events.len().min(MAX_HIT_EVENTS)].to_vec();
                    let row = AlertRow {
                        id: Uuid::new_v4(),
                        rule: rule.to_owned(),
                        scope: hit.scope.clone(),
                        severity: hit.severity.as_str().to_owned(),
                        tenant: hit.tenant,
                        status: "open".into(),
                        first_seen: hit.at,
                        last_seen: hit.at,
                        count: 1,
                        events: json_list(&events),
                        acknowledged_by: None,
                        acknowledged_at: None,
                        resolved_by: None,
                        resolved_at: None,
                    };
                    let id = row.id;
                    let event = self.alert_event(
                        Action::AlertOpen,
                        Actor::system("monitor"),
                        format!("monitor-{id}"),
                        &row,
                    );
                    // The deliveries of the opening, in the same commit: durable together.
                    let deliveries = self.webhook_enqueue_ops("alert.opened", &row).await?;
                    let queued = !deliveries.is_empty();
                    let mut ops = vec![Op::Alert(AlertOp::Insert(row)), Op::Audit(Box::new(event))];
                    ops.extend(deliveries);
                    let done = self.inner.store.commit(ops).await;
                    if queued && done.is_ok() {
                        self.wake_webhooks();
                    }
                    (id, events, done)
                }
            };
            match outcome {
                Ok(_) => {
                    recent.map.insert(
                        (hit.rule, hit.scope.clone()),
                        RecentAlert {
                            id,
                            tenant: hit.tenant,
                            severity: hit.severity,
                            written: hit.at,
                            hits: 0,
                            at: hit.at,
                            events,
                        },
                    );
                    return Ok(());
                }
                Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(VaultError::conflict("alert changed concurrently twice"))
    }

    /// Whether `rule` has [`MAX_OPEN_PER_RULE`] unresolved alerts already (asked only when a
    /// new scope would open one, which is rare).
    async fn rule_is_full(&self, rule: &str) -> Result<bool> {
        let open: u64 = self
            .inner
            .store
            .open_alert_counts()
            .await?
            .iter()
            .filter(|(r, _, _)| r == rule)
            .map(|(_, _, n)| n)
            .sum();
        Ok(open >= MAX_OPEN_PER_RULE)
    }

    /// Alerts, newest first: every alert for an operator (`tenant` = `None`), or one tenant's
    /// for its owner, admins and auditors (and operators).
    ///
    /// # Errors
    /// `NotFound` for a tenant the caller may not see; `Forbidden` for a role without the
    /// permission.
    pub async fn list_alerts(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        status: Option<&str>,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AlertOut>> {
        let event = self
            .authorize_alerts(ctx, tenant, Action::AlertRead, false)
            .await?;
        // What this process counted in memory is part of the answer.
        self.flush_alerts(true).await?;
        let before = match before {
            None => None,
            Some(id) => {
                let row = self.visible_alert(tenant, id).await?;
                Some((row.first_seen, row.id))
            }
        };
        let rows = self
            .inner
            .store
            .alerts(&AlertQuery {
                tenant,
                status: status.map(str::to_owned),
                before,
                limit: limit.clamp(1, MAX_ALERT_PAGE),
            })
            .await?;
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(rows.iter().map(alert_out).collect())
    }

    /// Acknowledges or resolves an alert (operators; a tenant's owner for the tenant's own).
    ///
    /// # Errors
    /// `NotFound` for an alert the caller may not see; `Forbidden` for a role without the
    /// permission; `StateConflict` (`alert_resolved`, `alert_acknowledged`) when the alert is
    /// past that state.
    pub async fn change_alert(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        id: Uuid,
        change: AlertChange,
    ) -> Result<AlertOut> {
        let action = match change {
            AlertChange::Acknowledge => Action::AlertAcknowledge,
            AlertChange::Resolve => Action::AlertResolve,
        };
        let mut event = self.authorize_alerts(ctx, tenant, action, true).await?;
        let mut recent = self.inner.alert_writes.lock().await;
        self.flush_recent(&mut recent, true).await?;
        // What a resolution ends, a later hit must not bump.
        recent.map.retain(|_, r| r.id != id);
        // Released before the commit, which may raise alerts of its own.
        drop(recent);
        let row = self.visible_alert(tenant, id).await?;
        let (from, to) = match (change, row.status.as_str()) {
            (_, "resolved") => {
                return Err(VaultError::StateConflict {
                    code: "alert_resolved",
                    reason: "the alert is already resolved".into(),
                });
            }
            (AlertChange::Acknowledge, "acknowledged") => {
                return Err(VaultError::StateConflict {
                    code: "alert_acknowledged",
                    reason: "the alert is already acknowledged".into(),
                });
            }
            (AlertChange::Acknowledge, from) => (from.to_owned(), "acknowledged"),
            (AlertChange::Resolve, from) => (from.to_owned(), "resolved"),
        };
        let at = self.now();
        let by = event.actor.id.clone();
        let mut changed = row.clone();
        changed.status = to.to_owned();
        if to == "resolved" {
            changed.resolved_by = Some(by.clone());
            changed.resolved_at = Some(at);
        } else {
            changed.acknowledged_by = Some(by.clone());
            changed.acknowledged_at = Some(at);
        }
        let detail = self.alert_event(action, event.actor.clone(), String::new(), &changed);
        event.tenant = row.tenant;
        event.detail = detail.detail;
        let kind = if to == "resolved" {
            "alert.resolved"
        } else {
            "alert.acknowledged"
        };
        let deliveries = self.webhook_enqueue_ops(kind, &changed).await?;
        let queued = !deliveries.is_empty();
        let mut ops = vec![
            Op::Alert(AlertOp::SetStatus {
                id,
                from,
                to: to.to_owned(),
                by,
                at,
            }),
            Op::Audit(Box::new(event)),
        ];
        ops.extend(deliveries);
        match self.commit(ops).await {
            Ok(_) => {
                if queued {
                    self.wake_webhooks();
                }
                Ok(alert_out(&changed))
            }
            Err(StoreError::NotFound(_)) => Err(VaultError::StateConflict {
                code: "alert_changed",
                reason: "the alert changed meanwhile; read it again".into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Decides an alert operation; returns the event that records it.
    async fn authorize_alerts(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        action: Action,
        decide: bool,
    ) -> Result<AuditEvent> {
        let event = self.event(ctx, action, tenant);
        match tenant {
            None => {
                let op = if decide {
                    PlatformOperation::DecideAlerts
                } else {
                    PlatformOperation::ReadAlerts
                };
                self.check_platform(ctx, op, &event).await?;
            }
            Some(t) => {
                let trow = self.visible_tenant(ctx, t, &event).await?;
                let op = if decide {
                    Operation::DecideAlerts
                } else {
                    Operation::ReadAlerts
                };
                // A cancelled tenant's owner still closes its alerts (`Operation::open_on`).
                self.check(&self.tenant_access(ctx, &trow, op), &event)
                    .await?;
            }
        }
        Ok(event)
    }

    /// The alert, if the view (`tenant`, or the platform's for `None`) includes it.
    async fn visible_alert(&self, tenant: Option<Uuid>, id: Uuid) -> Result<AlertRow> {
        match self.inner.store.alert(id).await? {
            Some(a) if tenant.is_none() || a.tenant == tenant => Ok(a),
            _ => Err(VaultError::NotFound("alert")),
        }
    }

    fn alert_event(
        &self,
        action: Action,
        actor: Actor,
        request_id: String,
        a: &AlertRow,
    ) -> AuditEvent {
        AuditEvent::allowed(self.now(), request_id, actor, action, a.tenant).with_detail(
            serde_json::json!({
                "alert": a.id,
                "rule": a.rule,
                "scope": a.scope,
                "severity": a.severity,
                "status": a.status,
                "count": a.count,
            }),
        )
    }
}

/// Adds `more` to `events`, without repeats, up to [`MAX_ALERT_EVENTS`].
fn merge(events: &mut Vec<u64>, more: &[u64]) {
    for e in more {
        if events.len() >= MAX_ALERT_EVENTS {
            break;
        }
        if !events.contains(e) {
            events.push(*e);
        }
    }
}

fn json_list(events: &[u64]) -> String {
    serde_json::to_string(events).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn alert_out(a: &AlertRow) -> AlertOut {
    AlertOut {
        id: a.id,
        rule: a.rule.clone(),
        scope: a.scope.clone(),
        severity: a.severity.clone(),
        tenant: a.tenant,
        status: a.status.clone(),
        first_seen: a.first_seen,
        last_seen: a.last_seen,
        count: a.count,
        events: serde_json::from_str(&a.events).unwrap_or_default(),
        acknowledged_by: a.acknowledged_by.clone(),
        acknowledged_at: a.acknowledged_at,
        resolved_by: a.resolved_by.clone(),
        resolved_at: a.resolved_at,
    }
}

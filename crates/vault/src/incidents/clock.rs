//! The 72-hour clock: raising the due and overdue alerts once per incident. Apart because it
//! runs in the background for every open incident, not for a caller.

use ward_policy::RuleName;
use ward_store::{IncidentOp, IncidentScope, Op, StoreError};

use crate::monitor::Hit;
use crate::{Result, Vault};

use super::{NOTIFICATION_DEADLINE, NOTIFICATION_DUE};

impl Vault {
    /// The clock: raises `incident_notification_due` for every open incident past 48 hours
    /// and `incident_notification_overdue` past 72 hours while an affected tenant is not
    /// notified, each once per incident. The server calls it every minute; tests call it
    /// after moving the clock. Returns how many alerts it raised.
    ///
    /// The flag is set (conditionally: of several servers one wins) before the alert is
    /// raised, so an alert is never raised twice; a crash between the two loses that alert.
    ///
    /// # Errors
    /// If the store cannot be read or written.
    pub async fn check_incident_clocks(&self) -> Result<usize> {
        let now = self.now();
        let rows = self
            .inner
            .store
            .incidents(IncidentScope::ClockPending, CLOCK_BATCH)
            .await?;
        let mut raised = 0;
        for row in rows {
            let age = now - row.opened_at;
            if age < NOTIFICATION_DUE {
                // Oldest first: the rest are younger.
                break;
            }
            let (rule, ops) = if age >= NOTIFICATION_DEADLINE && !row.overdue_alerted {
                let mut ops = vec![Op::Incident(IncidentOp::FlagOverdue { id: row.id })];
                if !row.due_alerted {
                    // Past both marks at once (the servers were down): the graver alert only.
                    ops.push(Op::Incident(IncidentOp::FlagDue { id: row.id }));
                }
                (RuleName::IncidentNotificationOverdue, ops)
            } else if age < NOTIFICATION_DEADLINE && !row.due_alerted {
                (
                    RuleName::IncidentNotificationDue,
                    vec![Op::Incident(IncidentOp::FlagDue { id: row.id })],
                )
            } else {
                continue;
            };
            let Some(settings) = self.policy().monitoring.rule(rule) else {
                continue;
            };
            let Some(view) = self.inner.store.incident(row.id).await? else {
                continue;
            };
            if view.tenants.iter().all(|t| t.notified_at.is_some()) {
                continue;
            }
            match self.inner.store.commit(ops).await {
                Ok(_) => {}
                // Another server set the flag (and raises the alert), or it was closed.
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            }
            self.raise(vec![Hit {
                rule,
                scope: format!("incident:{}", row.id),
                tenant: row.tenant,
                severity: settings.severity,
                at: now,
                events: Vec::new(),
            }])
            .await;
            raised += 1;
        }
        Ok(raised)
    }
}

/// Most incidents one clock check looks at.
const CLOCK_BATCH: u32 = 1_000;

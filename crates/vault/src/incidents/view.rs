//! Who may see or change an incident and what they see of it: the access decisions, the
//! lookups and the per-viewer shape of an incident. Apart because every command and read
//! goes through them, and a tenant must never see another tenant's row.

use std::collections::BTreeMap;

use uuid::Uuid;
use ward_audit::Action;
use ward_store::{IncidentScope, IncidentView, Op};

use crate::{Operation, PlatformOperation, RequestContext, Result, Vault, VaultError};

use super::text::{TITLE_COLUMN, note_column};
use super::{
    AffectedTenantOut, Caller, IncidentOut, MAX_INCIDENT_PAGE, NOTIFICATION_DEADLINE, TimelineOut,
    Want,
};

impl Vault {
    /// The incidents the caller sees, newest first: the operator's own, or those a tenant
    /// opened or is affected by.
    ///
    /// # Errors
    /// The access decision's errors.
    pub async fn list_incidents(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
    ) -> Result<Vec<IncidentOut>> {
        let caller = self
            .authorize_incidents(ctx, tenant, Action::IncidentRead, Want::Read)
            .await?;
        let scope = tenant.map_or(IncidentScope::Operator, IncidentScope::Tenant);
        let rows = self.inner.store.incidents(scope, MAX_INCIDENT_PAGE).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            // Gone meanwhile (never: incidents are not deleted) is skipped rather than failed.
            if let Some(view) = self.inner.store.incident(row.id).await? {
                out.push(self.incident_out(&view, tenant).await?);
            }
        }
        let mut event = caller.event;
        event.detail = Some(serde_json::json!({ "incidents": out.len() }));
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(out)
    }

    /// One incident with its timeline.
    ///
    /// # Errors
    /// `NotFound` for an incident the caller does not see; the access decision's errors.
    pub async fn incident(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        id: Uuid,
    ) -> Result<IncidentOut> {
        let (caller, view) = self
            .authorized_incident(ctx, tenant, id, Action::IncidentRead, Want::Read)
            .await?;
        let out = self.incident_out(&view, tenant).await?;
        let mut event = caller.event;
        event.detail = Some(serde_json::json!({ "incident": id }));
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(out)
    }

    pub(super) async fn authorize_incidents(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        action: Action,
        want: Want,
    ) -> Result<Caller> {
        let event = self.event(ctx, action, tenant);
        match tenant {
            None => {
                let op = match want {
                    Want::Read => PlatformOperation::ReadIncidents,
                    Want::Manage => PlatformOperation::ManageIncidents,
                };
                self.check_platform(ctx, op, &event).await?;
                Ok(Caller {
                    event,
                    tenant: None,
                })
            }
            Some(t) => {
                let trow = self.visible_tenant(ctx, t, &event).await?;
                let op = match want {
                    Want::Read => Operation::ReadIncidents,
                    Want::Manage => Operation::ManageIncidents {
                        operator_incident: false,
                    },
                };
                let access = self.tenant_access(ctx, &trow, op);
                self.check(&access, &event).await?;
                Ok(Caller {
                    event,
                    tenant: Some(trow),
                })
            }
        }
    }

    /// A tenant writes in the timeline of (and closes) only its own incidents: decided (and
    /// on refusal audited) as such.
    pub(super) async fn refuse_operator_incident(
        &self,
        ctx: &RequestContext,
        caller: &Caller,
        view: &IncidentView,
    ) -> Result<()> {
        let Some(trow) = &caller.tenant else {
            return Ok(());
        };
        if view.incident.tenant.is_some() {
            return Ok(());
        }
        let access = self.tenant_access(
            ctx,
            trow,
            Operation::ManageIncidents {
                operator_incident: true,
            },
        );
        self.check(&access, &caller.event).await
    }

    /// The access decision for `action` on incident `id`, then the incident if the caller's
    /// view includes it.
    pub(super) async fn authorized_incident(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        id: Uuid,
        action: Action,
        want: Want,
    ) -> Result<(Caller, IncidentView)> {
        let caller = self.authorize_incidents(ctx, tenant, action, want).await?;
        let view = self.visible_incident(tenant, id).await?;
        Ok((caller, view))
    }

    pub(super) async fn stored_incident(&self, id: Uuid) -> Result<IncidentView> {
        self.inner
            .store
            .incident(id)
            .await?
            .ok_or(VaultError::NotFound("incident"))
    }

    /// The incident, if the view includes it: the operator's own for `None`, else one the
    /// tenant opened or is affected by.
    async fn visible_incident(&self, tenant: Option<Uuid>, id: Uuid) -> Result<IncidentView> {
        match self.inner.store.incident(id).await? {
            Some(v)
                if match tenant {
                    None => v.incident.tenant.is_none(),
                    Some(t) => {
                        v.incident.tenant == Some(t) || v.tenants.iter().any(|a| a.tenant == t)
                    }
                } =>
            {
                Ok(v)
            }
            _ => Err(VaultError::NotFound("incident")),
        }
    }

    /// The API view of an incident for a viewer (`None`: the operator; a tenant sees only its
    /// own row, subjects and alerts).
    pub(super) async fn incident_out(
        &self,
        v: &IncidentView,
        viewer: Option<Uuid>,
    ) -> Result<IncidentOut> {
        let i = &v.incident;
        let mut counts: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
        for (t, s) in &v.subjects {
            counts.entry(*t).or_default().push(*s);
        }
        let affected = v
            .tenants
            .iter()
            .filter(|t| viewer.is_none_or(|own| own == t.tenant))
            .map(|t| {
                let ids = counts.remove(&t.tenant).unwrap_or_default();
                AffectedTenantOut {
                    tenant: t.tenant,
                    notified_at: t.notified_at,
                    notified_by: t.notified_by.clone(),
                    subjects: ids.len() as u64,
                    subject_ids: ids,
                }
            })
            .collect();
        let mut alerts = Vec::new();
        for a in &v.alerts {
            let shown = match viewer {
                None => true,
                Some(own) if i.tenant == Some(own) => true,
                Some(own) => self
                    .inner
                    .store
                    .alert(*a)
                    .await?
                    .is_some_and(|row| row.tenant == Some(own)),
            };
            if shown {
                alerts.push(*a);
            }
        }
        let keys = self.incident_text_keys(i).await?;
        let mut timeline = Vec::with_capacity(v.notes.len());
        for n in &v.notes {
            timeline.push(TimelineOut {
                seq: n.seq,
                at: n.at,
                by: n.author.clone(),
                kind: n.kind.clone(),
                text: self.open_incident_text(&keys, i, &note_column(n.seq), &n.text)?,
            });
        }
        let due = i.opened_at + NOTIFICATION_DEADLINE;
        Ok(IncidentOut {
            id: i.id,
            tenant: i.tenant,
            opened_by: i.opened_by.clone(),
            title: self.open_incident_text(&keys, i, TITLE_COLUMN, &i.title)?,
            status: i.status.clone(),
            opened_at: i.opened_at,
            closed_at: i.closed_at,
            notification_due_at: due,
            // Whole hours, rounded down: a minute past the deadline is -1.
            hours_left: (due - self.now()).whole_seconds().div_euclid(3_600),
            affected,
            alerts,
            timeline,
        })
    }
}

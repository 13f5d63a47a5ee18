//! The commands that change an incident: opening it, adding notes and measures, marking a
//! tenant notified and closing it. Apart because each validates, seals and fans its audit
//! event out to every affected tenant.

use std::collections::BTreeSet;

use uuid::Uuid;
use ward_audit::Action;
use ward_store::{
    INCIDENT_CLOSED, INCIDENT_OPEN, IncidentNoteRow, IncidentOp, IncidentRow, Op, RecordFilter,
    StoreError,
};

use crate::{RequestContext, Result, Vault, VaultError};
use ward_store::TenantStatus;

use super::text::{TITLE_COLUMN, note_column};
use super::{
    IncidentOut, MAX_INCIDENT_NOTE, MAX_INCIDENT_REFS, MAX_INCIDENT_TITLE, NewIncident, Want,
    closed, dedup, fan_out, invalid,
};

impl Vault {
    /// Opens an incident: the operator's (`tenant` = `None`; affected tenants are those
    /// given, those of its alerts and those of its subjects; at least one) or a tenant's own
    /// (owners, admins). The 72-hour clock starts now.
    ///
    /// # Errors
    /// `Invalid` with the field (`title`, `alerts`, `tenants`, `subjects`) for an empty or
    /// too long title, an alert that does not exist or is not the caller's, a tenant or
    /// subject that does not exist; the access decision's errors.
    pub async fn open_incident(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        new: NewIncident,
    ) -> Result<IncidentOut> {
        let caller = self
            .authorize_incidents(ctx, tenant, Action::IncidentOpen, Want::Manage)
            .await?;
        let title = crate::text::parse(&new.title, "title", "invalid_title", MAX_INCIDENT_TITLE)?;
        for (field, n) in [
            ("alerts", new.alerts.len()),
            ("tenants", new.tenants.len()),
            ("subjects", new.subjects.len()),
        ] {
            if n > MAX_INCIDENT_REFS {
                return Err(invalid(
                    "too_many",
                    format!("at most {MAX_INCIDENT_REFS} {field}"),
                    field,
                ));
            }
        }
        let (affected, alerts, subjects) = self.incident_scope(tenant, &new).await?;
        let id = Uuid::new_v4();
        let sealed = self
            .seal_incident_text(tenant, id, TITLE_COLUMN, title.as_ref())
            .await?;
        let row = IncidentRow {
            id,
            tenant,
            opened_by: caller.event.actor.id.clone(),
            title: sealed,
            status: INCIDENT_OPEN.to_owned(),
            opened_at: self.now(),
            closed_at: None,
            due_alerted: false,
            overdue_alerted: false,
        };
        let mut event = caller.event.clone();
        event.detail = Some(serde_json::json!({
            "incident": id,
            "tenants": affected.len(),
            "subjects": subjects.len(),
            "alerts": alerts,
        }));
        let mut ops = vec![Op::Incident(IncidentOp::Open {
            incident: row,
            tenants: affected.iter().copied().collect(),
            subjects: subjects.into_iter().collect(),
            alerts,
        })];
        ops.extend(fan_out(event, affected.iter().copied()));
        self.commit(ops).await?;
        let view = self.stored_incident(id).await?;
        self.incident_out(&view, caller.tenant_id()).await
    }

    /// The tenants, alerts and subjects a new incident names, each checked to exist and to be
    /// the caller's; the affected tenants also include those of its alerts and subjects.
    async fn incident_scope(
        &self,
        tenant: Option<Uuid>,
        new: &NewIncident,
    ) -> Result<(BTreeSet<Uuid>, Vec<Uuid>, BTreeSet<(Uuid, Uuid)>)> {
        let mut affected = BTreeSet::new();
        if let Some(t) = tenant {
            if !new.tenants.is_empty() {
                return Err(invalid(
                    "tenants_not_allowed",
                    "a tenant's incident affects that tenant: leave out `tenants`",
                    "tenants",
                ));
            }
            affected.insert(t);
        }
        let alerts = dedup(&new.alerts);
        for a in &alerts {
            match self.inner.store.alert(*a).await? {
                Some(row) if tenant.is_none() || row.tenant == tenant => {
                    affected.extend(row.tenant);
                }
                _ => {
                    return Err(invalid(
                        "unknown_alert",
                        format!("alert {a} does not exist"),
                        "alerts",
                    ));
                }
            }
        }
        for t in dedup(&new.tenants) {
            match self.inner.store.tenant(t).await? {
                Some(row) if row.status != TenantStatus::Destroyed => {
                    affected.insert(t);
                }
                _ => {
                    return Err(invalid(
                        "unknown_tenant",
                        format!("tenant {t} does not exist"),
                        "tenants",
                    ));
                }
            }
        }
        let mut subjects = BTreeSet::new();
        for (t, s) in &new.subjects {
            if tenant.is_some_and(|own| own != *t) {
                return Err(invalid(
                    "unknown_subject",
                    format!("subject {s} does not exist"),
                    "subjects",
                ));
            }
            if self
                .inner
                .store
                .subject_view(*t, *s, RecordFilter::None)
                .await?
                .is_none_or(|v| v.tenant_status == TenantStatus::Destroyed)
            {
                return Err(invalid(
                    "unknown_subject",
                    format!("subject {s} does not exist"),
                    "subjects",
                ));
            }
            affected.insert(*t);
            subjects.insert((*t, *s));
        }
        if affected.is_empty() {
            return Err(invalid(
                "no_tenant_affected",
                "an operator incident names the tenants it affects (in `tenants`, or through \
                 its alerts or subjects)",
                "tenants",
            ));
        }
        Ok((affected, alerts, subjects))
    }

    /// Adds a note (`kind` `note`) or a measure (`measure`) to an open incident's timeline.
    /// A tenant writes only in its own incidents' timelines.
    ///
    /// # Errors
    /// `Invalid` (`text`, `kind`); `StateConflict` `incident_closed`; `NotFound` for an
    /// incident the caller does not see; `Forbidden` `operator_incident` for a tenant writing
    /// in the operator's incident; the access decision's other errors.
    pub async fn add_incident_note(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        id: Uuid,
        text: &str,
        kind: &str,
    ) -> Result<IncidentOut> {
        let (caller, view) = self
            .authorized_incident(ctx, tenant, id, Action::IncidentNote, Want::Manage)
            .await?;
        self.refuse_operator_incident(ctx, &caller, &view).await?;
        if !matches!(kind, "note" | "measure") {
            return Err(invalid(
                "invalid_kind",
                "kind must be `note` or `measure`",
                "kind",
            ));
        }
        let text = crate::text::parse_multiline(text, "text", "invalid_text", MAX_INCIDENT_NOTE)?;
        let mut view = view;
        // A concurrent note takes the same place: read again and take the next one.
        for _ in 0..3 {
            if view.incident.status != INCIDENT_OPEN {
                return Err(closed());
            }
            let seq = view.notes.last().map_or(1, |n| n.seq + 1);
            let sealed = self
                .seal_incident_text(view.incident.tenant, id, &note_column(seq), text.as_ref())
                .await?;
            let note = IncidentNoteRow {
                incident: id,
                seq,
                at: self.now(),
                author: caller.event.actor.id.clone(),
                kind: kind.to_owned(),
                text: sealed,
            };
            let mut event = caller.event.clone();
            event.detail = Some(serde_json::json!({ "incident": id, "seq": seq, "kind": kind }));
            let mut ops = vec![Op::Incident(IncidentOp::Note(note))];
            ops.extend(fan_out(event, view.tenants.iter().map(|t| t.tenant)));
            match self.commit(ops).await {
                Ok(_) => {
                    let view = self.stored_incident(id).await?;
                    return self.incident_out(&view, tenant).await;
                }
                Err(StoreError::Conflict(_)) => view = self.stored_incident(id).await?,
                Err(StoreError::NotFound(_)) => return Err(closed()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(VaultError::conflict(
            "the incident's timeline changed concurrently; retry",
        ))
    }

    /// Marks affected tenants notified: on a tenant's route the tenant itself; on the
    /// operator's, `target` or (without one) every affected tenant not yet notified.
    ///
    /// # Errors
    /// `Invalid` (`tenant`) for a tenant the incident does not affect; `StateConflict`
    /// `already_notified`; `NotFound` for an incident the caller does not see; the access
    /// decision's errors.
    pub async fn mark_incident_notified(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        id: Uuid,
        target: Option<Uuid>,
    ) -> Result<IncidentOut> {
        let (caller, view) = self
            .authorized_incident(ctx, tenant, id, Action::IncidentNotified, Want::Manage)
            .await?;
        let pending: Vec<Uuid> = view
            .tenants
            .iter()
            .filter(|t| t.notified_at.is_none())
            .map(|t| t.tenant)
            .collect();
        let targets = match (tenant, target) {
            (Some(own), _) => vec![own],
            (None, Some(t)) => {
                if !view.tenants.iter().any(|a| a.tenant == t) {
                    return Err(invalid(
                        "tenant_not_affected",
                        format!("the incident does not affect tenant {t}"),
                        "tenant",
                    ));
                }
                vec![t]
            }
            (None, None) => pending.clone(),
        };
        if targets.is_empty() || targets.iter().any(|t| !pending.contains(t)) {
            return Err(VaultError::StateConflict {
                code: "already_notified",
                reason: "the tenant is already marked notified".into(),
            });
        }
        let at = self.now();
        let by = caller.event.actor.id.clone();
        let mut ops = Vec::new();
        for t in &targets {
            ops.push(Op::Incident(IncidentOp::Notified {
                incident: id,
                tenant: *t,
                at,
                by: by.clone(),
            }));
        }
        let mut event = caller.event.clone();
        event.detail = Some(serde_json::json!({ "incident": id, "notified": targets }));
        ops.extend(fan_out(event, targets.iter().copied()));
        self.commit_change(ops, id, tenant, || VaultError::StateConflict {
            code: "already_notified",
            reason: "the tenant was marked notified meanwhile".into(),
        })
        .await
    }

    /// Commits a change of incident `id` that is conditional on its state, and answers the
    /// incident as `tenant` sees it; a change that lost to a concurrent one (the store's
    /// `NotFound`) is `lost()`.
    async fn commit_change(
        &self,
        ops: Vec<Op>,
        id: Uuid,
        tenant: Option<Uuid>,
        lost: impl FnOnce() -> VaultError,
    ) -> Result<IncidentOut> {
        match self.commit(ops).await {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => return Err(lost()),
            Err(e) => return Err(e.into()),
        }
        let view = self.stored_incident(id).await?;
        self.incident_out(&view, tenant).await
    }

    /// Closes an open incident. A tenant closes only its own incidents.
    ///
    /// # Errors
    /// `StateConflict` `incident_closed`; `NotFound` for an incident the caller does not
    /// see; `Forbidden` `operator_incident`; the access decision's other errors.
    pub async fn close_incident(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        id: Uuid,
    ) -> Result<IncidentOut> {
        let (caller, view) = self
            .authorized_incident(ctx, tenant, id, Action::IncidentClose, Want::Manage)
            .await?;
        self.refuse_operator_incident(ctx, &caller, &view).await?;
        if view.incident.status == INCIDENT_CLOSED {
            return Err(closed());
        }
        let mut event = caller.event.clone();
        event.detail = Some(serde_json::json!({ "incident": id }));
        let mut ops = vec![Op::Incident(IncidentOp::Close { id, at: self.now() })];
        ops.extend(fan_out(event, view.tenants.iter().map(|t| t.tenant)));
        self.commit_change(ops, id, tenant, closed).await
    }
}

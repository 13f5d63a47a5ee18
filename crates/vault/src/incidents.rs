//! Personal-data breach incidents and the 72-hour notification clock (GDPR Art. 33).
//!
//! A breach must be reported to the supervisory authority within 72 hours of becoming aware
//! of it. An incident records that moment (`opened_at`, by the vault's clock), the tenants
//! (controllers) it affects, the subjects known to be affected, the alerts it came from and a
//! timeline of notes (what happened) and measures (what was done). Each affected tenant is
//! marked notified once it has told its authority; until all are, [`Vault::check_incident_clocks`]
//! raises `incident_notification_due` at 48 hours and `incident_notification_overdue` at 72,
//! once per incident each (a conditional flag in the store, so several servers never raise
//! one twice), as ordinary alerts: they reach the alert list, metrics and webhooks.
//!
//! A tenant opens incidents for itself; the operator opens incidents that may affect several
//! tenants. A tenant sees its own incidents and the operator's that affect it, but of those
//! only its own row: its subjects, its count, its notification state, never another
//! tenant's. The operator's routes cover the operator's incidents; a tenant's own incidents
//! stay the tenant's (the operator learns of a late one from the clock's alerts).
//!
//! Title and notes are free text that may name people, so they are stored sealed: a tenant
//! incident's under the tenant's free-text key (`sealed_text.rs`; destroying the tenant
//! shreds them), an operator incident's under a platform key derived from the root key
//! (label [`ward_crypto::INCIDENT_TEXT_KEY_LABEL`]); the associated data binds the incident
//! and the column (a note's by its place in the timeline). Audit events carry ids, kinds and
//! counts, never the text.
//!
//! The draft notification ([`Vault::incident_notification`]) gathers what Art. 33(3) asks
//! for: the nature of the breach (title and notes), the categories of data concerned (from
//! the policy: those of the collections the affected subjects have records in), the number
//! of subjects, the measures taken, and the contact point (the policy's organization and
//! DPO). It holds no record value: records are only read for their collection names.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use ward_audit::{Action, AuditEvent};
use ward_crypto::aad;
use ward_policy::RuleName;
use ward_store::{
    INCIDENT_CLOSED, INCIDENT_OPEN, IncidentNoteRow, IncidentOp, IncidentRow, IncidentScope,
    IncidentView, Op, RecordFilter, StoreError, TenantRow,
};

use crate::monitor::Hit;
use crate::{Operation, PlatformOperation, RequestContext, Result, Vault, VaultError, sealed_text};
use ward_store::TenantStatus;

/// The notification deadline after an incident is opened (GDPR Art. 33(1)).
pub const NOTIFICATION_DEADLINE: Duration = Duration::hours(72);

/// When the clock warns that a notification is due.
pub const NOTIFICATION_DUE: Duration = Duration::hours(48);

/// Longest title, in characters.
pub const MAX_INCIDENT_TITLE: usize = 300;

/// Longest note, in characters.
pub const MAX_INCIDENT_NOTE: usize = 10_000;

/// Most alerts, tenants or subjects an incident is opened with (each).
pub const MAX_INCIDENT_REFS: usize = 1_000;

/// Most incidents a list returns (newest first).
pub const MAX_INCIDENT_PAGE: u32 = 200;

/// Most incidents one clock check looks at.
const CLOCK_BATCH: u32 = 1_000;

/// The column bound into a title's associated data.
const TITLE_COLUMN: &str = "incidents.title";

/// The column bound into a note's associated data: the table, the column and its place.
fn note_column(seq: i64) -> String {
    format!("incident_notes.text/{seq}")
}

/// An incident to open.
#[derive(Debug, Clone)]
pub struct NewIncident {
    /// What happened, in a line (may name people: sealed).
    pub title: String,
    /// The alerts it comes from (each must be visible to the caller).
    pub alerts: Vec<Uuid>,
    /// Affected tenants (operator incidents only; a tenant's incident is its own).
    pub tenants: Vec<Uuid>,
    /// Affected subjects as (tenant, subject).
    pub subjects: Vec<(Uuid, Uuid)>,
}

/// An incident as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IncidentOut {
    /// Incident id.
    pub id: Uuid,
    /// The tenant that opened it; null for an operator incident.
    pub tenant: Option<Uuid>,
    /// Who opened it (an audit actor id).
    pub opened_by: String,
    /// What happened, in a line.
    pub title: String,
    /// `open` or `closed`.
    pub status: String,
    /// When it was opened: the 72-hour clock starts here.
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// When it was closed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    /// `opened_at` + 72 hours: the supervisory authority must be notified by then.
    #[serde(with = "time::serde::rfc3339")]
    pub notification_due_at: OffsetDateTime,
    /// Whole hours left until `notification_due_at` (negative once past it).
    pub hours_left: i64,
    /// The affected tenants (a tenant sees only its own).
    pub affected: Vec<AffectedTenantOut>,
    /// The alerts it comes from (a tenant sees only its own).
    pub alerts: Vec<Uuid>,
    /// The timeline, oldest first.
    pub timeline: Vec<TimelineOut>,
}

/// One affected tenant of an incident.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AffectedTenantOut {
    /// The tenant.
    pub tenant: Uuid,
    /// When it was marked notified; null until then.
    #[serde(with = "time::serde::rfc3339::option")]
    pub notified_at: Option<OffsetDateTime>,
    /// Who marked it.
    pub notified_by: Option<String>,
    /// How many of its subjects are known to be affected.
    pub subjects: u64,
    /// Those subjects' ids (pseudonymous), shown to the tenant itself and the operator.
    pub subject_ids: Vec<Uuid>,
}

/// One line of an incident's timeline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineOut {
    /// Position, from 1.
    pub seq: i64,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who wrote it (an audit actor id).
    pub by: String,
    /// `note` (what happened) or `measure` (what was done about it).
    pub kind: String,
    /// The text.
    pub text: String,
}

/// A data category concerned by an incident, as the policy names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
pub struct CategoryOut {
    /// The fideslang key (`user.contact.email`).
    pub category: String,
    /// Its label.
    pub label: String,
}

/// Who the authority and the data subjects may contact (GDPR Art. 33(3)(b)).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ContactOut {
    /// The organization (the policy's `organization.name`).
    pub organization: String,
    /// Its privacy contact.
    pub contact: String,
    /// Its data protection officer, when one is appointed.
    pub dpo: Option<String>,
}

/// The draft of one affected tenant's notification to its supervisory authority.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NotificationDraft {
    /// The incident.
    pub incident: Uuid,
    /// The tenant (controller) the draft is for.
    pub tenant: Uuid,
    /// The incident's title.
    pub title: String,
    /// What happened: the timeline's notes of kind `note`, oldest first.
    pub what_happened: Vec<String>,
    /// The collections concerned.
    pub collections: Vec<String>,
    /// The data categories of those collections.
    pub data_categories: Vec<CategoryOut>,
    /// `records` when the collections are those the affected subjects have records in;
    /// `all_collections` when no subject (or no record of one) is known, so every collection
    /// of the policy is listed.
    pub categories_basis: String,
    /// How many of the tenant's subjects are known to be affected.
    pub subjects_affected: u64,
    /// The measures taken: the timeline's notes of kind `measure`, oldest first.
    pub measures: Vec<String>,
    /// Who to contact.
    pub contact: ContactOut,
    /// When the incident was opened (the controller became aware of it).
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// `opened_at` + 72 hours.
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
    /// When the tenant was marked notified; null until then.
    #[serde(with = "time::serde::rfc3339::option")]
    pub notified_at: Option<OffsetDateTime>,
}

impl NotificationDraft {
    /// The draft as Markdown, for pasting into an authority's form.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let list = |out: &mut String, items: &[String], none: &str| {
            if items.is_empty() {
                let _ = writeln!(out, "_{none}_");
            }
            // A note may span lines: its further lines are indented to stay in its item.
            for i in items {
                let _ = writeln!(out, "- {}", i.replace('\n', "\n  "));
            }
        };
        let _ = writeln!(out, "# Personal data breach notification (draft)\n");
        let _ = writeln!(out, "**Incident:** {}  ", self.incident);
        let _ = writeln!(out, "**Controller (tenant):** {}  ", self.tenant);
        let _ = writeln!(out, "**Became aware:** {}  ", rfc3339(self.opened_at));
        let _ = writeln!(
            out,
            "**Notification deadline (72 hours):** {}\n",
            rfc3339(self.deadline)
        );
        let _ = writeln!(out, "## What happened\n\n{}\n", self.title);
        list(&mut out, &self.what_happened, "No notes yet.");
        let _ = writeln!(out, "\n## Data concerned\n");
        let _ = writeln!(
            out,
            "Collections: {}",
            if self.collections.is_empty() {
                "none".to_owned()
            } else {
                self.collections.join(", ")
            }
        );
        if self.categories_basis == "all_collections" {
            let _ = writeln!(
                out,
                "(no affected subject's records are known: every collection is listed)"
            );
        }
        let _ = writeln!(out);
        let cats: Vec<String> = self
            .data_categories
            .iter()
            .map(|c| format!("{} (`{}`)", c.label, c.category))
            .collect();
        list(&mut out, &cats, "No categories.");
        let _ = writeln!(
            out,
            "\n## Data subjects affected\n\n{} known",
            self.subjects_affected
        );
        let _ = writeln!(out, "\n## Measures taken\n");
        list(&mut out, &self.measures, "No measures recorded yet.");
        let _ = writeln!(out, "\n## Contact\n");
        let _ = writeln!(out, "- Organization: {}", self.contact.organization);
        let _ = writeln!(out, "- Contact: {}", self.contact.contact);
        if let Some(dpo) = &self.contact.dpo {
            let _ = writeln!(out, "- Data protection officer: {dpo}");
        }
        out
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Whether a caller reads or changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Read,
    Manage,
}

/// Who is asking: the operator (its routes) or a tenant (its routes), with the tenant's row.
struct Caller {
    event: AuditEvent,
    tenant: Option<TenantRow>,
}

impl Caller {
    fn tenant_id(&self) -> Option<Uuid> {
        self.tenant.as_ref().map(|t| t.id)
    }
}

fn invalid(code: &'static str, message: impl Into<String>, field: &str) -> VaultError {
    VaultError::invalid(code, message, Some(field))
}

/// `event` in the log of each tenant in `tenants` as well (tenants see what touches them).
fn fan_out(event: AuditEvent, tenants: impl IntoIterator<Item = Uuid>) -> Vec<Op> {
    let own = event.tenant;
    let mut ops = Vec::new();
    for t in tenants {
        if Some(t) != own {
            let mut copy = event.clone();
            copy.tenant = Some(t);
            ops.push(Op::Audit(Box::new(copy)));
        }
    }
    ops.insert(0, Op::Audit(Box::new(event)));
    ops
}

fn dedup(ids: &[Uuid]) -> Vec<Uuid> {
    let mut seen = BTreeSet::new();
    ids.iter().copied().filter(|i| seen.insert(*i)).collect()
}

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

    /// The draft notification of one affected tenant: on a tenant's route the tenant's own;
    /// on the operator's, `target`'s (required).
    ///
    /// # Errors
    /// `Invalid` (`tenant`) when the operator names no tenant or one the incident does not
    /// affect; `NotFound` for an incident the caller does not see; the access decision's
    /// errors.
    pub async fn incident_notification(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        id: Uuid,
        target: Option<Uuid>,
    ) -> Result<NotificationDraft> {
        let (caller, view) = self
            .authorized_incident(
                ctx,
                tenant,
                id,
                Action::IncidentNotificationRead,
                Want::Read,
            )
            .await?;
        let for_tenant = match (tenant, target) {
            (Some(own), _) => own,
            (None, Some(t)) => t,
            (None, None) => {
                return Err(invalid(
                    "tenant_required",
                    "name the affected tenant the draft is for: ?tenant=<id>",
                    "tenant",
                ));
            }
        };
        let Some(row) = view.tenants.iter().find(|t| t.tenant == for_tenant) else {
            return Err(invalid(
                "tenant_not_affected",
                format!("the incident does not affect tenant {for_tenant}"),
                "tenant",
            ));
        };
        let subjects: Vec<Uuid> = view
            .subjects
            .iter()
            .filter(|(t, _)| *t == for_tenant)
            .map(|(_, s)| *s)
            .collect();
        let mut collections = BTreeSet::new();
        for s in &subjects {
            if let Some(v) = self
                .inner
                .store
                .subject_view(for_tenant, *s, RecordFilter::All(None))
                .await?
            {
                collections.extend(v.records.into_iter().map(|r| r.collection));
            }
        }
        let policy = self.policy();
        let basis = if collections.is_empty() {
            collections.extend(policy.collections.keys().map(|c| c.as_str().to_owned()));
            "all_collections"
        } else {
            "records"
        };
        let mut categories = BTreeSet::new();
        for c in &collections {
            if let Some(col) = policy.collection(c) {
                for field in col.fields.values() {
                    categories.insert(CategoryOut {
                        category: field.category.to_string(),
                        label: field.category.label().to_owned(),
                    });
                }
            }
        }
        let keys = self.incident_text_keys(&view.incident).await?;
        let (mut what, mut measures) = (Vec::new(), Vec::new());
        for n in &view.notes {
            let text =
                self.open_incident_text(&keys, &view.incident, &note_column(n.seq), &n.text)?;
            if n.kind == "measure" {
                measures.push(text);
            } else {
                what.push(text);
            }
        }
        let org = &policy.organization;
        let draft = NotificationDraft {
            incident: id,
            tenant: for_tenant,
            title: self.open_incident_text(
                &keys,
                &view.incident,
                TITLE_COLUMN,
                &view.incident.title,
            )?,
            what_happened: what,
            collections: collections.into_iter().collect(),
            data_categories: categories.into_iter().collect(),
            categories_basis: basis.to_owned(),
            subjects_affected: subjects.len() as u64,
            measures,
            contact: ContactOut {
                organization: org.name.clone(),
                contact: org.contact.clone(),
                dpo: org.dpo.clone(),
            },
            opened_at: view.incident.opened_at,
            deadline: view.incident.opened_at + NOTIFICATION_DEADLINE,
            notified_at: row.notified_at,
        };
        let mut event = caller.event;
        event.tenant = Some(for_tenant);
        event.detail = Some(serde_json::json!({ "incident": id }));
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(draft)
    }

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

    async fn authorize_incidents(
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
    async fn refuse_operator_incident(
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
    async fn authorized_incident(
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

    async fn stored_incident(&self, id: Uuid) -> Result<IncidentView> {
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
    async fn incident_out(&self, v: &IncidentView, viewer: Option<Uuid>) -> Result<IncidentOut> {
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

    async fn seal_incident_text(
        &self,
        tenant: Option<Uuid>,
        incident: Uuid,
        column: &str,
        plain: &str,
    ) -> Result<Vec<u8>> {
        match tenant {
            None => self.inner.incident_keys.seal(plain.as_bytes(), |v| {
                aad::incident_text(incident.as_bytes(), column, v)
            }),
            Some(t) => {
                let trow = self.tenant_row(t).await?;
                let tk = self.inner.keys.tenant(&trow)?;
                Ok(sealed_text::seal(&tk, t, incident, column, plain)?.into_bytes())
            }
        }
    }

    /// What opens an incident's text: read once per incident (a tenant incident's key needs
    /// its tenant's row), then used for the title and every note.
    async fn incident_text_keys(&self, incident: &IncidentRow) -> Result<TextKeys> {
        Ok(match incident.tenant {
            None => TextKeys::Operator,
            Some(t) => TextKeys::Tenant(self.inner.keys.tenant(&self.tenant_row(t).await?)?),
        })
    }

    fn open_incident_text(
        &self,
        keys: &TextKeys,
        incident: &IncidentRow,
        column: &str,
        sealed: &[u8],
    ) -> Result<String> {
        match (keys, incident.tenant) {
            (TextKeys::Tenant(tk), Some(t)) => {
                let stored = std::str::from_utf8(sealed).map_err(|_| VaultError::Integrity)?;
                // Ward never wrote an incident's text in clear: a value without the prefix
                // was put there by someone else.
                if !stored.starts_with(sealed_text::PREFIX) {
                    return Err(VaultError::Integrity);
                }
                sealed_text::open(tk, t, incident.id, column, stored)
            }
            _ => self
                .inner
                .incident_keys
                .open_text(sealed, |v| {
                    aad::incident_text(incident.id.as_bytes(), column, v)
                })
                .map(|t| t.to_string()),
        }
    }
}

/// The keys of one incident's text (see `Vault::incident_text_keys`).
enum TextKeys {
    /// An operator incident: the root-derived platform keys.
    Operator,
    /// A tenant's incident: the tenant's keys.
    Tenant(std::sync::Arc<crate::keys::TenantKeys>),
}

fn closed() -> VaultError {
    VaultError::StateConflict {
        code: "incident_closed",
        reason: "the incident is closed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fan_out_adds_one_event_per_other_tenant() {
        let t1 = Uuid::from_u128(1);
        let t2 = Uuid::from_u128(2);
        let event = AuditEvent {
            at: OffsetDateTime::UNIX_EPOCH,
            request_id: String::new(),
            actor: ward_audit::Actor::system("test"),
            tenant: Some(t1),
            subject: None,
            record: None,
            collection: None,
            purpose: None,
            action: Action::IncidentOpen,
            outcome: ward_audit::Outcome::Allowed,
            reason: None,
            client: None,
            detail: None,
        };
        let ops = fan_out(event, [t1, t2]);
        let tenants: Vec<Option<Uuid>> = ops
            .iter()
            .filter_map(|o| match o {
                Op::Audit(e) => Some(e.tenant),
                _ => None,
            })
            .collect();
        assert_eq!(tenants, vec![Some(t1), Some(t2)]);
    }

    #[test]
    fn the_markdown_draft_names_every_part() {
        let draft = NotificationDraft {
            incident: Uuid::from_u128(9),
            tenant: Uuid::from_u128(1),
            title: "Laptop stolen".into(),
            what_happened: vec!["found out at 9".into()],
            collections: vec!["contact".into()],
            data_categories: vec![CategoryOut {
                category: "user.contact.email".into(),
                label: "Email".into(),
            }],
            categories_basis: "records".into(),
            subjects_affected: 3,
            measures: vec!["disk was encrypted\nsessions revoked".into()],
            contact: ContactOut {
                organization: "Acme".into(),
                contact: "privacy@acme.example".into(),
                dpo: Some("dpo@acme.example".into()),
            },
            opened_at: OffsetDateTime::UNIX_EPOCH,
            deadline: OffsetDateTime::UNIX_EPOCH + NOTIFICATION_DEADLINE,
            notified_at: None,
        };
        let md = draft.to_markdown();
        for part in [
            "Laptop stolen",
            "found out at 9",
            "`user.contact.email`",
            "3 known",
            "- disk was encrypted\n  sessions revoked\n",
            "privacy@acme.example",
            "dpo@acme.example",
            "1970-01-04T00:00:00Z",
        ] {
            assert!(md.contains(part), "{part} missing from {md}");
        }
    }
}

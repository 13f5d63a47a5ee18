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
//!
//! This file holds the limits, the incident types and the helpers every part shares; the
//! commands, views, draft, clock and text sealing live in their own submodules.

mod clock;
mod commands;
mod notification;
mod text;
mod view;

pub use notification::{CategoryOut, ContactOut, NotificationDraft};

use std::collections::BTreeSet;

use serde::Serialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use ward_audit::AuditEvent;
use ward_store::{Op, TenantRow};

use crate::VaultError;

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

fn closed() -> VaultError {
    VaultError::StateConflict {
        code: "incident_closed",
        reason: "the incident is closed".into(),
    }
}

#[cfg(test)]
mod tests;

//! Rows and operations of incidents: personal-data breaches and their 72-hour notification
//! clock (GDPR Art. 33).
//!
//! An incident is opened by a tenant (for itself) or by the operator (for any tenants it
//! affects). Its title and notes arrive sealed: the store never sees the text. The 48-hour and
//! 72-hour flags are set by conditional updates ([`IncidentOp::FlagDue`],
//! [`IncidentOp::FlagOverdue`]) that fail with `NotFound` when already set, so of several
//! servers checking the clock only one raises each alert.

use time::OffsetDateTime;
use uuid::Uuid;

/// `open` or `closed`.
pub const INCIDENT_OPEN: &str = "open";
/// See [`INCIDENT_OPEN`].
pub const INCIDENT_CLOSED: &str = "closed";

/// One incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    /// Incident id.
    pub id: Uuid,
    /// The tenant that opened it; `None` for an operator incident.
    pub tenant: Option<Uuid>,
    /// Who opened it (an audit actor id).
    pub opened_by: String,
    /// The title, sealed.
    pub title: Vec<u8>,
    /// [`INCIDENT_OPEN`] or [`INCIDENT_CLOSED`].
    pub status: String,
    /// When it was opened: the 72-hour clock starts here.
    pub opened_at: OffsetDateTime,
    /// When it was closed.
    pub closed_at: Option<OffsetDateTime>,
    /// Whether the 48-hour alert was raised.
    pub due_alerted: bool,
    /// Whether the 72-hour alert was raised.
    pub overdue_alerted: bool,
}

/// A tenant an incident affects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentTenantRow {
    /// The tenant.
    pub tenant: Uuid,
    /// When it was marked notified (its supervisory authority told).
    pub notified_at: Option<OffsetDateTime>,
    /// Who marked it (an audit actor id).
    pub notified_by: Option<String>,
}

/// One line of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentNoteRow {
    /// The incident.
    pub incident: Uuid,
    /// Position in the timeline, from 1.
    pub seq: i64,
    /// When it was written.
    pub at: OffsetDateTime,
    /// Who wrote it (an audit actor id).
    pub author: String,
    /// `note` (what happened) or `measure` (what was done about it).
    pub kind: String,
    /// The text, sealed.
    pub text: Vec<u8>,
}

/// An incident with everything attached to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentView {
    /// The incident.
    pub incident: IncidentRow,
    /// The affected tenants, in id order.
    pub tenants: Vec<IncidentTenantRow>,
    /// Affected subjects as (tenant, subject), in that order.
    pub subjects: Vec<(Uuid, Uuid)>,
    /// The alerts it was opened from, in id order.
    pub alerts: Vec<Uuid>,
    /// The timeline, in `seq` order.
    pub notes: Vec<IncidentNoteRow>,
}

/// A change to incidents; carried by [`crate::Op::Incident`].
#[derive(Debug, Clone)]
pub enum IncidentOp {
    /// Open an incident with its affected tenants, subjects and alerts.
    Open {
        /// The incident.
        incident: IncidentRow,
        /// Affected tenants (none notified yet).
        tenants: Vec<Uuid>,
        /// Affected subjects as (tenant, subject).
        subjects: Vec<(Uuid, Uuid)>,
        /// The alerts it comes from.
        alerts: Vec<Uuid>,
    },
    /// Add a line to the timeline of an open incident: `NotFound("incident")` when it is not
    /// open, `Conflict` when `seq` is taken (a concurrent note: read again and retry).
    Note(IncidentNoteRow),
    /// Mark an affected tenant notified; `NotFound("incident tenant")` when it is not affected
    /// or already notified.
    Notified {
        /// The incident.
        incident: Uuid,
        /// The tenant.
        tenant: Uuid,
        /// When.
        at: OffsetDateTime,
        /// Who (an audit actor id).
        by: String,
    },
    /// Close an open incident; `NotFound("incident")` when it is not open.
    Close {
        /// The incident.
        id: Uuid,
        /// When.
        at: OffsetDateTime,
    },
    /// Set the 48-hour flag of an open incident; `NotFound("incident")` when it is set already
    /// (another server raised the alert) or the incident is closed.
    FlagDue {
        /// The incident.
        id: Uuid,
    },
    /// Set the 72-hour flag, like [`IncidentOp::FlagDue`].
    FlagOverdue {
        /// The incident.
        id: Uuid,
    },
}

/// Which incidents to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentScope {
    /// The operator's incidents (no tenant).
    Operator,
    /// The incidents a tenant opened or is affected by.
    Tenant(Uuid),
    /// Open incidents with a clock alert still to raise and an affected tenant not yet
    /// notified (for the clock check), oldest first.
    ClockPending,
}

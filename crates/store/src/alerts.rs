//! Rows and operations of alerts: what the detection rules over the audit stream found.
//!
//! An alert is one row per (rule, scope) while it is not resolved; a further hit bumps its
//! count and last-seen time. A unique index on (rule, scope) over unresolved rows makes that
//! hold across servers sharing one database: of two concurrent openings one fails with
//! `Conflict` and bumps instead. Rows name principals, tenants and source hashes by id and
//! carry audit indices, never a data value.

use time::OffsetDateTime;
use uuid::Uuid;

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    /// Alert id.
    pub id: Uuid,
    /// The rule that opened it (`bulk_read`, …).
    pub rule: String,
    /// What the rule counted by: `actor:<id>`, `source:<hash>`, `tenant:<id>`, …
    pub scope: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// The tenant concerned, when there is one: its owner sees and may close the alert.
    pub tenant: Option<Uuid>,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    /// First hit.
    pub first_seen: OffsetDateTime,
    /// Latest hit.
    pub last_seen: OffsetDateTime,
    /// Hits so far.
    pub count: i64,
    /// JSON array of the audit indices that triggered it (the first ones, capped).
    pub events: String,
    /// Who acknowledged it (an audit actor id).
    pub acknowledged_by: Option<String>,
    /// When.
    pub acknowledged_at: Option<OffsetDateTime>,
    /// Who resolved it (an audit actor id).
    pub resolved_by: Option<String>,
    /// When.
    pub resolved_at: Option<OffsetDateTime>,
}

/// A change to alerts; carried by [`crate::Op::Alert`].
#[derive(Debug, Clone)]
pub enum AlertOp {
    /// Open an alert. `Conflict` when an unresolved one of the same rule and scope exists.
    Insert(AlertRow),
    /// Another hit of an unresolved alert. `NotFound("alert")` when it was resolved meanwhile.
    Bump {
        /// Alert id.
        id: Uuid,
        /// Hits to add.
        hits: i64,
        /// Time of the latest hit.
        at: OffsetDateTime,
        /// The new event list (JSON array, capped by the caller).
        events: String,
    },
    /// Acknowledge (`to = "acknowledged"`) or resolve (`to = "resolved"`) an alert whose
    /// status is still `from`; `NotFound("alert")` otherwise, so of two concurrent changes one
    /// wins.
    SetStatus {
        /// Alert id.
        id: Uuid,
        /// The status it must still have.
        from: String,
        /// The new status.
        to: String,
        /// Who (an audit actor id).
        by: String,
        /// When.
        at: OffsetDateTime,
    },
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    /// Only this tenant's (`None`: every alert).
    pub tenant: Option<Uuid>,
    /// Only alerts with this status.
    pub status: Option<String>,
    /// Alerts after this id in list order (newest first: `first_seen` descending, then id).
    pub before: Option<(OffsetDateTime, Uuid)>,
    /// At most this many.
    pub limit: u32,
}

//! Rows and operations of alert webhooks and their outbox.
//!
//! A delivery row is written in the same commit as the alert change it reports, so a restart
//! between the change and the HTTP call loses nothing: the row waits in the outbox. A server
//! takes a due row with [`WebhookOp::Claim`], a compare-and-set on a lease, and reports the
//! attempt with [`WebhookOp::Record`], which only the lease holder may do; of several servers
//! sharing one database only one sends a given row at a time, and a server that dies holding
//! a lease leaves the row to the others once the lease expires.

use time::OffsetDateTime;
use uuid::Uuid;

/// One webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    /// Webhook id.
    pub id: Uuid,
    /// The tenant whose alerts it receives; `None` for an operator webhook (every alert).
    pub tenant: Option<Uuid>,
    /// Absolute http(s) URL.
    pub url: String,
    /// The signing secret, sealed; never the clear text.
    pub secret: Vec<u8>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Who created it (an audit actor id).
    pub created_by: String,
    /// When it was deleted; a deleted webhook receives nothing more but keeps its log.
    pub deleted_at: Option<OffsetDateTime>,
}

/// `pending`: in the outbox. `delivered`: a 2xx answer. `failed`: given up.
pub const DELIVERY_PENDING: &str = "pending";
/// See [`DELIVERY_PENDING`].
pub const DELIVERY_DELIVERED: &str = "delivered";
/// See [`DELIVERY_PENDING`].
pub const DELIVERY_FAILED: &str = "failed";

/// One event to deliver to one webhook: the outbox entry and, once tried, its log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// Delivery id (sent as `Ward-Delivery`, so a receiver can drop duplicates).
    pub id: Uuid,
    /// The webhook.
    pub webhook: Uuid,
    /// The webhook's tenant (`None` for an operator webhook), kept for scoping the log.
    pub tenant: Option<Uuid>,
    /// `alert.opened`, `alert.acknowledged`, `alert.resolved` or `webhook.test`.
    pub event: String,
    /// The alert concerned (none for `webhook.test`).
    pub alert: Option<Uuid>,
    /// The JSON body sent: alert fields only, never a data value.
    pub payload: String,
    /// [`DELIVERY_PENDING`], [`DELIVERY_DELIVERED`] or [`DELIVERY_FAILED`].
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When it was enqueued.
    pub created_at: OffsetDateTime,
    /// Not tried before this time.
    pub next_attempt_at: OffsetDateTime,
    /// The latest attempt.
    pub last_attempt_at: Option<OffsetDateTime>,
    /// The latest attempt's HTTP status (`"500"`) or error class (`"timeout"`,
    /// `"refused_private_target"`, …); never a response body.
    pub last_result: Option<String>,
    /// When a 2xx answer came.
    pub delivered_at: Option<OffsetDateTime>,
    /// The server holding the lease, while one does.
    pub lease_owner: Option<String>,
    /// Until when it holds it.
    pub lease_until: Option<OffsetDateTime>,
}

/// What an attempt came to; carried by [`WebhookOp::Record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// A 2xx answer.
    Delivered,
    /// Not delivered; try again at this time.
    Retry(OffsetDateTime),
    /// Not delivered and given up.
    Failed,
}

/// A change to webhooks or their outbox; carried by [`crate::Op::Webhook`].
#[derive(Debug, Clone)]
pub enum WebhookOp {
    /// Add a webhook.
    Insert(WebhookRow),
    /// Delete a live webhook of `tenant` (`None`: an operator webhook); `NotFound("webhook")`
    /// when there is none, so one tenant cannot delete another's. Its pending deliveries are
    /// dropped from the outbox (marked `failed` with result `webhook_deleted`).
    Delete {
        /// Webhook id.
        id: Uuid,
        /// The tenant it must belong to.
        tenant: Option<Uuid>,
        /// When.
        at: OffsetDateTime,
    },
    /// Put a delivery in the outbox.
    Enqueue(DeliveryRow),
    /// Take the lease of a pending delivery whose lease is free or expired at `now`;
    /// `NotFound("webhook delivery")` when another server holds it or it is no longer pending.
    Claim {
        /// Delivery id.
        id: Uuid,
        /// The claiming server (a random id per process).
        owner: String,
        /// Now.
        now: OffsetDateTime,
        /// Lease end: after it, another server may take the row.
        until: OffsetDateTime,
    },
    /// Record an attempt and release the lease; `NotFound("webhook delivery")` unless `owner`
    /// still holds it (a server whose lease expired must not overwrite a newer attempt).
    Record {
        /// Delivery id.
        id: Uuid,
        /// The server that claimed it.
        owner: String,
        /// Attempt time.
        at: OffsetDateTime,
        /// HTTP status or error class.
        result: String,
        /// What it came to.
        outcome: DeliveryOutcome,
    },
}

/// Which deliveries to list.
#[derive(Debug, Clone)]
pub struct DeliveryQuery {
    /// The webhook's.
    pub webhook: Uuid,
    /// Deliveries after this one in list order (newest first: `created_at` descending, then
    /// id).
    pub before: Option<(OffsetDateTime, Uuid)>,
    /// At most this many.
    pub limit: u32,
}

impl DeliveryOutcome {
    /// The status column, next attempt time and delivered time this outcome writes.
    pub(crate) fn columns(
        &self,
        at: OffsetDateTime,
    ) -> (&'static str, Option<OffsetDateTime>, Option<OffsetDateTime>) {
        match self {
            Self::Delivered => (DELIVERY_DELIVERED, None, Some(at)),
            Self::Retry(next) => (DELIVERY_PENDING, Some(*next), None),
            Self::Failed => (DELIVERY_FAILED, None, None),
        }
    }
}

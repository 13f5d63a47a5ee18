//! SQL text both backends run character for character: the column lists their decoders read
//! (so that a column added to one backend's list is added to the other's, in the same place)
//! and the statements both spell the same way. A statement that differs between SQLite and
//! PostgreSQL in placeholders (`?1` and `$1`), types or key-store joins stays in its backend.
//!
//! The column lists that SQLite splices into statements with `concat!` are macros here (a
//! `const` cannot go into `concat!`), each with a `const` of the same text for PostgreSQL,
//! which formats its statements at run time.

/// The columns of a record row (`r`), as `record_from` reads them.
macro_rules! record_columns {
    () => {
        "r.id, r.collection, r.ciphertext, r.key_version, r.revision, \
         r.created_at, r.updated_at, r.expires_at"
    };
}

/// The columns of an API key row, as `key_from` reads them.
macro_rules! key_columns {
    () => {
        "id, tenant, token_hash, name, role, purposes, created_at, revoked_at, expires_at"
    };
}

/// The columns of a data-subject request row, as `request_from` reads them.
macro_rules! request_columns {
    () => {
        "tenant, id, kind, subject, status, verified_by, detail, created_at, due_at, closed_at"
    };
}

/// The columns of an audit event row, as `audit_row_from` reads them.
macro_rules! audit_columns {
    () => {
        "idx, event, chain, at, tenant, subject, actor, action, outcome"
    };
}

/// [`record_columns!`] as a `const`.
pub(crate) const RECORD_COLUMNS: &str = record_columns!();

/// [`key_columns!`] as a `const`.
pub(crate) const KEY_COLUMNS: &str = key_columns!();

/// [`request_columns!`] as a `const`.
pub(crate) const REQUEST_COLUMNS: &str = request_columns!();

/// [`audit_columns!`] as a `const`.
pub(crate) const AUDIT_COLUMNS: &str = audit_columns!();

/// The columns of a user row.
pub(crate) const USER_COLUMNS: &str = "id, email_hash, email_sealed, role, tenant, password_hash, \
     totp_sealed, totp_last_step, key_version, reset_hash, reset_expires_at, created_at, \
     password_changed_at, disabled_at";

/// The columns of a session row.
pub(crate) const SESSION_COLUMNS: &str =
    "id, token_hash, user_id, csrf_hash, created_at, last_seen_at, expires_at, revoked_at";

/// The columns of a membership row.
pub(crate) const MEMBERSHIP_COLUMNS: &str =
    "user_id, tenant, role, purposes, expires_at, created_at";

/// The columns of a support grant row.
pub(crate) const GRANT_COLUMNS: &str = "id, tenant, requester, ticket, justification, collections, \
     actions, break_glass, status, duration_secs, requested_at, decided_at, decided_by, \
     expires_at";

/// The columns of an alert row.
pub(crate) const ALERT_COLUMNS: &str = "id, rule, scope, severity, tenant, status, first_seen, \
     last_seen, count, events, acknowledged_by, acknowledged_at, resolved_by, resolved_at";

/// The columns of a webhook row.
pub(crate) const WEBHOOK_COLUMNS: &str =
    "id, tenant, url, secret, created_at, created_by, deleted_at";

/// The columns of a webhook delivery row.
pub(crate) const DELIVERY_COLUMNS: &str = "id, webhook, tenant, event, alert, payload, status, \
     attempts, created_at, next_attempt_at, last_attempt_at, last_result, delivered_at, \
     lease_owner, lease_until";

/// The columns of an incident row.
pub(crate) const INCIDENT_COLUMNS: &str =
    "id, tenant, opened_by, title, status, opened_at, closed_at, due_alerted, overdue_alerted";

/// For each tenant, how many subjects and records it holds (the store statistics).
pub(crate) const TENANT_COUNTS: &str = "SELECT t.id, (SELECT COUNT(*) FROM subjects s WHERE \
     s.tenant = t.id), (SELECT COUNT(*) FROM records r WHERE r.tenant = t.id) FROM tenants t \
     ORDER BY t.id";

/// The newest audit checkpoint: its tree size and when it was taken.
pub(crate) const LAST_CHECKPOINT: &str =
    "SELECT tree_size, created_at FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1";

/// Every audit checkpoint, oldest first.
pub(crate) const CHECKPOINTS: &str =
    "SELECT tree_size, checkpoint, frontier, created_at FROM audit_checkpoints ORDER BY tree_size";

/// How many alerts are not resolved, by rule and severity.
pub(crate) const OPEN_ALERT_COUNTS: &str = "SELECT rule, severity, count(*) FROM alerts WHERE \
     status <> 'resolved' GROUP BY rule, severity ORDER BY rule, severity";

/// How many webhook deliveries wait to be sent (the outbox).
pub(crate) const PENDING_DELIVERIES: &str =
    "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'";

/// The first and last index of the audit log.
pub(crate) const AUDIT_INDEX_RANGE: &str = "SELECT MIN(idx), MAX(idx) FROM audit_events";

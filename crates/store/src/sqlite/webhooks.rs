//! Webhooks and their outbox on SQLite.

use rusqlite::{Connection, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{all, first, run, run_one};
use crate::decode::{delivery_from, webhook_from};
use crate::sql::{self, DELIVERY_COLUMNS, WEBHOOK_COLUMNS};
use crate::webhooks::{DELIVERY_FAILED, DeliveryQuery, DeliveryRow, WebhookOp, WebhookRow};
use crate::{Result, StoreError, to_micros};

/// Applies one change to webhooks inside the writer's transaction.
pub(super) fn apply(conn: &Connection, op: &WebhookOp) -> Result<()> {
    match op {
        WebhookOp::Insert(w) => {
            run(
                conn,
                "INSERT INTO webhooks (id, tenant, url, secret, created_at, created_by, \
                 deleted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    w.id,
                    w.tenant,
                    w.url,
                    w.secret,
                    to_micros(w.created_at),
                    w.created_by,
                    w.deleted_at.map(to_micros),
                ],
            )
            .map_err(super::unique_to_conflict("webhook"))?;
        }
        WebhookOp::Delete { id, tenant, at } => {
            run_one(
                conn,
                "webhook",
                "UPDATE webhooks SET deleted_at = ?1 \
                 WHERE id = ?2 AND tenant IS ?3 AND deleted_at IS NULL",
                params![to_micros(*at), id, tenant],
            )?;
            run(
                conn,
                "UPDATE webhook_deliveries SET status = ?1, last_result = 'webhook_deleted', \
                 lease_owner = NULL, lease_until = NULL WHERE webhook = ?2 AND status = 'pending'",
                params![DELIVERY_FAILED, id],
            )?;
        }
        WebhookOp::Enqueue(d) => {
            run(
                conn,
                "INSERT INTO webhook_deliveries (id, webhook, tenant, event, alert, payload, \
                 status, attempts, created_at, next_attempt_at, last_attempt_at, last_result, \
                 delivered_at, lease_owner, lease_until) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    d.id,
                    d.webhook,
                    d.tenant,
                    d.event,
                    d.alert,
                    d.payload,
                    d.status,
                    d.attempts,
                    to_micros(d.created_at),
                    to_micros(d.next_attempt_at),
                    d.last_attempt_at.map(to_micros),
                    d.last_result,
                    d.delivered_at.map(to_micros),
                    d.lease_owner,
                    d.lease_until.map(to_micros),
                ],
            )
            .map_err(super::unique_to_conflict("webhook delivery"))?;
        }
        WebhookOp::Claim {
            id,
            owner,
            now,
            until,
        } => run_one(
            conn,
            "webhook delivery",
            "UPDATE webhook_deliveries SET lease_owner = ?1, lease_until = ?2 \
             WHERE id = ?3 AND status = 'pending' AND (lease_until IS NULL OR lease_until <= ?4)",
            params![owner, to_micros(*until), id, to_micros(*now)],
        )?,
        WebhookOp::Record {
            id,
            owner,
            at,
            result,
            outcome,
        } => {
            let (status, next, delivered) = outcome.columns(*at);
            run_one(
                conn,
                "webhook delivery",
                "UPDATE webhook_deliveries SET status = ?1, attempts = attempts + 1, \
                 next_attempt_at = COALESCE(?2, next_attempt_at), last_attempt_at = ?3, \
                 last_result = ?4, delivered_at = ?5, lease_owner = NULL, lease_until = NULL \
                 WHERE id = ?6 AND lease_owner = ?7 AND status = 'pending'",
                params![
                    status,
                    next.map(to_micros),
                    to_micros(*at),
                    result,
                    delivered.map(to_micros),
                    id,
                    owner,
                ],
            )?;
        }
    }
    Ok(())
}

pub(super) fn webhook(c: &Connection, id: Uuid) -> Result<Option<WebhookRow>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1");
    first(c, &sql, [id], |r| webhook_from(r))
}

pub(super) fn webhooks(c: &Connection, tenant: Option<Uuid>) -> Result<Vec<WebhookRow>> {
    let sql = format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant IS ?1 AND deleted_at IS NULL \
         ORDER BY created_at, id"
    );
    all(c, &sql, params![tenant], |r| webhook_from(r))
}

pub(super) fn webhook_deliveries(c: &Connection, q: &DeliveryQuery) -> Result<Vec<DeliveryRow>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook = ?1 \
         AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND id < ?3)) \
         ORDER BY created_at DESC, id DESC LIMIT ?4"
    );
    let (at, id) = match q.before {
        Some((at, id)) => (Some(to_micros(at)), Some(id)),
        None => (None, None),
    };
    all(
        c,
        &sql,
        params![q.webhook, at, id, i64::from(q.limit)],
        |r| delivery_from(r),
    )
}

pub(super) fn webhook_delivery(c: &Connection, id: Uuid) -> Result<Option<DeliveryRow>> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ?1");
    first(c, &sql, [id], |r| delivery_from(r))
}

pub(super) fn due_webhook_deliveries(
    c: &Connection,
    now: OffsetDateTime,
    limit: u32,
) -> Result<Vec<DeliveryRow>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
         WHERE status = 'pending' AND next_attempt_at <= ?1 \
         AND (lease_until IS NULL OR lease_until <= ?1) \
         ORDER BY next_attempt_at, id LIMIT ?2"
    );
    all(c, &sql, params![to_micros(now), i64::from(limit)], |r| {
        delivery_from(r)
    })
}

pub(super) fn webhook_outbox_pending(c: &Connection) -> Result<u64> {
    let n: Option<i64> = first(c, sql::PENDING_DELIVERIES, [], |r| Ok(r.get(0)?))?;
    u64::try_from(n.unwrap_or(0)).map_err(|_| StoreError::Corrupt("outbox count".into()))
}

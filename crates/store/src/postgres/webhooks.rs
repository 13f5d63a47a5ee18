//! Webhooks and their outbox on PostgreSQL.
//!
//! Claiming is a compare-and-set on the lease columns: the `UPDATE … WHERE lease free` of two
//! servers serializes on the row lock, and the second finds the lease taken and changes
//! nothing.

use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use super::unique_to_conflict;
use crate::decode::{delivery_from, webhook_from};
use crate::sql::{self, DELIVERY_COLUMNS, WEBHOOK_COLUMNS};
use crate::webhooks::{DELIVERY_FAILED, DeliveryQuery, DeliveryRow, WebhookOp, WebhookRow};
use crate::{Result, StoreError, to_micros};

fn b(u: &Uuid) -> &[u8] {
    u.as_bytes().as_slice()
}

/// Applies one change to webhooks inside the request's transaction.
pub(super) async fn apply(conn: &mut PgConnection, op: &WebhookOp) -> Result<()> {
    let (done, what) = match op {
        WebhookOp::Insert(w) => (
            sqlx::query(
                "INSERT INTO webhooks (id, tenant, url, secret, created_at, created_by, \
                 deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(b(&w.id))
            .bind(w.tenant.as_ref().map(b))
            .bind(&w.url)
            .bind(&w.secret)
            .bind(to_micros(w.created_at))
            .bind(&w.created_by)
            .bind(w.deleted_at.map(to_micros))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("webhook"))?,
            "webhook",
        ),
        WebhookOp::Delete { id, tenant, at } => {
            let done = sqlx::query(
                "UPDATE webhooks SET deleted_at = $1 \
                 WHERE id = $2 AND tenant IS NOT DISTINCT FROM $3 AND deleted_at IS NULL",
            )
            .bind(to_micros(*at))
            .bind(b(id))
            .bind(tenant.as_ref().map(b))
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE webhook_deliveries SET status = $1, last_result = 'webhook_deleted', \
                 lease_owner = NULL, lease_until = NULL WHERE webhook = $2 AND status = 'pending'",
            )
            .bind(DELIVERY_FAILED)
            .bind(b(id))
            .execute(&mut *conn)
            .await?;
            (done, "webhook")
        }
        WebhookOp::Enqueue(d) => (
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, webhook, tenant, event, alert, payload, \
                 status, attempts, created_at, next_attempt_at, last_attempt_at, last_result, \
                 delivered_at, lease_owner, lease_until) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(b(&d.id))
            .bind(b(&d.webhook))
            .bind(d.tenant.as_ref().map(b))
            .bind(&d.event)
            .bind(d.alert.as_ref().map(b))
            .bind(&d.payload)
            .bind(&d.status)
            .bind(d.attempts)
            .bind(to_micros(d.created_at))
            .bind(to_micros(d.next_attempt_at))
            .bind(d.last_attempt_at.map(to_micros))
            .bind(&d.last_result)
            .bind(d.delivered_at.map(to_micros))
            .bind(&d.lease_owner)
            .bind(d.lease_until.map(to_micros))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("webhook delivery"))?,
            "webhook delivery",
        ),
        WebhookOp::Claim {
            id,
            owner,
            now,
            until,
        } => (
            sqlx::query(
                "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2 \
                 WHERE id = $3 AND status = 'pending' \
                 AND (lease_until IS NULL OR lease_until <= $4)",
            )
            .bind(owner)
            .bind(to_micros(*until))
            .bind(b(id))
            .bind(to_micros(*now))
            .execute(&mut *conn)
            .await?,
            "webhook delivery",
        ),
        WebhookOp::Record {
            id,
            owner,
            at,
            result,
            outcome,
        } => {
            let (status, next, delivered) = outcome.columns(*at);
            (
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, \
                     next_attempt_at = COALESCE($2, next_attempt_at), last_attempt_at = $3, \
                     last_result = $4, delivered_at = $5, lease_owner = NULL, \
                     lease_until = NULL WHERE id = $6 AND lease_owner = $7 AND status = 'pending'",
                )
                .bind(status)
                .bind(next.map(to_micros))
                .bind(to_micros(*at))
                .bind(result)
                .bind(delivered.map(to_micros))
                .bind(b(id))
                .bind(owner)
                .execute(&mut *conn)
                .await?,
                "webhook delivery",
            )
        }
    };
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(what));
    }
    Ok(())
}

pub(super) async fn webhook(pool: &PgPool, id: Uuid) -> Result<Option<WebhookRow>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(b(&id))
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(webhook_from).transpose()
}

pub(super) async fn webhooks(pool: &PgPool, tenant: Option<Uuid>) -> Result<Vec<WebhookRow>> {
    let sql = format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks \
         WHERE tenant IS NOT DISTINCT FROM $1 AND deleted_at IS NULL ORDER BY created_at, id"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_ref().map(b))
        .fetch_all(pool)
        .await?;
    rows.iter().map(webhook_from).collect()
}

pub(super) async fn webhook_deliveries(
    pool: &PgPool,
    q: &DeliveryQuery,
) -> Result<Vec<DeliveryRow>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook = $1 \
         AND ($2::BIGINT IS NULL OR created_at < $2 OR (created_at = $2 AND id < $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    );
    let (at, id) = match q.before {
        Some((at, id)) => (Some(to_micros(at)), Some(id.as_bytes().to_vec())),
        None => (None, None),
    };
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(b(&q.webhook))
        .bind(at)
        .bind(id)
        .bind(i64::from(q.limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(delivery_from).collect()
}

pub(super) async fn webhook_delivery(pool: &PgPool, id: Uuid) -> Result<Option<DeliveryRow>> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(b(&id))
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(delivery_from).transpose()
}

pub(super) async fn due_webhook_deliveries(
    pool: &PgPool,
    now: OffsetDateTime,
    limit: u32,
) -> Result<Vec<DeliveryRow>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
         WHERE status = 'pending' AND next_attempt_at <= $1 \
         AND (lease_until IS NULL OR lease_until <= $1) \
         ORDER BY next_attempt_at, id LIMIT $2"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(to_micros(now))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(delivery_from).collect()
}

pub(super) async fn webhook_outbox_pending(pool: &PgPool) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(sql::PENDING_DELIVERIES)
        .fetch_one(pool)
        .await?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt("outbox count".into()))
}

//! Alerts on PostgreSQL.

use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use uuid::Uuid;

use super::unique_to_conflict;
use crate::alerts::{AlertOp, AlertQuery, AlertRow};
use crate::decode::alert_from;
use crate::sql::{self, ALERT_COLUMNS};
use crate::{Result, StoreError, to_micros};

fn b(u: &Uuid) -> &[u8] {
    u.as_bytes().as_slice()
}

/// Applies one change to alerts inside the request's transaction.
pub(super) async fn apply(conn: &mut PgConnection, op: &AlertOp) -> Result<()> {
    let done = match op {
        AlertOp::Insert(a) => sqlx::query(
            "INSERT INTO alerts (id, rule, scope, severity, tenant, status, first_seen, \
             last_seen, count, events, acknowledged_by, acknowledged_at, resolved_by, \
             resolved_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(b(&a.id))
        .bind(&a.rule)
        .bind(&a.scope)
        .bind(&a.severity)
        .bind(a.tenant.as_ref().map(b))
        .bind(&a.status)
        .bind(to_micros(a.first_seen))
        .bind(to_micros(a.last_seen))
        .bind(a.count)
        .bind(&a.events)
        .bind(&a.acknowledged_by)
        .bind(a.acknowledged_at.map(to_micros))
        .bind(&a.resolved_by)
        .bind(a.resolved_at.map(to_micros))
        .execute(&mut *conn)
        .await
        .map_err(unique_to_conflict("alert"))?,
        AlertOp::Bump {
            id,
            hits,
            at,
            events,
        } => {
            sqlx::query(
                "UPDATE alerts SET count = count + $1, last_seen = GREATEST(last_seen, $2), \
                 events = $3 WHERE id = $4 AND status <> 'resolved'",
            )
            .bind(hits)
            .bind(to_micros(*at))
            .bind(events)
            .bind(b(id))
            .execute(&mut *conn)
            .await?
        }
        AlertOp::SetStatus {
            id,
            from,
            to,
            by,
            at,
        } => {
            let sql = if to == "resolved" {
                "UPDATE alerts SET status = $1, resolved_by = $2, resolved_at = $3 \
                 WHERE id = $4 AND status = $5"
            } else {
                "UPDATE alerts SET status = $1, acknowledged_by = $2, acknowledged_at = $3 \
                 WHERE id = $4 AND status = $5"
            };
            sqlx::query(sql)
                .bind(to)
                .bind(by)
                .bind(to_micros(*at))
                .bind(b(id))
                .bind(from)
                .execute(&mut *conn)
                .await?
        }
    };
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound("alert"));
    }
    Ok(())
}

pub(super) async fn alert(pool: &PgPool, id: Uuid) -> Result<Option<AlertRow>> {
    let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(b(&id))
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(alert_from).transpose()
}

pub(super) async fn live_alert(pool: &PgPool, rule: &str, scope: &str) -> Result<Option<AlertRow>> {
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE rule = $1 AND scope = $2 AND status <> 'resolved'"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(rule)
        .bind(scope)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(alert_from).transpose()
}

pub(super) async fn alerts(pool: &PgPool, q: &AlertQuery) -> Result<Vec<AlertRow>> {
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts \
         WHERE ($1::BYTEA IS NULL OR tenant = $1) AND ($2::TEXT IS NULL OR status = $2) \
         AND ($3::BIGINT IS NULL OR first_seen < $3 OR (first_seen = $3 AND id < $4)) \
         ORDER BY first_seen DESC, id DESC LIMIT $5"
    );
    let (at, id) = match q.before {
        Some((at, id)) => (Some(to_micros(at)), Some(id.as_bytes().to_vec())),
        None => (None, None),
    };
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(q.tenant.as_ref().map(b))
        .bind(&q.status)
        .bind(at)
        .bind(id)
        .bind(i64::from(q.limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(alert_from).collect()
}

pub(super) async fn open_alert_counts(pool: &PgPool) -> Result<Vec<(String, String, u64)>> {
    let rows = sqlx::query(sql::OPEN_ALERT_COUNTS).fetch_all(pool).await?;
    rows.iter()
        .map(|r| {
            let n: i64 = r.try_get(2)?;
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                u64::try_from(n).map_err(|_| StoreError::Corrupt("alert count".into()))?,
            ))
        })
        .collect()
}

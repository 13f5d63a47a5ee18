//! Incidents on PostgreSQL.
//!
//! The flags and status changes are conditional `UPDATE`s: two servers setting the same flag
//! serialize on the row lock, and the second finds it set and changes nothing.

use sqlx::postgres::{PgPool, PgQueryResult};
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

use super::{unique_to_conflict, uuid_at};
use crate::decode::{incident_from, incident_note_from, incident_tenant_from};
use crate::incidents::{
    INCIDENT_CLOSED, INCIDENT_OPEN, IncidentOp, IncidentRow, IncidentScope, IncidentView,
};
use crate::sql::INCIDENT_COLUMNS;
use crate::{Result, StoreError, to_micros};

fn b(u: &Uuid) -> &[u8] {
    u.as_bytes().as_slice()
}

/// Applies one change to incidents inside the request's transaction.
pub(super) async fn apply(conn: &mut PgConnection, op: &IncidentOp) -> Result<()> {
    let (done, what) = match op {
        IncidentOp::Open {
            incident,
            tenants,
            subjects,
            alerts,
        } => (
            open(conn, incident, tenants, subjects, alerts).await?,
            "incident",
        ),
        IncidentOp::Note(n) => (
            sqlx::query(
                "INSERT INTO incident_notes (incident, seq, at, author, kind, text) \
                 SELECT $1::BYTEA, $2::BIGINT, $3::BIGINT, $4::TEXT, $5::TEXT, $6::BYTEA \
                 WHERE EXISTS (SELECT 1 FROM incidents WHERE id = $1::BYTEA AND status = $7)",
            )
            .bind(b(&n.incident))
            .bind(n.seq)
            .bind(to_micros(n.at))
            .bind(&n.author)
            .bind(&n.kind)
            .bind(&n.text)
            .bind(INCIDENT_OPEN)
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("incident note"))?,
            "incident",
        ),
        IncidentOp::Notified {
            incident,
            tenant,
            at,
            by,
        } => (
            sqlx::query(
                "UPDATE incident_tenants SET notified_at = $1, notified_by = $2 \
                 WHERE incident = $3 AND tenant = $4 AND notified_at IS NULL",
            )
            .bind(to_micros(*at))
            .bind(by)
            .bind(b(incident))
            .bind(b(tenant))
            .execute(&mut *conn)
            .await?,
            "incident tenant",
        ),
        IncidentOp::Close { id, at } => (
            sqlx::query(
                "UPDATE incidents SET status = $1, closed_at = $2 WHERE id = $3 AND status = $4",
            )
            .bind(INCIDENT_CLOSED)
            .bind(to_micros(*at))
            .bind(b(id))
            .bind(INCIDENT_OPEN)
            .execute(&mut *conn)
            .await?,
            "incident",
        ),
        IncidentOp::FlagDue { id } => (
            sqlx::query(
                "UPDATE incidents SET due_alerted = 1 \
                 WHERE id = $1 AND status = $2 AND due_alerted = 0",
            )
            .bind(b(id))
            .bind(INCIDENT_OPEN)
            .execute(&mut *conn)
            .await?,
            "incident",
        ),
        IncidentOp::FlagOverdue { id } => (
            sqlx::query(
                "UPDATE incidents SET overdue_alerted = 1 \
                 WHERE id = $1 AND status = $2 AND overdue_alerted = 0",
            )
            .bind(b(id))
            .bind(INCIDENT_OPEN)
            .execute(&mut *conn)
            .await?,
            "incident",
        ),
    };
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(what));
    }
    Ok(())
}

/// Opens an incident with the tenants, subjects and alerts it concerns, all in the request's
/// transaction; the links are idempotent (`ON CONFLICT DO NOTHING`).
async fn open(
    conn: &mut PgConnection,
    i: &IncidentRow,
    tenants: &[Uuid],
    subjects: &[(Uuid, Uuid)],
    alerts: &[Uuid],
) -> Result<PgQueryResult> {
    let done = sqlx::query(
        "INSERT INTO incidents (id, tenant, opened_by, title, status, opened_at, \
         closed_at, due_alerted, overdue_alerted) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(b(&i.id))
    .bind(i.tenant.as_ref().map(b))
    .bind(&i.opened_by)
    .bind(&i.title)
    .bind(&i.status)
    .bind(to_micros(i.opened_at))
    .bind(i.closed_at.map(to_micros))
    .bind(i64::from(i.due_alerted))
    .bind(i64::from(i.overdue_alerted))
    .execute(&mut *conn)
    .await
    .map_err(unique_to_conflict("incident"))?;
    for t in tenants {
        sqlx::query(
            "INSERT INTO incident_tenants (incident, tenant) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(b(&i.id))
        .bind(b(t))
        .execute(&mut *conn)
        .await?;
    }
    for (t, s) in subjects {
        sqlx::query(
            "INSERT INTO incident_subjects (incident, tenant, subject) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(b(&i.id))
        .bind(b(t))
        .bind(b(s))
        .execute(&mut *conn)
        .await?;
    }
    for a in alerts {
        sqlx::query(
            "INSERT INTO incident_alerts (incident, alert) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(b(&i.id))
        .bind(b(a))
        .execute(&mut *conn)
        .await?;
    }
    Ok(done)
}

pub(super) async fn incident(pool: &PgPool, id: Uuid) -> Result<Option<IncidentView>> {
    let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1");
    let Some(row) = sqlx::query(AssertSqlSafe(sql))
        .bind(b(&id))
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let incident = incident_from(&row)?;
    let tenants = sqlx::query(
        "SELECT tenant, notified_at, notified_by FROM incident_tenants WHERE incident = $1 \
         ORDER BY tenant",
    )
    .bind(b(&id))
    .fetch_all(pool)
    .await?
    .iter()
    .map(incident_tenant_from)
    .collect::<Result<Vec<_>>>()?;
    let subjects = sqlx::query(
        "SELECT tenant, subject FROM incident_subjects WHERE incident = $1 \
         ORDER BY tenant, subject",
    )
    .bind(b(&id))
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| Ok((uuid_at(r, 0)?, uuid_at(r, 1)?)))
    .collect::<Result<Vec<_>>>()?;
    let alerts =
        sqlx::query("SELECT alert FROM incident_alerts WHERE incident = $1 ORDER BY alert")
            .bind(b(&id))
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| uuid_at(r, 0))
            .collect::<Result<Vec<_>>>()?;
    let notes = sqlx::query(
        "SELECT incident, seq, at, author, kind, text FROM incident_notes WHERE incident = $1 \
         ORDER BY seq",
    )
    .bind(b(&id))
    .fetch_all(pool)
    .await?
    .iter()
    .map(incident_note_from)
    .collect::<Result<Vec<_>>>()?;
    Ok(Some(IncidentView {
        incident,
        tenants,
        subjects,
        alerts,
        notes,
    }))
}

pub(super) async fn incidents(
    pool: &PgPool,
    scope: IncidentScope,
    limit: u32,
) -> Result<Vec<IncidentRow>> {
    let limit = i64::from(limit);
    let rows = match scope {
        IncidentScope::Operator => {
            let sql = format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE tenant IS NULL \
                 ORDER BY opened_at DESC, id DESC LIMIT $1"
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
        IncidentScope::Tenant(t) => {
            let sql = format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE tenant = $1 \
                 OR id IN (SELECT incident FROM incident_tenants WHERE tenant = $1) \
                 ORDER BY opened_at DESC, id DESC LIMIT $2"
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(b(&t))
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
        IncidentScope::ClockPending => {
            let sql = format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE status = $1 \
                 AND (due_alerted = 0 OR overdue_alerted = 0) \
                 AND EXISTS (SELECT 1 FROM incident_tenants it \
                 WHERE it.incident = incidents.id AND it.notified_at IS NULL) \
                 ORDER BY opened_at, id LIMIT $2"
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(INCIDENT_OPEN)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
    };
    rows.iter().map(incident_from).collect()
}

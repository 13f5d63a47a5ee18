//! Reads of the audit log: pages of it, its checkpoints, and the filtered queries over it.

use super::*;
use crate::sql;

pub(in crate::postgres) async fn audit_head(pool: &PgPool) -> Result<AuditHead> {
    // The row, not a cached copy: other servers append too, and every commit that was
    // acknowledged has updated it.
    let sql = format!("SELECT {} FROM audit_head WHERE id = 1", AuditTail::COLUMNS);
    let row = sqlx::query(AssertSqlSafe(sql))
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::Corrupt("audit_head row is missing".into()))?;
    Ok(AuditTail::from_row(&row)?.head())
}

pub(in crate::postgres) async fn audit_rows(
    pool: &PgPool,
    from: u64,
    limit: u32,
) -> Result<Vec<AuditRow>> {
    let sql =
        format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE idx >= $1 ORDER BY idx LIMIT $2");
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(i64::try_from(from).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(audit_row_from).collect()
}

pub(in crate::postgres) async fn audit_query(
    pool: &PgPool,
    q: &AuditQuery,
) -> Result<Vec<AuditRow>> {
    let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE tenant = "
    ));
    b.push_bind(q.tenant.as_bytes().to_vec());
    if let Some(t) = q.since {
        b.push(" AND at >= ").push_bind(to_micros(t));
    }
    if let Some(t) = q.until {
        b.push(" AND at < ").push_bind(to_micros(t));
    }
    if let Some(a) = &q.actor {
        b.push(" AND actor = ").push_bind(a.clone());
    }
    if let Some(s) = q.subject {
        b.push(" AND subject = ").push_bind(s.as_bytes().to_vec());
    }
    if let Some(a) = &q.action {
        b.push(" AND action = ").push_bind(a.clone());
    }
    if let Some(o) = &q.outcome {
        b.push(" AND outcome = ").push_bind(o.clone());
    }
    if let Some(after) = q.after {
        b.push(" AND idx > ")
            .push_bind(i64::try_from(after).unwrap_or(i64::MAX));
    }
    b.push(" ORDER BY idx LIMIT ").push_bind(i64::from(q.limit));
    let rows = b.build().fetch_all(pool).await?;
    rows.iter().map(audit_row_from).collect()
}

pub(in crate::postgres) async fn last_system_event(
    pool: &PgPool,
    action: &str,
) -> Result<Option<AuditRow>> {
    // Only the constant column list is formatted in; the action is bound.
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE tenant IS NULL AND action = $1 \
         ORDER BY idx DESC LIMIT 1"
    )))
    .bind(action)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(audit_row_from).transpose()
}

pub(in crate::postgres) async fn checkpoints(pool: &PgPool) -> Result<Vec<CheckpointRow>> {
    let rows = sqlx::query(sql::CHECKPOINTS).fetch_all(pool).await?;
    rows.iter().map(checkpoint_from).collect()
}

pub(in crate::postgres) async fn audit_index_at(
    pool: &PgPool,
    at: time::OffsetDateTime,
) -> Result<Option<u64>> {
    // The first event in log order at or after `at`: a walk of the primary key that reads
    // only the events before it (the ones a prune is about to delete).
    let v: Option<i64> =
        sqlx::query_scalar("SELECT idx FROM audit_events WHERE at >= $1 ORDER BY idx LIMIT 1")
            .bind(to_micros(at))
            .fetch_optional(pool)
            .await?;
    v.map(|v| u64::try_from(v).map_err(|_| StoreError::Corrupt("negative index".into())))
        .transpose()
}

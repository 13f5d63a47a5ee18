//! Reads for key rotation: retired keys, the subjects that still hold some, key jobs.

use super::*;

pub(in crate::postgres) async fn keyed_subjects(
    pool: &PgPool,
    tenant: Uuid,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<SubjectRow>> {
    let sql = format!(
        "SELECT {SUBJECT_COLUMNS} FROM subjects s \
         JOIN subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id \
         WHERE s.tenant = $1 AND s.id > $2 ORDER BY s.id LIMIT $3"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_bytes().as_slice())
        .bind(after.unwrap_or(Uuid::nil()).as_bytes().to_vec())
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(|r| subject_from(r, 0)).collect()
}

pub(in crate::postgres) async fn retired_keys(
    pool: &PgPool,
    tenant: Uuid,
    subject: Uuid,
) -> Result<Vec<RetiredKeyRow>> {
    let rows = sqlx::query(
        "SELECT version, wrapped_key, key_version FROM retired_subject_keys \
         WHERE tenant = $1 AND subject = $2 ORDER BY version",
    )
    .bind(tenant.as_bytes().as_slice())
    .bind(subject.as_bytes().as_slice())
    .fetch_all(pool)
    .await?;
    rows.iter().map(retired_key_from).collect()
}

pub(in crate::postgres) async fn subjects_with_retired_keys(
    pool: &PgPool,
    tenant: Uuid,
    limit: u32,
) -> Result<Vec<Uuid>> {
    let rows = sqlx::query(
        "SELECT DISTINCT subject FROM retired_subject_keys WHERE tenant = $1 \
         ORDER BY subject LIMIT $2",
    )
    .bind(tenant.as_bytes().as_slice())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| uuid_at(r, 0)).collect()
}

pub(in crate::postgres) async fn retired_key_count(
    pool: &PgPool,
    tenant: Option<Uuid>,
) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM retired_subject_keys WHERE $1::bytea IS NULL OR tenant = $1",
    )
    .bind(tenant.map(|t| t.as_bytes().to_vec()))
    .fetch_one(pool)
    .await?;
    Ok(n as u64)
}

pub(in crate::postgres) async fn key_jobs(
    pool: &PgPool,
    status: Option<&str>,
) -> Result<Vec<KeyJobRow>> {
    let rows = sqlx::query(
        "SELECT id, tenant, status, cursor, subjects_done, records_done, records_total, \
         started_at, updated_at, finished_at, lease_owner, lease_until, error FROM key_jobs \
         WHERE $1::text IS NULL OR status = $1 ORDER BY started_at DESC, id DESC LIMIT 1000",
    )
    .bind(status)
    .fetch_all(pool)
    .await?;
    rows.iter().map(key_job_from).collect()
}

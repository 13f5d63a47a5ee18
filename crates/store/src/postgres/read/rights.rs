//! Reads for data-subject rights: requests, legal holds and the records they keep.

use super::*;

pub(in crate::postgres) async fn expired_held_records(
    pool: &PgPool,
    now: time::OffsetDateTime,
    limit: u32,
) -> Result<Vec<HeldRecordRow>> {
    let sql = format!(
        "SELECT {HELD_COLUMNS} FROM held_records r WHERE r.hold_until <= $1 \
         ORDER BY r.hold_until LIMIT $2"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(to_micros(now))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(|r| held_from(r, 0)).collect()
}

pub(in crate::postgres) async fn empty_holds(pool: &PgPool) -> Result<Vec<HoldRow>> {
    let sql = format!(
        "SELECT {HOLD_COLUMNS} FROM holds h \
         JOIN hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id WHERE NOT EXISTS \
         (SELECT 1 FROM held_records r WHERE r.tenant = h.tenant AND r.hold = h.id)"
    );
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await?;
    rows.iter().map(|r| hold_from(r, 0)).collect()
}

pub(in crate::postgres) async fn held_records(
    pool: &PgPool,
    tenant: Uuid,
    subject: Uuid,
) -> Result<Vec<(HoldRow, HeldRecordRow)>> {
    let sql = format!(
        "SELECT {HOLD_COLUMNS}, {HELD_COLUMNS} \
         FROM holds h JOIN held_records r ON r.tenant = h.tenant AND r.hold = h.id \
         LEFT JOIN hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id \
         WHERE h.tenant = $1 AND h.subject = $2 ORDER BY r.id"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_bytes().as_slice())
        .bind(subject.as_bytes().as_slice())
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| Ok((hold_from(r, 0)?, held_from(r, 6)?)))
        .collect()
}

pub(in crate::postgres) async fn live_holds(pool: &PgPool, tenant: Uuid) -> Result<Vec<HoldRow>> {
    let rows = sqlx::query(
        "SELECT h.tenant, h.id, h.subject, hk.wrapped_key, h.key_version, h.created_at FROM holds h \
         JOIN hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id WHERE h.tenant = $1 ORDER BY h.id",
    )
    .bind(tenant.as_bytes().as_slice())
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| hold_from(r, 0)).collect()
}

pub(in crate::postgres) async fn request(
    pool: &PgPool,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<RequestRow>> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE tenant = $1 AND id = $2");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_bytes().as_slice())
        .bind(id.as_bytes().as_slice())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(request_from).transpose()
}

pub(in crate::postgres) async fn requests(
    pool: &PgPool,
    tenant: Uuid,
    status: Option<&str>,
) -> Result<Vec<RequestRow>> {
    let sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM requests WHERE tenant = $1 \
         AND ($2::TEXT IS NULL OR status = $2) ORDER BY due_at, id"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_bytes().as_slice())
        .bind(status)
        .fetch_all(pool)
        .await?;
    rows.iter().map(request_from).collect()
}

pub(in crate::postgres) async fn requests_in_clear(
    pool: &PgPool,
    sealed_prefix: &str,
) -> Result<Vec<RequestRow>> {
    let sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM requests WHERE left(verified_by, length($1)) <> $1 \
         OR left(detail, length($1)) <> $1 ORDER BY tenant, id"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(sealed_prefix)
        .fetch_all(pool)
        .await?;
    rows.iter().map(request_from).collect()
}

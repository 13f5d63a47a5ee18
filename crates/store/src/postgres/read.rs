//! The read queries the `Store` impl delegates to: one query per method on the read pool (sqlx
//! prepares each statement once per connection and keeps it cached), never on a writer's
//! connection, so a read never queues behind a batch.

use super::*;
use crate::sql;

pub(super) mod audit;
pub(super) mod keys;
pub(super) mod rights;

pub(in crate::postgres) async fn tenant(pool: &PgPool, id: Uuid) -> Result<Option<TenantRow>> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM {TENANT_FROM} WHERE t.id = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(id.as_bytes().as_slice())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(tenant_from).transpose()
}

pub(in crate::postgres) async fn tenants(pool: &PgPool) -> Result<Vec<TenantRow>> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM {TENANT_FROM} ORDER BY t.created_at");
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await?;
    rows.iter().map(tenant_from).collect()
}

pub(in crate::postgres) async fn api_key_by_hash(
    pool: &PgPool,
    hash: &[u8; 32],
) -> Result<Option<ApiKeyRow>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE token_hash = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(hash.as_slice())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(key_from).transpose()
}

pub(in crate::postgres) async fn invitation_by_hash(
    pool: &PgPool,
    hash: &[u8; 32],
) -> Result<Option<InvitationRow>> {
    let row = sqlx::query(
        "SELECT id, tenant, token_hash, created_at, expires_at, used_at, role, purposes, \
         membership_expires_at FROM invitations WHERE token_hash = $1",
    )
    .bind(hash.as_slice())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(invitation_from).transpose()
}

pub(in crate::postgres) async fn api_keys(
    pool: &PgPool,
    tenant: Option<Uuid>,
) -> Result<Vec<ApiKeyRow>> {
    // Two spellings rather than `IS NOT DISTINCT FROM`, which cannot use the index.
    let rows = match tenant {
        Some(t) => {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant = $1 ORDER BY id");
            sqlx::query(AssertSqlSafe(sql))
                .bind(t.as_bytes().as_slice())
                .fetch_all(pool)
                .await?
        }
        None => {
            let sql =
                format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant IS NULL ORDER BY id");
            sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await?
        }
    };
    rows.iter().map(key_from).collect()
}

pub(in crate::postgres) async fn subject_view(
    pool: &PgPool,
    tenant: Uuid,
    subject: Uuid,
    records: RecordFilter<'_>,
) -> Result<Option<SubjectView>> {
    let join = match records {
        RecordFilter::None => "AND FALSE",
        RecordFilter::One(_) => "AND r.id = $3",
        RecordFilter::All(None) => "",
        RecordFilter::All(Some(_)) => "AND r.collection = $3",
    };
    let sql = format!(
        "SELECT t.status, {SUBJECT_COLUMNS}, {RECORD_COLUMNS} FROM subjects s \
         JOIN tenants t ON t.id = s.tenant {SUBJECT_KEY_JOIN} \
         LEFT JOIN records r ON r.tenant = s.tenant AND r.subject = s.id {join} \
         WHERE s.tenant = $1 AND s.id = $2 ORDER BY r.id"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_bytes().as_slice())
        .bind(subject.as_bytes().as_slice());
    match records {
        RecordFilter::One(id) => query = query.bind(id.as_bytes().to_vec()),
        RecordFilter::All(Some(c)) => query = query.bind(c),
        RecordFilter::None | RecordFilter::All(None) => {}
    }
    let rows = query.fetch_all(pool).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut view = SubjectView {
        tenant_status: TenantStatus::decode(first.try_get(0)?)?,
        subject: subject_from(first, 1)?,
        records: Vec::with_capacity(rows.len()),
    };
    for row in &rows {
        if let Some(r) = record_from(row, 1 + SUBJECT_WIDTH, tenant, subject)? {
            view.records.push(r);
        }
    }
    Ok(Some(view))
}

pub(in crate::postgres) async fn subject_by_ref(
    pool: &PgPool,
    tenant: Uuid,
    ref_hash: &[u8],
) -> Result<Option<SubjectRow>> {
    let sql = format!(
        "SELECT {SUBJECT_COLUMNS} FROM subjects s {SUBJECT_KEY_JOIN} \
         WHERE s.tenant = $1 AND s.external_ref = $2"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_bytes().as_slice())
        .bind(ref_hash)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(|r| subject_from(r, 0)).transpose()
}

pub(in crate::postgres) async fn lookup(
    pool: &PgPool,
    tenant: Uuid,
    collection: &str,
    field: &str,
    hash: &[u8],
) -> Result<Vec<(SubjectRow, RecordRow)>> {
    let sql = format!(
        "SELECT {SUBJECT_COLUMNS}, {RECORD_COLUMNS} FROM blind_index b \
         JOIN records r ON r.tenant = b.tenant AND r.subject = b.subject AND r.id = b.record \
         JOIN subjects s ON s.tenant = b.tenant AND s.id = b.subject {SUBJECT_KEY_JOIN} \
         WHERE b.tenant = $1 AND b.collection = $2 AND b.field = $3 AND b.hash = $4 \
         ORDER BY r.id LIMIT 1000"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_bytes().as_slice())
        .bind(collection)
        .bind(field)
        .bind(hash)
        .fetch_all(pool)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let s = subject_from(row, 0)?;
        if let Some(r) = record_from(row, SUBJECT_WIDTH, s.tenant, s.id)? {
            out.push((s, r));
        }
    }
    Ok(out)
}

pub(in crate::postgres) async fn expired_records(
    pool: &PgPool,
    now: time::OffsetDateTime,
    after: Option<(time::OffsetDateTime, Uuid)>,
    tenant: Option<Uuid>,
    limit: u32,
) -> Result<Vec<ExpiredRecord>> {
    let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {SUBJECT_COLUMNS}, {RECORD_COLUMNS} FROM records r \
         JOIN subjects s ON s.tenant = r.tenant AND s.id = r.subject {SUBJECT_KEY_JOIN} \
         WHERE r.expires_at IS NOT NULL AND r.expires_at <= "
    ));
    b.push_bind(to_micros(now));
    if let Some((at, id)) = after {
        // A row-value comparison walks the (expires_at, id) index from the cursor on.
        b.push(" AND (r.expires_at, r.id) > (")
            .push_bind(to_micros(at));
        b.push(", ").push_bind(id.as_bytes().to_vec()).push(")");
    }
    if let Some(t) = tenant {
        b.push(" AND r.tenant = ").push_bind(t.as_bytes().to_vec());
    }
    b.push(" ORDER BY r.expires_at, r.id LIMIT ")
        .push_bind(i64::from(limit));
    let rows = b.build().fetch_all(pool).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let subject = subject_from(row, 0)?;
        if let Some(record) = record_from(row, SUBJECT_WIDTH, subject.tenant, subject.id)? {
            out.push(ExpiredRecord { subject, record });
        }
    }
    Ok(out)
}

pub(in crate::postgres) async fn ledger_entry(
    pool: &PgPool,
    tenant: Uuid,
    subject: Uuid,
) -> Result<Option<LedgerRow>> {
    let row = sqlx::query(
        "SELECT id, tenant, subject, requested_by, erased_at, detail FROM erasure_ledger \
         WHERE tenant = $1 AND subject = $2 ORDER BY erased_at LIMIT 1",
    )
    .bind(tenant.as_bytes().as_slice())
    .bind(subject.as_bytes().as_slice())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(ledger_from).transpose()
}

pub(in crate::postgres) async fn subject_ids(
    pool: &PgPool,
    tenant: Uuid,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Uuid>> {
    let rows = sqlx::query(
        "SELECT s.id FROM subjects s \
         JOIN subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id \
         WHERE s.tenant = $1 AND s.id > $2 ORDER BY s.id LIMIT $3",
    )
    .bind(tenant.as_bytes().as_slice())
    .bind(after.unwrap_or(Uuid::nil()).as_bytes().to_vec())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| uuid_at(r, 0)).collect()
}

pub(in crate::postgres) async fn records_of_subjects(
    pool: &PgPool,
    tenant: Uuid,
    after: Option<Uuid>,
    through: Uuid,
) -> Result<Vec<RecordRow>> {
    let sql = format!(
        "SELECT r.subject, {RECORD_COLUMNS} FROM records r \
         WHERE r.tenant = $1 AND r.subject > $2 AND r.subject <= $3 ORDER BY r.subject, r.id"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.as_bytes().as_slice())
        .bind(after.unwrap_or(Uuid::nil()).as_bytes().to_vec())
        .bind(through.as_bytes().as_slice())
        .fetch_all(pool)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Some(r) = record_from(row, 1, tenant, uuid_at(row, 0)?)? {
            out.push(r);
        }
    }
    Ok(out)
}

pub(in crate::postgres) async fn record_count(pool: &PgPool, tenant: Uuid) -> Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records WHERE tenant = $1")
        .bind(tenant.as_bytes().as_slice())
        .fetch_one(pool)
        .await?;
    Ok(n as u64)
}

pub(in crate::postgres) async fn stats(pool: &PgPool) -> Result<crate::StoreStats> {
    let rows = sqlx::query(sql::TENANT_COUNTS).fetch_all(pool).await?;
    let tenants = rows
        .iter()
        .map(|row| {
            Ok(crate::TenantSize {
                tenant: uuid_at(row, 0)?,
                subjects: u64_at(row, 1)?,
                records: u64_at(row, 2)?,
            })
        })
        .collect::<Result<_>>()?;
    let last = sqlx::query(sql::LAST_CHECKPOINT)
        .fetch_optional(pool)
        .await?;
    let last_checkpoint = match last {
        Some(row) => Some((u64_at(&row, 0)?, from_micros(row.try_get(1)?))),
        None => None,
    };
    Ok(crate::StoreStats {
        tenants,
        last_checkpoint,
    })
}

//! The read queries the `Store` impl delegates to. Each runs on one read-only connection,
//! which sees one committed state of the file (WAL snapshot), and never waits for the writer.

use super::*;
use crate::sql;

pub(super) mod audit;
pub(super) mod keys;
pub(super) mod rights;

pub(in crate::sqlite) fn tenant(c: &Connection, id: Uuid) -> Result<Option<TenantRow>> {
    first(
        c,
        concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM ",
            tenant_from!(),
            " WHERE t.id = ?1"
        ),
        [id],
        |r| tenant_from(r),
    )
}

pub(in crate::sqlite) fn tenants(c: &Connection) -> Result<Vec<TenantRow>> {
    all(
        c,
        concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM ",
            tenant_from!(),
            " ORDER BY t.created_at"
        ),
        [],
        |r| tenant_from(r),
    )
}

pub(in crate::sqlite) fn api_key_by_hash(
    c: &Connection,
    hash: &[u8; 32],
) -> Result<Option<ApiKeyRow>> {
    first(
        c,
        concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE token_hash = ?1"
        ),
        [hash],
        |r| key_from(r),
    )
}

pub(in crate::sqlite) fn api_keys(c: &Connection, tenant: Option<Uuid>) -> Result<Vec<ApiKeyRow>> {
    all(
        c,
        concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE tenant IS ?1 ORDER BY id"
        ),
        [tenant],
        |r| key_from(r),
    )
}

pub(in crate::sqlite) fn invitation_by_hash(
    c: &Connection,
    hash: &[u8; 32],
) -> Result<Option<InvitationRow>> {
    first(
        c,
        "SELECT id, tenant, token_hash, created_at, expires_at, used_at, role, \
         purposes, membership_expires_at FROM invitations WHERE token_hash = ?1",
        [hash],
        |r| invitation_from(r),
    )
}

pub(in crate::sqlite) fn subject_by_ref(
    c: &Connection,
    tenant: Uuid,
    ref_hash: &[u8],
) -> Result<Option<SubjectRow>> {
    first(
        c,
        concat!(
            "SELECT ",
            subject_columns!(),
            " FROM subjects s ",
            subject_key_join!(),
            " WHERE s.tenant = ?1 AND s.external_ref = ?2"
        ),
        params![tenant, ref_hash],
        |r| subject_from(r, 0),
    )
}

pub(in crate::sqlite) fn ledger_entry(
    c: &Connection,
    tenant: Uuid,
    subject: Uuid,
) -> Result<Option<LedgerRow>> {
    first(
        c,
        "SELECT id, tenant, subject, requested_by, erased_at, detail FROM erasure_ledger \
         WHERE tenant = ?1 AND subject = ?2 ORDER BY erased_at LIMIT 1",
        params![tenant, subject],
        |r| ledger_from(r),
    )
}

pub(in crate::sqlite) fn subject_ids(
    c: &Connection,
    tenant: Uuid,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Uuid>> {
    all(
        c,
        "SELECT s.id FROM subjects s \
         JOIN keys.subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id \
         WHERE s.tenant = ?1 AND s.id > ?2 ORDER BY s.id LIMIT ?3",
        params![tenant, after.unwrap_or(Uuid::nil()), i64::from(limit)],
        |r| uuid_at(r, 0),
    )
}

pub(in crate::sqlite) fn stats(c: &Connection) -> Result<crate::StoreStats> {
    let tenants = all(c, sql::TENANT_COUNTS, [], |row| {
        Ok(crate::TenantSize {
            tenant: uuid_at(row, 0)?,
            subjects: row.get::<_, i64>(1)? as u64,
            records: row.get::<_, i64>(2)? as u64,
        })
    })?;
    let last_checkpoint = c
        .prepare_cached(sql::LAST_CHECKPOINT)?
        .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))?
        .next()
        .transpose()?
        .map(|(size, at)| (size as u64, from_micros(at)));
    Ok(crate::StoreStats {
        tenants,
        last_checkpoint,
    })
}

pub(in crate::sqlite) fn subject_view(
    conn: &Connection,
    tenant: Uuid,
    subject: Uuid,
    records: RecordFilter<'_>,
) -> Result<Option<SubjectView>> {
    macro_rules! with_records {
        ($join:literal) => {
            concat!(
                "SELECT t.status, ",
                subject_columns!(),
                ", ",
                record_columns!(),
                " FROM subjects s JOIN tenants t ON t.id = s.tenant ",
                subject_key_join!(),
                " LEFT JOIN records r ON r.tenant = s.tenant AND r.subject = s.id ",
                $join,
                " WHERE s.tenant = ?1 AND s.id = ?2 ORDER BY r.id"
            )
        };
    }
    let mut stmt;
    let mut rows = match records {
        // No records wanted: no join at all (a join with a false condition still walks the
        // subject's records in SQLite).
        RecordFilter::None => {
            stmt = conn.prepare_cached(concat!(
                "SELECT t.status, ",
                subject_columns!(),
                " FROM subjects s JOIN tenants t ON t.id = s.tenant ",
                subject_key_join!(),
                " WHERE s.tenant = ?1 AND s.id = ?2"
            ))?;
            stmt.query(params![tenant, subject])?
        }
        RecordFilter::One(id) => {
            stmt = conn.prepare_cached(with_records!("AND r.id = ?3"))?;
            stmt.query(params![tenant, subject, id])?
        }
        RecordFilter::All(None) => {
            stmt = conn.prepare_cached(with_records!(""))?;
            stmt.query(params![tenant, subject])?
        }
        RecordFilter::All(Some(c)) => {
            stmt = conn.prepare_cached(with_records!("AND r.collection = ?3"))?;
            stmt.query(params![tenant, subject, c])?
        }
    };
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let mut view = SubjectView {
        tenant_status: TenantStatus::decode(&row.get::<_, String>(0)?)?,
        subject: subject_from(row, 1)?,
        records: Vec::new(),
    };
    if matches!(records, RecordFilter::None) {
        return Ok(Some(view));
    }
    let mut row = Some(row);
    while let Some(r) = row {
        if let Some(record) = record_from(r, 1 + SUBJECT_WIDTH, tenant, subject)? {
            view.records.push(record);
        }
        row = rows.next()?;
    }
    Ok(Some(view))
}

pub(in crate::sqlite) fn expired_records(
    conn: &Connection,
    now: time::OffsetDateTime,
    after: Option<(time::OffsetDateTime, Uuid)>,
    tenant: Option<Uuid>,
    limit: u32,
) -> Result<Vec<ExpiredRecord>> {
    let mut sql = String::from(concat!(
        "SELECT ",
        subject_columns!(),
        ", ",
        record_columns!(),
        " FROM records r JOIN subjects s ON s.tenant = r.tenant AND s.id = r.subject ",
        subject_key_join!(),
        " WHERE r.expires_at IS NOT NULL AND r.expires_at <= ?"
    ));
    let mut values = vec![Value::from(to_micros(now))];
    if let Some((at, id)) = after {
        // A row-value comparison walks the (expires_at, id) index from the cursor on.
        sql.push_str(" AND (r.expires_at, r.id) > (?, ?)");
        values.push(to_micros(at).into());
        values.push(id.into());
    }
    if let Some(t) = tenant {
        sql.push_str(" AND r.tenant = ?");
        values.push(t.into());
    }
    sql.push_str(" ORDER BY r.expires_at, r.id LIMIT ?");
    values.push(i64::from(limit).into());
    let mut out = Vec::new();
    for (subject, record) in all(conn, &sql, params_from_iter(values), |row| {
        let subject = subject_from(row, 0)?;
        let record = record_from(row, SUBJECT_WIDTH, subject.tenant, subject.id)?;
        Ok((subject, record))
    })? {
        if let Some(record) = record {
            out.push(ExpiredRecord { subject, record });
        }
    }
    Ok(out)
}

pub(in crate::sqlite) fn lookup(
    c: &Connection,
    tenant: Uuid,
    collection: &str,
    field: &str,
    hash: &[u8],
) -> Result<Vec<(SubjectRow, RecordRow)>> {
    let rows = all(
        c,
        concat!(
            "SELECT ",
            subject_columns!(),
            ", ",
            record_columns!(),
            " FROM blind_index b \
             JOIN records r ON r.tenant = b.tenant AND r.subject = b.subject AND r.id = b.record \
             JOIN subjects s ON s.tenant = b.tenant AND s.id = b.subject ",
            subject_key_join!(),
            " WHERE b.tenant = ?1 AND b.collection = ?2 AND b.field = ?3 AND b.hash = ?4 \
             ORDER BY r.id LIMIT 1000"
        ),
        params![tenant, collection, field, hash],
        |row| {
            let s = subject_from(row, 0)?;
            let r = record_from(row, SUBJECT_WIDTH, s.tenant, s.id)?;
            Ok((s, r))
        },
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|(s, r)| r.map(|r| (s, r)))
        .collect())
}

pub(in crate::sqlite) fn records_of_subjects(
    c: &Connection,
    tenant: Uuid,
    after: Option<Uuid>,
    through: Uuid,
) -> Result<Vec<RecordRow>> {
    let rows = all(
        c,
        concat!(
            "SELECT r.subject, ",
            record_columns!(),
            " FROM records r WHERE r.tenant = ?1 AND r.subject > ?2 \
             AND r.subject <= ?3 ORDER BY r.subject, r.id"
        ),
        params![tenant, after.unwrap_or(Uuid::nil()), through],
        |row| record_from(row, 1, tenant, uuid_at(row, 0)?),
    )?;
    Ok(rows.into_iter().flatten().collect())
}

pub(in crate::sqlite) fn record_count(c: &Connection, tenant: Uuid) -> Result<u64> {
    let n: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM records WHERE tenant = ?1")?
        .query_row([tenant], |r| r.get(0))?;
    Ok(n as u64)
}

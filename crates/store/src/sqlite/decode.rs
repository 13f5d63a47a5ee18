//! Rows to model structs: the statement helpers that collect rows, the column readers that
//! turn a stored value back into a Rust one (a value that does not decode is a corrupt row,
//! never a panic), and one decoder per row type, reading the columns its list in `columns`
//! names, in that order.

use super::*;

/// Runs a cached query and decodes every row.
pub(super) fn all<T, P: Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    mut decode: impl FnMut(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// Runs a cached query and decodes its first row, if any.
pub(super) fn first<T, P: Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    decode: impl FnOnce(&Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    rows.next()?.map(decode).transpose()
}

// ---- decoding -------------------------------------------------------------------------------

pub(super) fn blob_at<'a>(row: &'a Row<'_>, i: usize) -> Result<&'a [u8]> {
    match row.get_ref(i)? {
        ValueRef::Blob(b) => Ok(b),
        _ => Err(StoreError::Corrupt("blob column".into())),
    }
}

pub(super) fn uuid_at(row: &Row<'_>, i: usize) -> Result<Uuid> {
    opt_uuid_at(row, i)?.ok_or_else(|| StoreError::Corrupt("uuid column".into()))
}

pub(super) fn opt_uuid_at(row: &Row<'_>, i: usize) -> Result<Option<Uuid>> {
    match row.get_ref(i)? {
        ValueRef::Null => Ok(None),
        ValueRef::Blob(b) => Uuid::from_slice(b)
            .map(Some)
            .map_err(|_| StoreError::Corrupt("uuid column".into())),
        _ => Err(StoreError::Corrupt("uuid column".into())),
    }
}

pub(super) fn u32_at(row: &Row<'_>, i: usize) -> Result<u32> {
    let v: i64 = row.get(i)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt("key version".into()))
}

pub(super) fn hash_at(row: &Row<'_>, i: usize) -> Result<[u8; 32]> {
    blob_at(row, i)?
        .try_into()
        .map_err(|_| StoreError::Corrupt("hash column".into()))
}

pub(super) fn time_at(row: &Row<'_>, i: usize) -> Result<time::OffsetDateTime> {
    Ok(from_micros(row.get(i)?))
}

pub(super) fn opt_time_at(row: &Row<'_>, i: usize) -> Result<Option<time::OffsetDateTime>> {
    Ok(row.get::<_, Option<i64>>(i)?.map(from_micros))
}

// The column lists are macros so that every query is one `concat!`ed constant: the statement
// cache is keyed by the SQL text, and a constant needs no formatting per call.

pub(super) fn tenant_from(row: &Row<'_>) -> Result<TenantRow> {
    Ok(TenantRow {
        id: uuid_at(row, 0)?,
        name: row.get(1)?,
        status: TenantStatus::decode(&row.get::<_, String>(2)?)?,
        region: row.get(3)?,
        wrapped_key: row.get(4)?,
        root_key_version: u32_at(row, 5)?,
        key_version: u32_at(row, 6)?,
        settings: row.get(7)?,
        created_at: time_at(row, 8)?,
        status_changed_at: time_at(row, 9)?,
        destroy_after: opt_time_at(row, 10)?,
    })
}

pub(super) fn key_from(row: &Row<'_>) -> Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: uuid_at(row, 0)?,
        tenant: opt_uuid_at(row, 1)?,
        token_hash: hash_at(row, 2)?,
        name: row.get(3)?,
        role: row.get(4)?,
        purposes: row.get(5)?,
        created_at: time_at(row, 6)?,
        revoked_at: opt_time_at(row, 7)?,
        expires_at: opt_time_at(row, 8)?,
    })
}

/// Decodes subject columns starting at `at`.
pub(super) fn subject_from(row: &Row<'_>, at: usize) -> Result<SubjectRow> {
    Ok(SubjectRow {
        tenant: uuid_at(row, at)?,
        id: uuid_at(row, at + 1)?,
        external_ref: row.get(at + 2)?,
        wrapped_key: row.get(at + 3)?,
        key_version: u32_at(row, at + 4)?,
        restrictions: row.get(at + 5)?,
        hold_until: opt_time_at(row, at + 6)?,
        created_at: time_at(row, at + 7)?,
        record_key_version: u32_at(row, at + 8)?,
    })
}

/// How many columns `subject_columns!` has (record columns follow them in joins).
pub(super) const SUBJECT_WIDTH: usize = 9;

/// Decodes record columns starting at `at`; `None` when the LEFT JOIN found no record.
pub(super) fn record_from(
    row: &Row<'_>,
    at: usize,
    tenant: Uuid,
    subject: Uuid,
) -> Result<Option<RecordRow>> {
    let Some(id) = opt_uuid_at(row, at)? else {
        return Ok(None);
    };
    Ok(Some(RecordRow {
        tenant,
        subject,
        id,
        collection: row.get(at + 1)?,
        ciphertext: row.get(at + 2)?,
        key_version: u32_at(row, at + 3)?,
        revision: row.get(at + 4)?,
        created_at: time_at(row, at + 5)?,
        updated_at: time_at(row, at + 6)?,
        expires_at: opt_time_at(row, at + 7)?,
    }))
}

pub(super) fn request_from(r: &Row<'_>) -> Result<RequestRow> {
    Ok(RequestRow {
        tenant: uuid_at(r, 0)?,
        id: uuid_at(r, 1)?,
        kind: r.get(2)?,
        subject: uuid_at(r, 3)?,
        status: r.get(4)?,
        verified_by: r.get(5)?,
        detail: r.get(6)?,
        created_at: time_at(r, 7)?,
        due_at: time_at(r, 8)?,
        closed_at: opt_time_at(r, 9)?,
    })
}

pub(super) fn hold_from(r: &Row<'_>, at: usize) -> Result<HoldRow> {
    Ok(HoldRow {
        tenant: uuid_at(r, at)?,
        id: uuid_at(r, at + 1)?,
        subject: uuid_at(r, at + 2)?,
        wrapped_key: r.get(at + 3)?,
        key_version: u32_at(r, at + 4)?,
        created_at: time_at(r, at + 5)?,
    })
}

pub(super) fn held_from_at(r: &Row<'_>, at: usize) -> Result<HeldRecordRow> {
    Ok(HeldRecordRow {
        tenant: uuid_at(r, at)?,
        hold: uuid_at(r, at + 1)?,
        id: uuid_at(r, at + 2)?,
        collection: r.get(at + 3)?,
        ciphertext: r.get(at + 4)?,
        key_version: u32_at(r, at + 5)?,
        created_at: time_at(r, at + 6)?,
        hold_until: time_at(r, at + 7)?,
        reason: r.get(at + 8)?,
    })
}

pub(super) fn audit_row_from(row: &Row<'_>) -> Result<AuditRow> {
    Ok(AuditRow {
        idx: row.get::<_, i64>(0)? as u64,
        event: blob_at(row, 1)?.to_vec(),
        chain: hash_at(row, 2)?,
        columns: crate::AuditColumns {
            at: row.get(3)?,
            tenant: opt_uuid_at(row, 4)?,
            subject: opt_uuid_at(row, 5)?,
            actor: row.get(6)?,
            action: row.get(7)?,
            outcome: row.get(8)?,
        },
    })
}

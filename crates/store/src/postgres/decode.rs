//! Rows to model structs: the column lists of the store's row types and one decoder per row
//! type, reading the columns its list names, in that order (a list and its decoder change
//! together), and the column readers they share. A value that does not decode is a corrupt
//! row, never a panic.

use super::*;
pub(super) use crate::sql::{AUDIT_COLUMNS, KEY_COLUMNS, RECORD_COLUMNS, REQUEST_COLUMNS};

pub(super) fn uuid_at(row: &PgRow, i: usize) -> Result<Uuid> {
    let bytes: Vec<u8> = row.try_get(i)?;
    Uuid::from_slice(&bytes).map_err(|_| StoreError::Corrupt("uuid column".into()))
}

pub(super) fn opt_uuid_at(row: &PgRow, i: usize) -> Result<Option<Uuid>> {
    let bytes: Option<Vec<u8>> = row.try_get(i)?;
    bytes
        .map(|b| Uuid::from_slice(&b).map_err(|_| StoreError::Corrupt("uuid column".into())))
        .transpose()
}

pub(super) fn u32_at(row: &PgRow, i: usize) -> Result<u32> {
    let v: i64 = row.try_get(i)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt("key version".into()))
}

pub(super) fn u64_at(row: &PgRow, i: usize) -> Result<u64> {
    let v: i64 = row.try_get(i)?;
    u64::try_from(v).map_err(|_| StoreError::Corrupt("negative index".into()))
}

pub(super) fn hash_at(row: &PgRow, i: usize) -> Result<[u8; 32]> {
    let v: Vec<u8> = row.try_get(i)?;
    v.try_into()
        .map_err(|_| StoreError::Corrupt("hash column".into()))
}

pub(super) fn opt_time_at(row: &PgRow, i: usize) -> Result<Option<time::OffsetDateTime>> {
    Ok(row.try_get::<Option<i64>, _>(i)?.map(from_micros))
}

pub(super) const TENANT_COLUMNS: &str = "t.id, t.name, t.status, t.region, tk.wrapped_key, \
    t.root_key_version, t.key_version, t.settings, t.created_at, t.status_changed_at, \
    t.destroy_after";

/// Tenants with their wrapped key from the key store.
pub(super) const TENANT_FROM: &str = "tenants t LEFT JOIN tenant_keys tk ON tk.tenant = t.id";

pub(super) fn tenant_from(row: &PgRow) -> Result<TenantRow> {
    Ok(TenantRow {
        id: uuid_at(row, 0)?,
        name: row.try_get(1)?,
        status: TenantStatus::decode(row.try_get(2)?)?,
        region: row.try_get(3)?,
        wrapped_key: row.try_get(4)?,
        root_key_version: u32_at(row, 5)?,
        key_version: u32_at(row, 6)?,
        settings: row.try_get(7)?,
        created_at: from_micros(row.try_get(8)?),
        status_changed_at: from_micros(row.try_get(9)?),
        destroy_after: opt_time_at(row, 10)?,
    })
}

pub(super) fn key_from(row: &PgRow) -> Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: uuid_at(row, 0)?,
        tenant: opt_uuid_at(row, 1)?,
        token_hash: hash_at(row, 2)?,
        name: row.try_get(3)?,
        role: row.try_get(4)?,
        purposes: row.try_get(5)?,
        created_at: from_micros(row.try_get(6)?),
        revoked_at: opt_time_at(row, 7)?,
        expires_at: opt_time_at(row, 8)?,
    })
}

/// Subjects with their wrapped key from the key store.
pub(super) const SUBJECT_KEY_JOIN: &str =
    "LEFT JOIN subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id";

pub(super) const SUBJECT_COLUMNS: &str = "s.tenant, s.id, s.external_ref, sk.wrapped_key, s.key_version, \
    s.restrictions, s.hold_until, s.created_at, COALESCE(sk.version, 1)";

/// How many columns [`SUBJECT_COLUMNS`] has (record columns follow them in joins).
pub(super) const SUBJECT_WIDTH: usize = 9;

/// Decodes subject columns starting at `at`.
pub(super) fn subject_from(row: &PgRow, at: usize) -> Result<SubjectRow> {
    Ok(SubjectRow {
        tenant: uuid_at(row, at)?,
        id: uuid_at(row, at + 1)?,
        external_ref: row.try_get(at + 2)?,
        wrapped_key: row.try_get(at + 3)?,
        key_version: u32_at(row, at + 4)?,
        restrictions: row.try_get(at + 5)?,
        hold_until: opt_time_at(row, at + 6)?,
        created_at: from_micros(row.try_get(at + 7)?),
        record_key_version: u32_at(row, at + 8)?,
    })
}

/// Decodes record columns starting at `at`; `None` when the LEFT JOIN found no record.
pub(super) fn record_from(
    row: &PgRow,
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
        collection: row.try_get(at + 1)?,
        ciphertext: row.try_get(at + 2)?,
        key_version: u32_at(row, at + 3)?,
        revision: row.try_get(at + 4)?,
        created_at: from_micros(row.try_get(at + 5)?),
        updated_at: from_micros(row.try_get(at + 6)?),
        expires_at: opt_time_at(row, at + 7)?,
    }))
}

pub(super) fn request_from(row: &PgRow) -> Result<RequestRow> {
    Ok(RequestRow {
        tenant: uuid_at(row, 0)?,
        id: uuid_at(row, 1)?,
        kind: row.try_get(2)?,
        subject: uuid_at(row, 3)?,
        status: row.try_get(4)?,
        verified_by: row.try_get(5)?,
        detail: row.try_get(6)?,
        created_at: from_micros(row.try_get(7)?),
        due_at: from_micros(row.try_get(8)?),
        closed_at: opt_time_at(row, 9)?,
    })
}

pub(super) const HOLD_COLUMNS: &str =
    "h.tenant, h.id, h.subject, hk.wrapped_key, h.key_version, h.created_at";

/// Decodes hold columns starting at `at`.
pub(super) fn hold_from(row: &PgRow, at: usize) -> Result<HoldRow> {
    Ok(HoldRow {
        tenant: uuid_at(row, at)?,
        id: uuid_at(row, at + 1)?,
        subject: uuid_at(row, at + 2)?,
        wrapped_key: row.try_get(at + 3)?,
        key_version: u32_at(row, at + 4)?,
        created_at: from_micros(row.try_get(at + 5)?),
    })
}

pub(super) const HELD_COLUMNS: &str = "r.tenant, r.hold, r.id, r.collection, r.ciphertext, r.key_version, \
    r.created_at, r.hold_until, r.reason";

/// Decodes held-record columns starting at `at`.
pub(super) fn held_from(row: &PgRow, at: usize) -> Result<HeldRecordRow> {
    Ok(HeldRecordRow {
        tenant: uuid_at(row, at)?,
        hold: uuid_at(row, at + 1)?,
        id: uuid_at(row, at + 2)?,
        collection: row.try_get(at + 3)?,
        ciphertext: row.try_get(at + 4)?,
        key_version: u32_at(row, at + 5)?,
        created_at: from_micros(row.try_get(at + 6)?),
        hold_until: from_micros(row.try_get(at + 7)?),
        reason: row.try_get(at + 8)?,
    })
}

pub(super) fn audit_row_from(row: &PgRow) -> Result<AuditRow> {
    Ok(AuditRow {
        idx: u64_at(row, 0)?,
        event: row.try_get(1)?,
        chain: hash_at(row, 2)?,
        columns: AuditColumns {
            at: row.try_get(3)?,
            tenant: opt_uuid_at(row, 4)?,
            subject: opt_uuid_at(row, 5)?,
            actor: row.try_get(6)?,
            action: row.try_get(7)?,
            outcome: row.try_get(8)?,
        },
    })
}

// ---- the trait ------------------------------------------------------------------------------

//! One decoder per model type, shared by both backends, so that SQLite and PostgreSQL cannot
//! drift apart in how they read a row: a column added to a row type is read in one place, at
//! the index the shared column list in `sql` (or a backend's list in the same order) puts it.
//! The backends differ only in how one cell is fetched, which [`Cells`] hides. A value that
//! does not decode is a corrupt row, never a panic.

use uuid::Uuid;

use crate::{
    AlertRow, ApiKeyRow, AuditColumns, AuditRow, CheckpointRow, DeliveryRow, HeldRecordRow,
    HoldRow, IncidentNoteRow, IncidentRow, IncidentTenantRow, InvitationRow, KeyJobRow, LedgerRow,
    MembershipRow, RecordRow, RequestRow, Result, RetiredKeyRow, SessionRow, StoreError,
    SubjectRow, SupportGrantRow, TenantRow, TenantStatus, UserRow, WebhookRow, from_micros,
};

/// A value both backends can read from a cell with their own native decoding, so that a
/// shared decoder keeps each backend's own answer to a NULL or a mistyped cell.
pub(crate) trait Cell:
    rusqlite::types::FromSql + for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>
{
}

impl<T> Cell for T where
    T: rusqlite::types::FromSql
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
{
}

/// A result row of either backend, as the shared decoders see it.
pub(crate) trait Cells {
    /// The cell at `i` as the backend's driver decodes a `T`.
    fn cell<T: Cell>(&self, i: usize) -> Result<T>;

    /// A binary cell, borrowed. SQLite calls any other stored type (NULL included) corrupt,
    /// naming `what`, because its columns are not typed; PostgreSQL's are, so it leaves a
    /// mismatch to its driver.
    fn bytes(&self, i: usize, what: &'static str) -> Result<&[u8]>;

    /// A binary cell or NULL, borrowed; any other stored type as for [`Cells::bytes`].
    fn opt_bytes(&self, i: usize, what: &'static str) -> Result<Option<&[u8]>>;
}

impl Cells for rusqlite::Row<'_> {
    fn cell<T: Cell>(&self, i: usize) -> Result<T> {
        Ok(self.get(i)?)
    }

    fn bytes(&self, i: usize, what: &'static str) -> Result<&[u8]> {
        self.opt_bytes(i, what)?
            .ok_or_else(|| StoreError::Corrupt(what.into()))
    }

    fn opt_bytes(&self, i: usize, what: &'static str) -> Result<Option<&[u8]>> {
        use rusqlite::types::ValueRef;
        match self.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(b) => Ok(Some(b)),
            _ => Err(StoreError::Corrupt(what.into())),
        }
    }
}

impl Cells for sqlx::postgres::PgRow {
    fn cell<T: Cell>(&self, i: usize) -> Result<T> {
        Ok(sqlx::Row::try_get(self, i)?)
    }

    fn bytes(&self, i: usize, _what: &'static str) -> Result<&[u8]> {
        Ok(sqlx::Row::try_get(self, i)?)
    }

    fn opt_bytes(&self, i: usize, _what: &'static str) -> Result<Option<&[u8]>> {
        Ok(sqlx::Row::try_get(self, i)?)
    }
}

// ---- column readers -------------------------------------------------------------------------

fn uuid_from(bytes: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|_| StoreError::Corrupt("uuid column".into()))
}

fn hash_from(bytes: &[u8]) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("hash column".into()))
}

pub(crate) fn uuid_at<R: Cells + ?Sized>(row: &R, i: usize) -> Result<Uuid> {
    uuid_from(row.bytes(i, "uuid column")?)
}

pub(crate) fn opt_uuid_at<R: Cells + ?Sized>(row: &R, i: usize) -> Result<Option<Uuid>> {
    row.opt_bytes(i, "uuid column")?.map(uuid_from).transpose()
}

pub(crate) fn u32_at<R: Cells + ?Sized>(row: &R, i: usize) -> Result<u32> {
    u32::try_from(row.cell::<i64>(i)?).map_err(|_| StoreError::Corrupt("key version".into()))
}

pub(crate) fn u64_at<R: Cells + ?Sized>(row: &R, i: usize) -> Result<u64> {
    u64::try_from(row.cell::<i64>(i)?).map_err(|_| StoreError::Corrupt("negative index".into()))
}

/// A binary cell, borrowed.
pub(crate) fn blob_at<R: Cells + ?Sized>(row: &R, i: usize) -> Result<&[u8]> {
    row.bytes(i, "blob column")
}

pub(crate) fn hash_at<R: Cells + ?Sized>(row: &R, i: usize) -> Result<[u8; 32]> {
    hash_from(blob_at(row, i)?)
}

pub(crate) fn opt_hash_at<R: Cells + ?Sized>(row: &R, i: usize) -> Result<Option<[u8; 32]>> {
    row.opt_bytes(i, "blob column")?.map(hash_from).transpose()
}

pub(crate) fn time_at<R: Cells + ?Sized>(row: &R, i: usize) -> Result<time::OffsetDateTime> {
    Ok(from_micros(row.cell(i)?))
}

pub(crate) fn opt_time_at<R: Cells + ?Sized>(
    row: &R,
    i: usize,
) -> Result<Option<time::OffsetDateTime>> {
    Ok(row.cell::<Option<i64>>(i)?.map(from_micros))
}

// ---- one decoder per row type ---------------------------------------------------------------

pub(crate) fn tenant_from<R: Cells + ?Sized>(row: &R) -> Result<TenantRow> {
    Ok(TenantRow {
        id: uuid_at(row, 0)?,
        name: row.cell(1)?,
        status: TenantStatus::decode(&row.cell::<String>(2)?)?,
        region: row.cell(3)?,
        wrapped_key: row.cell(4)?,
        root_key_version: u32_at(row, 5)?,
        key_version: u32_at(row, 6)?,
        settings: row.cell(7)?,
        created_at: time_at(row, 8)?,
        status_changed_at: time_at(row, 9)?,
        destroy_after: opt_time_at(row, 10)?,
    })
}

pub(crate) fn key_from<R: Cells + ?Sized>(row: &R) -> Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: uuid_at(row, 0)?,
        tenant: opt_uuid_at(row, 1)?,
        token_hash: hash_at(row, 2)?,
        name: row.cell(3)?,
        role: row.cell(4)?,
        purposes: row.cell(5)?,
        created_at: time_at(row, 6)?,
        revoked_at: opt_time_at(row, 7)?,
        expires_at: opt_time_at(row, 8)?,
    })
}

/// How many columns a subject has (record columns follow them in joins).
pub(crate) const SUBJECT_WIDTH: usize = 9;

/// Decodes subject columns starting at `at`, so that joins can put them after other columns.
pub(crate) fn subject_from<R: Cells + ?Sized>(row: &R, at: usize) -> Result<SubjectRow> {
    Ok(SubjectRow {
        tenant: uuid_at(row, at)?,
        id: uuid_at(row, at + 1)?,
        external_ref: row.cell(at + 2)?,
        wrapped_key: row.cell(at + 3)?,
        key_version: u32_at(row, at + 4)?,
        restrictions: row.cell(at + 5)?,
        hold_until: opt_time_at(row, at + 6)?,
        created_at: time_at(row, at + 7)?,
        record_key_version: u32_at(row, at + 8)?,
    })
}

/// Decodes record columns starting at `at`; `None` when the LEFT JOIN found no record.
pub(crate) fn record_from<R: Cells + ?Sized>(
    row: &R,
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
        collection: row.cell(at + 1)?,
        ciphertext: row.cell(at + 2)?,
        key_version: u32_at(row, at + 3)?,
        revision: row.cell(at + 4)?,
        created_at: time_at(row, at + 5)?,
        updated_at: time_at(row, at + 6)?,
        expires_at: opt_time_at(row, at + 7)?,
    }))
}

pub(crate) fn request_from<R: Cells + ?Sized>(row: &R) -> Result<RequestRow> {
    Ok(RequestRow {
        tenant: uuid_at(row, 0)?,
        id: uuid_at(row, 1)?,
        kind: row.cell(2)?,
        subject: uuid_at(row, 3)?,
        status: row.cell(4)?,
        verified_by: row.cell(5)?,
        detail: row.cell(6)?,
        created_at: time_at(row, 7)?,
        due_at: time_at(row, 8)?,
        closed_at: opt_time_at(row, 9)?,
    })
}

/// Decodes hold columns starting at `at`, so that joins can put held records after them.
pub(crate) fn hold_from<R: Cells + ?Sized>(row: &R, at: usize) -> Result<HoldRow> {
    Ok(HoldRow {
        tenant: uuid_at(row, at)?,
        id: uuid_at(row, at + 1)?,
        subject: uuid_at(row, at + 2)?,
        wrapped_key: row.cell(at + 3)?,
        key_version: u32_at(row, at + 4)?,
        created_at: time_at(row, at + 5)?,
    })
}

/// Decodes held-record columns starting at `at`, so that joins can put them after a hold.
pub(crate) fn held_from<R: Cells + ?Sized>(row: &R, at: usize) -> Result<HeldRecordRow> {
    Ok(HeldRecordRow {
        tenant: uuid_at(row, at)?,
        hold: uuid_at(row, at + 1)?,
        id: uuid_at(row, at + 2)?,
        collection: row.cell(at + 3)?,
        ciphertext: row.cell(at + 4)?,
        key_version: u32_at(row, at + 5)?,
        created_at: time_at(row, at + 6)?,
        hold_until: time_at(row, at + 7)?,
        reason: row.cell(at + 8)?,
    })
}

pub(crate) fn audit_row_from<R: Cells + ?Sized>(row: &R) -> Result<AuditRow> {
    Ok(AuditRow {
        idx: u64_at(row, 0)?,
        event: crate::audit_codec::unpack(blob_at(row, 1)?).into_owned(),
        chain: hash_at(row, 2)?,
        columns: AuditColumns {
            at: row.cell(3)?,
            tenant: opt_uuid_at(row, 4)?,
            subject: opt_uuid_at(row, 5)?,
            actor: row.cell(6)?,
            action: row.cell(7)?,
            outcome: row.cell(8)?,
        },
    })
}

pub(crate) fn membership_from<R: Cells + ?Sized>(row: &R) -> Result<MembershipRow> {
    Ok(MembershipRow {
        user: uuid_at(row, 0)?,
        tenant: uuid_at(row, 1)?,
        role: row.cell(2)?,
        purposes: row.cell(3)?,
        expires_at: opt_time_at(row, 4)?,
        created_at: time_at(row, 5)?,
    })
}

pub(crate) fn user_from<R: Cells + ?Sized>(row: &R) -> Result<UserRow> {
    Ok(UserRow {
        id: uuid_at(row, 0)?,
        email_hash: hash_at(row, 1)?,
        email_sealed: row.cell(2)?,
        role: row.cell(3)?,
        tenant: opt_uuid_at(row, 4)?,
        password_hash: row.cell(5)?,
        totp_sealed: row.cell(6)?,
        totp_last_step: row.cell(7)?,
        key_version: u32_at(row, 8)?,
        reset_hash: opt_hash_at(row, 9)?,
        reset_expires_at: opt_time_at(row, 10)?,
        created_at: time_at(row, 11)?,
        password_changed_at: time_at(row, 12)?,
        disabled_at: opt_time_at(row, 13)?,
    })
}

pub(crate) fn session_from<R: Cells + ?Sized>(row: &R) -> Result<SessionRow> {
    Ok(SessionRow {
        id: uuid_at(row, 0)?,
        token_hash: hash_at(row, 1)?,
        user: uuid_at(row, 2)?,
        csrf_hash: hash_at(row, 3)?,
        created_at: time_at(row, 4)?,
        last_seen_at: time_at(row, 5)?,
        expires_at: time_at(row, 6)?,
        revoked_at: opt_time_at(row, 7)?,
    })
}

pub(crate) fn grant_from<R: Cells + ?Sized>(row: &R) -> Result<SupportGrantRow> {
    Ok(SupportGrantRow {
        id: uuid_at(row, 0)?,
        tenant: uuid_at(row, 1)?,
        requester: uuid_at(row, 2)?,
        ticket: row.cell(3)?,
        justification: row.cell(4)?,
        collections: row.cell(5)?,
        actions: row.cell(6)?,
        // Each backend's native boolean: an INTEGER in SQLite, a BOOLEAN in PostgreSQL.
        break_glass: row.cell(7)?,
        status: row.cell(8)?,
        duration_secs: row.cell(9)?,
        requested_at: time_at(row, 10)?,
        decided_at: opt_time_at(row, 11)?,
        decided_by: row.cell(12)?,
        expires_at: opt_time_at(row, 13)?,
    })
}

pub(crate) fn webhook_from<R: Cells + ?Sized>(row: &R) -> Result<WebhookRow> {
    Ok(WebhookRow {
        id: uuid_at(row, 0)?,
        tenant: opt_uuid_at(row, 1)?,
        url: row.cell(2)?,
        secret: row.cell(3)?,
        created_at: time_at(row, 4)?,
        created_by: row.cell(5)?,
        deleted_at: opt_time_at(row, 6)?,
    })
}

pub(crate) fn delivery_from<R: Cells + ?Sized>(row: &R) -> Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: uuid_at(row, 0)?,
        webhook: uuid_at(row, 1)?,
        tenant: opt_uuid_at(row, 2)?,
        event: row.cell(3)?,
        alert: opt_uuid_at(row, 4)?,
        payload: row.cell(5)?,
        status: row.cell(6)?,
        attempts: row.cell(7)?,
        created_at: time_at(row, 8)?,
        next_attempt_at: time_at(row, 9)?,
        last_attempt_at: opt_time_at(row, 10)?,
        last_result: row.cell(11)?,
        delivered_at: opt_time_at(row, 12)?,
        lease_owner: row.cell(13)?,
        lease_until: opt_time_at(row, 14)?,
    })
}

pub(crate) fn alert_from<R: Cells + ?Sized>(row: &R) -> Result<AlertRow> {
    Ok(AlertRow {
        id: uuid_at(row, 0)?,
        rule: row.cell(1)?,
        scope: row.cell(2)?,
        severity: row.cell(3)?,
        tenant: opt_uuid_at(row, 4)?,
        status: row.cell(5)?,
        first_seen: time_at(row, 6)?,
        last_seen: time_at(row, 7)?,
        count: row.cell(8)?,
        events: row.cell(9)?,
        acknowledged_by: row.cell(10)?,
        acknowledged_at: opt_time_at(row, 11)?,
        resolved_by: row.cell(12)?,
        resolved_at: opt_time_at(row, 13)?,
    })
}

pub(crate) fn incident_from<R: Cells + ?Sized>(row: &R) -> Result<IncidentRow> {
    Ok(IncidentRow {
        id: uuid_at(row, 0)?,
        tenant: opt_uuid_at(row, 1)?,
        opened_by: row.cell(2)?,
        title: row.cell(3)?,
        status: row.cell(4)?,
        opened_at: time_at(row, 5)?,
        closed_at: opt_time_at(row, 6)?,
        due_alerted: row.cell::<i64>(7)? != 0,
        overdue_alerted: row.cell::<i64>(8)? != 0,
    })
}

pub(crate) fn incident_tenant_from<R: Cells + ?Sized>(row: &R) -> Result<IncidentTenantRow> {
    Ok(IncidentTenantRow {
        tenant: uuid_at(row, 0)?,
        notified_at: opt_time_at(row, 1)?,
        notified_by: row.cell(2)?,
    })
}

pub(crate) fn incident_note_from<R: Cells + ?Sized>(row: &R) -> Result<IncidentNoteRow> {
    Ok(IncidentNoteRow {
        incident: uuid_at(row, 0)?,
        seq: row.cell(1)?,
        at: time_at(row, 2)?,
        author: row.cell(3)?,
        kind: row.cell(4)?,
        text: row.cell(5)?,
    })
}

pub(crate) fn invitation_from<R: Cells + ?Sized>(row: &R) -> Result<InvitationRow> {
    Ok(InvitationRow {
        id: uuid_at(row, 0)?,
        tenant: uuid_at(row, 1)?,
        token_hash: hash_at(row, 2)?,
        created_at: time_at(row, 3)?,
        expires_at: time_at(row, 4)?,
        used_at: opt_time_at(row, 5)?,
        role: row.cell(6)?,
        purposes: row.cell(7)?,
        membership_expires_at: opt_time_at(row, 8)?,
    })
}

pub(crate) fn ledger_from<R: Cells + ?Sized>(row: &R) -> Result<LedgerRow> {
    Ok(LedgerRow {
        id: uuid_at(row, 0)?,
        tenant: uuid_at(row, 1)?,
        subject: uuid_at(row, 2)?,
        requested_by: row.cell(3)?,
        erased_at: time_at(row, 4)?,
        detail: row.cell(5)?,
    })
}

pub(crate) fn checkpoint_from<R: Cells + ?Sized>(row: &R) -> Result<CheckpointRow> {
    Ok(CheckpointRow {
        tree_size: u64_at(row, 0)?,
        checkpoint: row.cell(1)?,
        frontier: row.cell(2)?,
        created_at: time_at(row, 3)?,
    })
}

pub(crate) fn retired_key_from<R: Cells + ?Sized>(row: &R) -> Result<RetiredKeyRow> {
    Ok(RetiredKeyRow {
        version: u32_at(row, 0)?,
        wrapped_key: row.cell(1)?,
        key_version: u32_at(row, 2)?,
    })
}

pub(crate) fn key_job_from<R: Cells + ?Sized>(row: &R) -> Result<KeyJobRow> {
    Ok(KeyJobRow {
        id: uuid_at(row, 0)?,
        tenant: uuid_at(row, 1)?,
        status: row.cell(2)?,
        cursor: opt_uuid_at(row, 3)?,
        // Both backends have always cast these counters, negative or not.
        subjects_done: row.cell::<i64>(4)? as u64,
        records_done: row.cell::<i64>(5)? as u64,
        records_total: row.cell::<i64>(6)? as u64,
        started_at: time_at(row, 7)?,
        updated_at: time_at(row, 8)?,
        finished_at: opt_time_at(row, 9)?,
        lease_owner: row.cell(10)?,
        lease_until: opt_time_at(row, 11)?,
        error: row.cell(12)?,
    })
}

//! Data-subject rights: requests, legal holds and the records they keep, and the records
//! retention has expired.

use super::*;

/// A legal hold created by an erasure.
#[derive(Debug, Clone)]
pub struct HoldRow {
    /// Tenant id.
    pub tenant: Uuid,
    /// Hold id.
    pub id: Uuid,
    /// The erased subject the held records came from.
    pub subject: Uuid,
    /// Hold key sealed under the tenant key; `None` once shredded.
    pub wrapped_key: Option<Vec<u8>>,
    /// Tenant key version that wraps it.
    pub key_version: u32,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// A record kept under a legal hold after its subject was erased.
#[derive(Debug, Clone)]
pub struct HeldRecordRow {
    /// Tenant id.
    pub tenant: Uuid,
    /// Hold id (its key seals the record).
    pub hold: Uuid,
    /// Record id.
    pub id: Uuid,
    /// Collection.
    pub collection: String,
    /// Sealed fields.
    pub ciphertext: Vec<u8>,
    /// Key version.
    pub key_version: u32,
    /// Original creation time.
    pub created_at: OffsetDateTime,
    /// When the hold ends and the record is deleted.
    pub hold_until: OffsetDateTime,
    /// Why it is kept.
    pub reason: String,
}

/// A data-subject request.
#[derive(Debug, Clone)]
pub struct RequestRow {
    /// Tenant id.
    pub tenant: Uuid,
    /// Request id.
    pub id: Uuid,
    /// access, erasure, rectification, restriction, portability.
    pub kind: String,
    /// Subject id.
    pub subject: Uuid,
    /// open, completed, rejected.
    pub status: String,
    /// Who verified the requester's identity (a staff name or process, not the subject's data).
    pub verified_by: String,
    /// JSON: purposes for restrictions, outcome summary, rejection reason.
    pub detail: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Legal deadline.
    pub due_at: OffsetDateTime,
    /// Closing time.
    pub closed_at: Option<OffsetDateTime>,
}

/// A record due for retention, with what the sweep needs to decide and decrypt.
#[derive(Debug, Clone)]
pub struct ExpiredRecord {
    /// The subject (wrapped key, litigation hold).
    pub subject: SubjectRow,
    /// The record.
    pub record: RecordRow,
}

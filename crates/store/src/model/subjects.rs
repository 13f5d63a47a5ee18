//! Data subjects and their records. A record's content is ciphertext under its subject's key;
//! its blind index entries are keyed hashes, so the store can find a record by a field value
//! without holding the value.

use super::*;

/// A data subject.
#[derive(Debug, Clone)]
pub struct SubjectRow {
    /// Tenant id.
    pub tenant: Uuid,
    /// Pseudonymous subject id.
    pub id: Uuid,
    /// Keyed hash of the tenant's external reference.
    pub external_ref: Option<Vec<u8>>,
    /// Subject key sealed under the tenant key; `None` once erased.
    pub wrapped_key: Option<Vec<u8>>,
    /// Tenant key version that wraps `wrapped_key`.
    pub key_version: u32,
    /// Version of the subject key itself: new records are sealed under it, and a record
    /// rotation replaces it with the next one.
    pub record_key_version: u32,
    /// JSON array of restricted purposes (objections).
    pub restrictions: String,
    /// Litigation hold set by the tenant.
    pub hold_until: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// One sealed record.
#[derive(Debug, Clone)]
pub struct RecordRow {
    /// Tenant id.
    pub tenant: Uuid,
    /// Subject id.
    pub subject: Uuid,
    /// Record id.
    pub id: Uuid,
    /// Collection name.
    pub collection: String,
    /// AES-256-GCM sealed JSON of the fields, bound to this place by its AAD.
    pub ciphertext: Vec<u8>,
    /// Version of the key that sealed it.
    pub key_version: u32,
    /// Optimistic-concurrency counter, bumped on every update.
    pub revision: i64,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last update.
    pub updated_at: OffsetDateTime,
    /// When retention expires it; reads refuse it from then on.
    pub expires_at: Option<OffsetDateTime>,
}

/// A blind-index entry for one searchable field value.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    /// Field name.
    pub field: String,
    /// HMAC of the normalized value under the tenant's index key.
    pub hash: [u8; 32],
}

/// Which records a [`Store::subject_view`] brings along.
#[derive(Debug, Clone, Copy)]
pub enum RecordFilter<'a> {
    /// None: only the subject.
    None,
    /// One record.
    One(Uuid),
    /// All records, optionally of one collection.
    All(Option<&'a str>),
}

/// A subject, its tenant's state and the records asked for.
#[derive(Debug, Clone)]
pub struct SubjectView {
    /// Tenant status at read time.
    pub tenant_status: TenantStatus,
    /// The subject.
    pub subject: SubjectRow,
    /// The records matched by the filter.
    pub records: Vec<RecordRow>,
}

/// An erasure-ledger entry: proof that a subject was erased, without personal data.
#[derive(Debug, Clone)]
pub struct LedgerRow {
    /// Entry id.
    pub id: Uuid,
    /// Tenant id.
    pub tenant: Uuid,
    /// Pseudonymous subject id.
    pub subject: Uuid,
    /// Actor id of the requester.
    pub requested_by: String,
    /// Erasure time.
    pub erased_at: OffsetDateTime,
    /// JSON: counts, held collections and hold ends.
    pub detail: String,
}

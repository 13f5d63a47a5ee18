//! The operations that change the store. A commit applies a request's ops together: all of
//! them take effect, with their audit events, or none does.

use super::*;

/// One change. A commit applies a list of these atomically.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Op {
    /// Create a tenant.
    InsertTenant(TenantRow),
    /// Change a tenant's status.
    SetTenantStatus {
        /// Tenant id.
        id: Uuid,
        /// New status.
        status: TenantStatus,
        /// When.
        at: OffsetDateTime,
        /// Destruction deadline for a deactivated tenant.
        destroy_after: Option<OffsetDateTime>,
    },
    /// Issue an API key.
    InsertApiKey(ApiKeyRow),
    /// Revoke an API key of a tenant.
    RevokeApiKey {
        /// Owning tenant.
        tenant: Option<Uuid>,
        /// Key id.
        id: Uuid,
        /// When.
        at: OffsetDateTime,
    },
    /// Create a subject; conflicts when the external reference is taken.
    InsertSubject(SubjectRow),
    /// Replace a subject's restrictions.
    SetRestrictions {
        /// Tenant id.
        tenant: Uuid,
        /// Subject id.
        subject: Uuid,
        /// JSON array of purposes.
        restrictions: String,
    },
    /// Store a new record and its blind-index entries.
    InsertRecord {
        /// The record.
        record: RecordRow,
        /// Its searchable values.
        index: Vec<IndexEntry>,
    },
    /// Replace a record's ciphertext if nobody changed it since `expected_revision`.
    UpdateRecord {
        /// The new state (revision already bumped).
        record: RecordRow,
        /// The revision the caller read.
        expected_revision: i64,
        /// The new blind-index entries (old ones are replaced).
        index: Vec<IndexEntry>,
    },
    /// Delete many records (retention) and their blind-index entries, set-based. Records
    /// already gone are skipped, not an error: a sweep may race an API delete.
    DeleteRecords {
        /// (tenant, subject, record) triples.
        records: Vec<(Uuid, Uuid, Uuid)>,
    },
    /// Delete a record and its blind-index entries.
    DeleteRecord {
        /// Tenant id.
        tenant: Uuid,
        /// Subject id.
        subject: Uuid,
        /// Record id.
        id: Uuid,
    },
    /// Move a record out of its subject's key scope: delete it (and its index entries) and
    /// store the anonymized version, sealed under a tenant-derived key.
    AnonymizeRecord {
        /// The anonymized record (ciphertext already re-sealed).
        record: RecordRow,
        /// When.
        at: OffsetDateTime,
    },
    /// Set one key of a tenant's settings JSON, applied to the row as it is in the
    /// transaction (see `settings_patch`): concurrent changes of different keys all land.
    PatchTenantSettings {
        /// Tenant id.
        id: Uuid,
        /// Object keys from the top, e.g. `["retention", "contact"]`; at least one.
        path: Vec<String>,
        /// The new value.
        value: serde_json::Value,
        /// The value the key must still have (`Value::Null`: absent), else
        /// `Conflict::Stale`; `None` sets it whatever it is.
        expect: Option<serde_json::Value>,
    },
    /// Move the expiry of a tenant's records of one collection earlier (retention shortened).
    ShiftExpiry {
        /// Tenant id.
        tenant: Uuid,
        /// Collection.
        collection: String,
        /// Microseconds to subtract from `expires_at`.
        by_micros: i64,
    },
    /// Set or clear a subject's litigation hold.
    SetSubjectHold {
        /// Tenant id.
        tenant: Uuid,
        /// Subject id.
        subject: Uuid,
        /// Hold end, or `None` to lift.
        hold_until: Option<OffsetDateTime>,
    },
    /// Crypto-shred a subject: destroy its wrapped key and external reference, delete its
    /// records and index entries. The subject row stays as a tombstone (no personal data).
    EraseSubject {
        /// Tenant id.
        tenant: Uuid,
        /// Subject id.
        subject: Uuid,
    },
    /// Record an erasure in the ledger.
    InsertLedger(LedgerRow),
    /// Create a legal hold with its own key.
    InsertHold(HoldRow),
    /// Keep a record under a hold.
    InsertHeldRecord(HeldRecordRow),
    /// Delete a held record whose hold ended.
    DeleteHeldRecord {
        /// Tenant id.
        tenant: Uuid,
        /// Record id.
        id: Uuid,
    },
    /// Destroy a hold's key once nothing is held under it.
    ShredHold {
        /// Tenant id.
        tenant: Uuid,
        /// Hold id.
        id: Uuid,
    },
    /// Open a data-subject request.
    InsertRequest(RequestRow),
    /// Change a request's status.
    UpdateRequest {
        /// Tenant id.
        tenant: Uuid,
        /// Request id.
        id: Uuid,
        /// New status.
        status: String,
        /// New detail JSON.
        detail: String,
        /// Closing time.
        closed_at: Option<OffsetDateTime>,
    },
    /// Replace a request's free text, as read (`old_verified_by`, `old_detail`), with its
    /// sealed form. Compare-and-set: a request changed since it was read is left alone (it
    /// affects no row and is not an error), so sealing old rows never undoes a newer write.
    SealRequestText {
        /// Tenant id.
        tenant: Uuid,
        /// Request id.
        id: Uuid,
        /// `verified_by` as read.
        old_verified_by: String,
        /// `detail` as read.
        old_detail: String,
        /// Sealed `verified_by`.
        verified_by: String,
        /// Sealed `detail`.
        detail: String,
    },
    /// Destroy a tenant: shred its key, delete every subject, record, index entry, hold and
    /// anonymized record, revoke its keys. Audit events and the ledger stay.
    DestroyTenant {
        /// Tenant id.
        id: Uuid,
        /// When.
        at: OffsetDateTime,
    },
    /// Delete audit events with index below `before` (a checkpoint at `before` must be saved in
    /// the same commit so the rest stays verifiable).
    PruneAudit {
        /// First index kept.
        before: u64,
    },
    /// Replace a tenant's sealed key material (root or tenant key rotation).
    RewrapTenant {
        /// Tenant id.
        id: Uuid,
        /// Material sealed under the root key.
        wrapped_key: Vec<u8>,
        /// Root key version that seals it.
        root_key_version: u32,
        /// Version of the tenant key-encryption key inside.
        key_version: u32,
        /// The key version the caller read: a concurrent rotation makes this a conflict.
        expected_key_version: u32,
    },
    /// Rewraps every key of the tenant that is not yet under tenant key `key_version`
    /// (subject keys, retired subject keys and hold keys), inside the commit that rotates the
    /// tenant key. Follows [`Op::RewrapTenant`], whose row lock keeps new keys out meanwhile,
    /// so a key created while the rotation was being prepared cannot be stranded under the
    /// old version.
    RewrapTenantKeys {
        /// Tenant id.
        tenant: Uuid,
        /// The tenant key version everything ends under.
        key_version: u32,
        /// Unwraps under the old tenant key and wraps under the new one.
        rewrap: Rewrapper,
    },
    /// Record rotation, step 1: give subjects new keys (the current ones are kept as retired
    /// versions). Touches the key store only. Fails with [`crate::Conflict::SubjectKeyRotated`] when a
    /// subject's current version is not the expected one, and with [`crate::Conflict::KeyRotated`]
    /// when the tenant key is no longer `tenant_key_version`.
    RotateSubjectKeys {
        /// Tenant id.
        tenant: Uuid,
        /// The tenant key version that wraps the new keys.
        tenant_key_version: u32,
        /// The subjects and their new keys.
        keys: Vec<SubjectKeyChange>,
    },
    /// Record rotation, step 2: replace ciphertexts. Touches records only; a record whose
    /// revision moved on is skipped.
    ReencryptRecords {
        /// Tenant id.
        tenant: Uuid,
        /// The re-sealed records.
        records: Vec<Reencrypted>,
    },
    /// Record rotation, step 3: destroy the retired keys of these subjects that no record
    /// is sealed under any more. Keys still in use are kept (and not an error).
    DestroyRetiredKeys {
        /// Tenant id.
        tenant: Uuid,
        /// Subject ids.
        subjects: Vec<Uuid>,
    },
    /// Start a key job.
    InsertKeyJob(KeyJobRow),
    /// Record a key job's progress and renew its lease. Fails with a conflict when another
    /// owner holds an unexpired lease.
    AdvanceKeyJob {
        /// Job id.
        id: Uuid,
        /// Who runs it.
        owner: String,
        /// New cursor (unchanged when `None`).
        cursor: Option<Uuid>,
        /// Subjects done in this step.
        subjects: u64,
        /// Records done in this step.
        records: u64,
        /// Now.
        at: OffsetDateTime,
        /// Lease expiry.
        lease_until: OffsetDateTime,
    },
    /// End a key job (`done` or `failed`).
    FinishKeyJob {
        /// Job id.
        id: Uuid,
        /// Final status.
        status: String,
        /// When.
        at: OffsetDateTime,
        /// Why it failed.
        error: Option<String>,
    },
    /// Append an event to the audit log.
    Audit(Box<AuditEvent>),
    /// Store a signed checkpoint and the frontier it was made from.
    SaveCheckpoint(CheckpointRow),
    /// Store an invitation. A first-owner invitation (no `role`) deletes the tenant's earlier
    /// unclaimed first-owner invitations: a tenant has at most one that can still be claimed.
    /// Invitations of people do not replace each other.
    InsertInvitation(InvitationRow),
    /// Mark an invitation claimed. `NotFound("invitation")` when it is gone, already claimed,
    /// of another tenant or expired at `at`, so that of two concurrent claims one fails.
    ClaimInvitation {
        /// The tenant the invitation must belong to.
        tenant: Uuid,
        /// Invitation id.
        id: Uuid,
        /// Claim time.
        at: OffsetDateTime,
    },
    /// Fail with [`crate::Conflict::LastOwner`] unless the tenant keeps a live owner key or an owner
    /// membership without end. Follows the
    /// revocation it guards in the same commit; it serializes with other revocations of the
    /// tenant, so two owners revoking each other cannot both succeed.
    AssertOwnerRemains {
        /// Tenant id.
        tenant: Uuid,
    },
    /// A change to users, sessions or support grants.
    People(crate::PeopleOp),
    /// A change to alerts.
    Alert(crate::AlertOp),
    /// A change to webhooks or their outbox.
    Webhook(crate::WebhookOp),
    /// A change to incidents.
    Incident(crate::IncidentOp),
}

/// What a commit produced.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// Log indices assigned to the commit's audit events, in order.
    pub audit_indices: Vec<u64>,
    /// What an [`Op::RewrapTenantKeys`] in the commit rewrapped.
    pub keys_rewrapped: KeysRewrapped,
}

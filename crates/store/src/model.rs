//! Rows as the store keeps them and the operations that change them.
//!
//! These types carry ciphertext and keyed hashes only. Times are `OffsetDateTime` here and
//! microseconds on disk.

use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::AuditEvent;

/// Where a tenant is in its lifecycle. Stored as its name (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenantStatus {
    /// In use.
    Active,
    /// Cancelled: frozen for its grace period, then destroyed; may be reactivated until then.
    Deactivated,
    /// Its key shredded: nothing of its data can be read any more.
    Destroyed,
}

impl TenantStatus {
    /// Every status.
    pub const ALL: [Self; 3] = [Self::Active, Self::Deactivated, Self::Destroyed];

    /// The stored and shown name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
            Self::Destroyed => "destroyed",
        }
    }

    /// The status named `s`, if any.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Decodes a stored name; anything else is a corrupt row.
    pub(crate) fn decode(s: &str) -> crate::Result<Self> {
        Self::parse(s).ok_or_else(|| crate::StoreError::Corrupt(format!("tenant status {s:?}")))
    }
}

impl std::fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant (an organization, the data controller).
#[derive(Debug, Clone)]
pub struct TenantRow {
    /// Tenant id.
    pub id: Uuid,
    /// Display name (an organization name, not personal data).
    pub name: String,
    /// Where it is in its lifecycle.
    pub status: TenantStatus,
    /// Hosting region label.
    pub region: Option<String>,
    /// Tenant key sealed under the root key; `None` once destroyed (crypto-shredded).
    pub wrapped_key: Option<Vec<u8>>,
    /// Root key version that wraps `wrapped_key`.
    pub root_key_version: u32,
    /// Version of the tenant key itself.
    pub key_version: u32,
    /// Per-tenant settings as JSON (retention overrides).
    pub settings: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last status change.
    pub status_changed_at: OffsetDateTime,
    /// When a deactivated tenant is to be destroyed.
    pub destroy_after: Option<OffsetDateTime>,
}

/// An API key; the token itself is never stored, only its SHA-256.
#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    /// Key id (shown in audit events).
    pub id: Uuid,
    /// Owning tenant; `None` for platform operator keys.
    pub tenant: Option<Uuid>,
    /// SHA-256 of the bearer token.
    pub token_hash: [u8; 32],
    /// Label chosen by whoever created it.
    pub name: String,
    /// `operator`, `owner`, `admin`, `member` or `auditor`.
    pub role: String,
    /// JSON array of purposes a member key may state.
    pub purposes: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Revocation time, if revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// When the key stops authenticating on its own; `None`: not until revoked.
    pub expires_at: Option<OffsetDateTime>,
}

/// An invitation: to become a tenant's first owner (an API key), or, with a `role`, for a
/// person to join the tenant as a user. The token is never stored, only its SHA-256, so a
/// copy of the database cannot be used to claim it.
#[derive(Debug, Clone)]
pub struct InvitationRow {
    /// Invitation id (appears in audit events).
    pub id: Uuid,
    /// The tenant whose owner key the invitation yields.
    pub tenant: Uuid,
    /// SHA-256 of the invitation token.
    pub token_hash: [u8; 32],
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// After this time the invitation cannot be claimed.
    pub expires_at: OffsetDateTime,
    /// When it was claimed; an invitation is claimed once.
    pub used_at: Option<OffsetDateTime>,
    /// The role of the membership it gives a person; `None` for a first-owner invitation.
    pub role: Option<String>,
    /// JSON array of the purposes a member may state (`None` without a role).
    pub purposes: Option<String>,
    /// When the membership it gives ends; `None` for a membership without end.
    pub membership_expires_at: Option<OffsetDateTime>,
}

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

/// An older version of a subject key, kept while a record rotation still has records sealed
/// under it and destroyed as soon as none are left.
#[derive(Debug, Clone)]
pub struct RetiredKeyRow {
    /// Subject key version.
    pub version: u32,
    /// The key, sealed under the tenant key.
    pub wrapped_key: Vec<u8>,
    /// Tenant key version that wraps it.
    pub key_version: u32,
}

/// A subject key replaced by a record rotation.
#[derive(Debug, Clone)]
pub struct SubjectKeyChange {
    /// Subject id.
    pub subject: Uuid,
    /// The version the caller read as current; anything else makes the commit a conflict.
    pub expected_version: u32,
    /// The new key, sealed under the tenant key.
    pub wrapped_key: Vec<u8>,
}

/// A record re-sealed by a record rotation.
#[derive(Debug, Clone)]
pub struct Reencrypted {
    /// Subject id.
    pub subject: Uuid,
    /// Record id.
    pub id: Uuid,
    /// The revision that was read; a record changed since is skipped (it was re-sealed under
    /// the current key by whoever changed it).
    pub revision: i64,
    /// The new ciphertext.
    pub ciphertext: Vec<u8>,
    /// The subject key version that sealed it.
    pub key_version: u32,
}

/// A background key job (record rotation) and its progress.
#[derive(Debug, Clone)]
pub struct KeyJobRow {
    /// Job id.
    pub id: Uuid,
    /// The tenant whose records are re-encrypted.
    pub tenant: Uuid,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// Last subject whose records are done (subjects are walked in id order).
    pub cursor: Option<Uuid>,
    /// Subjects given a new key so far.
    pub subjects_done: u64,
    /// Records re-encrypted so far.
    pub records_done: u64,
    /// Records of the tenant when the job started.
    pub records_total: u64,
    /// Start time.
    pub started_at: OffsetDateTime,
    /// Last progress.
    pub updated_at: OffsetDateTime,
    /// End time.
    pub finished_at: Option<OffsetDateTime>,
    /// The process that holds the job, and until when.
    pub lease_owner: Option<String>,
    /// Lease expiry; another process may take the job over after it.
    pub lease_until: Option<OffsetDateTime>,
    /// Why a job failed.
    pub error: Option<String>,
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

/// Keys a tenant key rotation rewrapped, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeysRewrapped {
    /// Subjects' current keys.
    pub subjects: u64,
    /// Retired subject keys.
    pub retired_subject_keys: u64,
    /// Hold keys.
    pub holds: u64,
}

/// One stored audit event.
#[derive(Debug, Clone)]
pub struct AuditRow {
    /// Position in the log (0-based, gap-free).
    pub idx: u64,
    /// Canonical event bytes (the Merkle leaf data).
    pub event: Vec<u8>,
    /// Hash chain value after this event.
    pub chain: [u8; 32],
    /// The columns copied out of the event for filtering; the verifier checks them against
    /// the event, since the tenant view selects on them.
    pub columns: AuditColumns,
}

/// Filterable copies of event fields stored beside each audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditColumns {
    /// Event time, Unix microseconds.
    pub at: i64,
    /// Tenant.
    pub tenant: Option<Uuid>,
    /// Subject.
    pub subject: Option<Uuid>,
    /// Actor id.
    pub actor: String,
    /// Action name.
    pub action: String,
    /// Outcome name.
    pub outcome: String,
}

/// Consecutive audit rows packed into two buffers. Verification reads every row of the log,
/// and allocating an [`AuditRow`] (four heap buffers each) cost as much as hashing it; a page
/// costs four allocations however many rows it holds.
#[derive(Debug, Default)]
pub struct AuditPage {
    events: Vec<u8>,
    text: String,
    rows: Vec<PagedAuditRow>,
}

#[derive(Debug)]
struct PagedAuditRow {
    idx: u64,
    chain: [u8; 32],
    at: i64,
    tenant: Option<Uuid>,
    subject: Option<Uuid>,
    /// Where the event ends in `events` (it starts where the previous row's ends).
    event_end: usize,
    /// Where actor, action and outcome end in `text`.
    text_ends: [usize; 3],
}

/// One row of an [`AuditPage`], borrowed from it.
#[derive(Debug, Clone, Copy)]
pub struct AuditRowRef<'a> {
    /// Position in the log.
    pub idx: u64,
    /// Canonical event bytes (the Merkle leaf data).
    pub event: &'a [u8],
    /// Hash chain value after this event.
    pub chain: &'a [u8; 32],
    /// Event time column, Unix microseconds.
    pub at: i64,
    /// Tenant column.
    pub tenant: Option<Uuid>,
    /// Subject column.
    pub subject: Option<Uuid>,
    /// Actor id column.
    pub actor: &'a str,
    /// Action column.
    pub action: &'a str,
    /// Outcome column.
    pub outcome: &'a str,
}

impl AuditPage {
    /// An empty page with room for `rows` rows of about `event_bytes` bytes each.
    #[must_use]
    pub fn with_capacity(rows: usize, event_bytes: usize) -> Self {
        Self {
            events: Vec::with_capacity(rows * event_bytes),
            text: String::with_capacity(rows * 48),
            rows: Vec::with_capacity(rows),
        }
    }

    /// Appends a row.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        idx: u64,
        event: &[u8],
        chain: [u8; 32],
        at: i64,
        tenant: Option<Uuid>,
        subject: Option<Uuid>,
        text: [&str; 3],
    ) {
        self.events.extend_from_slice(event);
        let mut text_ends = [0; 3];
        for (end, t) in text_ends.iter_mut().zip(text) {
            self.text.push_str(t);
            *end = self.text.len();
        }
        self.rows.push(PagedAuditRow {
            idx,
            chain,
            at,
            tenant,
            subject,
            event_end: self.events.len(),
            text_ends,
        });
    }

    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the page holds no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Index of the last row.
    #[must_use]
    pub fn last_idx(&self) -> Option<u64> {
        self.rows.last().map(|r| r.idx)
    }

    /// The rows in log order.
    pub fn iter(&self) -> impl Iterator<Item = AuditRowRef<'_>> {
        let (mut event_start, mut text_start) = (0, 0);
        self.rows.iter().map(move |r| {
            let event = &self.events[event_start..r.event_end];
            let [actor_end, action_end, outcome_end] = r.text_ends;
            let row = AuditRowRef {
                idx: r.idx,
                event,
                chain: &r.chain,
                at: r.at,
                tenant: r.tenant,
                subject: r.subject,
                actor: &self.text[text_start..actor_end],
                action: &self.text[actor_end..action_end],
                outcome: &self.text[action_end..outcome_end],
            };
            (event_start, text_start) = (r.event_end, outcome_end);
            row
        })
    }
}

impl FromIterator<AuditRow> for AuditPage {
    fn from_iter<I: IntoIterator<Item = AuditRow>>(rows: I) -> Self {
        let mut page = Self::default();
        for r in rows {
            let c = &r.columns;
            page.push(
                r.idx,
                &r.event,
                r.chain,
                c.at,
                c.tenant,
                c.subject,
                [&c.actor, &c.action, &c.outcome],
            );
        }
        page
    }
}

/// The audit tree head.
#[derive(Debug, Clone)]
pub struct AuditHead {
    /// Number of events.
    pub size: u64,
    /// Merkle root over all events.
    pub root: ward_audit::Hash,
    /// Hash chain value after the last event.
    pub chain: ward_audit::Hash,
    /// Persistable frontier.
    pub frontier: Vec<u8>,
}

/// A stored signed checkpoint.
#[derive(Debug, Clone)]
pub struct CheckpointRow {
    /// Tree size it commits to.
    pub tree_size: u64,
    /// The checkpoint as JSON.
    pub checkpoint: String,
    /// Frontier at that size (lets verification resume after pruning).
    pub frontier: Vec<u8>,
    /// When it was made.
    pub created_at: OffsetDateTime,
}

/// What `/metrics` reports of the stored data: counts only, never a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Every tenant (destroyed ones included, with what they still hold) and its size.
    pub tenants: Vec<TenantSize>,
    /// The newest audit checkpoint: its tree size and when it was made.
    pub last_checkpoint: Option<(u64, OffsetDateTime)>,
}

/// How much one tenant stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantSize {
    /// Tenant id.
    pub tenant: Uuid,
    /// Its subjects (erased ones included until their rows go).
    pub subjects: u64,
    /// Its live records.
    pub records: u64,
}

/// Filters of the tenant audit view.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Tenant whose events are listed.
    pub tenant: Uuid,
    /// Only events at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only events before this time.
    pub until: Option<OffsetDateTime>,
    /// Only this actor id.
    pub actor: Option<String>,
    /// Only this subject.
    pub subject: Option<Uuid>,
    /// Only this action (snake_case).
    pub action: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// Cursor: only indices greater than this.
    pub after: Option<u64>,
    /// Page size.
    pub limit: u32,
}

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

/// Whose key a [`WrappedKey`] is; the rewrapper needs it for the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    /// A subject's current key.
    Subject(Uuid),
    /// A subject's retired key (kept until a record rotation re-sealed its records).
    RetiredSubjectKey(Uuid),
    /// A legal hold's key.
    Hold(Uuid),
}

/// A key wrapped under a tenant key, as [`Op::RewrapTenantKeys`] hands it to its rewrapper.
#[derive(Debug)]
pub struct WrappedKey<'a> {
    /// Whose key it is.
    pub owner: KeyOwner,
    /// The tenant key version that wraps it now.
    pub key_version: u32,
    /// The wrapped key.
    pub wrapped: &'a [u8],
}

/// The key did not open under the tenant key it names (tampering or a foreign row).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("a wrapped key did not open under its tenant key")]
pub struct RewrapFailed;

type RewrapFn = dyn Fn(WrappedKey<'_>) -> Result<Vec<u8>, RewrapFailed> + Send + Sync;

/// The vault's half of a tenant key rotation, run by the store inside the rotating commit:
/// the store finds the keys, the vault does the cryptography, so neither needs the other's
/// secrets or tables.
#[derive(Clone)]
pub struct Rewrapper(std::sync::Arc<RewrapFn>);

impl Rewrapper {
    /// Wraps a rewrapping function.
    pub fn new(
        f: impl Fn(WrappedKey<'_>) -> Result<Vec<u8>, RewrapFailed> + Send + Sync + 'static,
    ) -> Self {
        Self(std::sync::Arc::new(f))
    }

    /// Rewraps one key.
    ///
    /// # Errors
    /// [`RewrapFailed`] when the key does not open under the old tenant key.
    pub fn rewrap(&self, key: WrappedKey<'_>) -> Result<Vec<u8>, RewrapFailed> {
        (self.0)(key)
    }
}

impl std::fmt::Debug for Rewrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rewrapper")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn row(idx: u64, event: Vec<u8>, text: [String; 3], ids: [Option<u128>; 2]) -> AuditRow {
        let [actor, action, outcome] = text;
        AuditRow {
            idx,
            chain: [idx as u8; 32],
            event,
            columns: AuditColumns {
                at: idx as i64 * 7,
                tenant: ids[0].map(Uuid::from_u128),
                subject: ids[1].map(Uuid::from_u128),
                actor,
                action,
                outcome,
            },
        }
    }

    proptest! {
        /// A page hands back exactly the rows packed into it, in order, whatever their sizes
        /// (empty strings and events included).
        #[test]
        fn a_page_returns_the_rows_packed_into_it(
            rows in proptest::collection::vec(
                (
                    proptest::collection::vec(any::<u8>(), 0..600),
                    ["\\PC{0,12}", "\\PC{0,12}", "\\PC{0,12}"],
                    [any::<Option<u128>>(), any::<Option<u128>>()],
                ),
                0..40,
            )
        ) {
            let rows: Vec<AuditRow> = rows
                .into_iter()
                .enumerate()
                .map(|(i, (event, text, ids))| row(i as u64 + 5, event, text, ids))
                .collect();
            let page: AuditPage = rows.clone().into_iter().collect();
            prop_assert_eq!(page.len(), rows.len());
            prop_assert_eq!(page.last_idx(), rows.last().map(|r| r.idx));
            for (got, want) in page.iter().zip(&rows) {
                let c = &want.columns;
                prop_assert_eq!(got.idx, want.idx);
                prop_assert_eq!(got.event, &want.event[..]);
                prop_assert_eq!(got.chain, &want.chain);
                prop_assert_eq!((got.at, got.tenant, got.subject), (c.at, c.tenant, c.subject));
                prop_assert_eq!([got.actor, got.action, got.outcome], [&c.actor[..], &c.action, &c.outcome]);
            }
            prop_assert_eq!(page.iter().count(), rows.len());
        }
    }
}

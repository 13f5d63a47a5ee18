//! Ward's storage: one [`Store`] trait, one implementation per database.
//!
//! The vault above decides *what* to write; a store only makes it durable, atomically. Every
//! change arrives as a list of [`Op`]s that commit together or not at all, audit events
//! included, so there is never a change without its event or an event for a change that rolled
//! back. Reads are plain queries. Nothing in this crate sees plaintext personal data: records
//! arrive sealed, searchable values arrive as keyed hashes.
//!
//! Each store commits through one writer that groups concurrent requests into one transaction
//! (a failing request replayed under its own savepoint), which is what makes an audited read
//! cheap. On SQLite the writer is an OS thread driving rusqlite synchronously.
#![warn(missing_docs)]

// First: its macros are used by both backends, declared below.
#[macro_use]
mod sql;
mod alerts;
pub mod audit_codec;
pub mod audit_columns;
mod decode;
pub mod hooked;
mod incidents;
mod model;
mod people;
mod postgres;
pub use postgres::PostgresStore;
pub mod schema;
mod settings_patch;
pub mod snapshot;
mod sqlite;
mod time_codec;
mod webhooks;

pub use alerts::{AlertOp, AlertQuery, AlertRow};
pub use incidents::{
    INCIDENT_CLOSED, INCIDENT_OPEN, IncidentNoteRow, IncidentOp, IncidentRow, IncidentScope,
    IncidentTenantRow, IncidentView,
};
pub use model::*;
pub use people::{MembershipRow, PeopleOp, SessionRow, SupportGrantRow, UserRow};
pub use snapshot::{
    DumpPiece, PlannedSection, Reconciliation, ReusePlan, SectionInfo, SnapshotStream,
    SnapshotSummary, check_dump,
};
pub use sqlite::SqliteStore;
pub use time_codec::{from_micros, to_micros};
pub use webhooks::{
    DELIVERY_DELIVERED, DELIVERY_FAILED, DELIVERY_PENDING, DeliveryOutcome, DeliveryQuery,
    DeliveryRow, WebhookOp, WebhookRow,
};

use async_trait::async_trait;
use tokio::sync::mpsc;
use uuid::Uuid;

/// What can go wrong below the vault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The row an operation needs is not there (a concurrent delete, or a wrong id).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule, an optimistic check or a lease refused the write; the variant says
    /// which, so that callers branch on it rather than on a message.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// PostgreSQL refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// SQLite refused or failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database was migrated by a newer Ward; opening it could corrupt what that version
    /// wrote.
    #[error(
        "the database was migrated by a newer Ward (schema version {found}; this Ward, version \
         {ward}, knows schema versions up to {known}): upgrade Ward, or restore a backup taken \
         before the upgrade",
        ward = env!("CARGO_PKG_VERSION")
    )]
    NewerSchema {
        /// The newest migration the database has.
        found: i64,
        /// The newest migration this Ward knows.
        known: i64,
    },
    /// Stored bytes that do not decode (a corrupted or hand-edited row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A key being rewrapped did not open under its tenant key.
    #[error(transparent)]
    Rewrap(#[from] RewrapFailed),
    /// The writer is gone (the server is shutting down).
    #[error("store is closed")]
    Closed,
    /// The SQLite writer thread could not be started.
    #[error("could not start the writer thread: {0}")]
    Thread(std::io::Error),
    /// The lock file beside the SQLite database could not be opened or locked.
    #[error("could not lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A snapshot dump that is truncated, corrupted or of another format or stream; or its
    /// consumer went away before the dump was complete.
    #[error("invalid snapshot: {0}")]
    Snapshot(String),
    /// A snapshot import into a store that already holds rows of that stream.
    #[error(
        "the target store is not empty (table {table} holds rows): a snapshot imports only \
         into an empty store"
    )]
    NotEmpty {
        /// The first table found holding rows.
        table: &'static str,
    },
}

/// Why a write lost to another one. Each reason a caller acts on (retry under a new key, leave
/// a key job to its holder, refuse to revoke the last owner) is its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Conflict {
    /// A uniqueness rule: the named row (or key of it) is there already.
    #[error("{0} already exists")]
    Exists(&'static str),
    /// A revision-conditional write found another revision: the row changed or went since the
    /// request read it.
    #[error("record was changed or deleted concurrently; read it again")]
    Stale,
    /// A subject was created under a tenant key that was rotated meanwhile; the vault retries
    /// with the new key.
    #[error("the tenant key was rotated during the request")]
    KeyRotated,
    /// A tenant key rotation found another key version than the one it rotated from.
    #[error("the tenant key changed concurrently")]
    TenantKeyChanged,
    /// A record sealed under a subject key that a record rotation replaced meanwhile; the
    /// vault seals it again under the new key.
    #[error("the subject key was rotated during the request")]
    SubjectKeyRotated,
    /// A new record for a tenant that is no longer active: it was cancelled or destroyed after
    /// the request read it. The vault decides again on a fresh read, which refuses the write.
    #[error("the tenant is no longer active")]
    TenantInactive,
    /// A key job whose lease another process holds (or that has ended).
    #[error("the key job is finished or held by another process")]
    KeyJobHeld,
    /// A key job change for a job that is not running.
    #[error("the key job is not running")]
    KeyJobNotRunning,
    /// A revocation that would leave a tenant without a live owner key.
    #[error("the tenant's last owner key cannot be revoked")]
    LastOwner,
    /// The writer's transaction could not begin, restart or commit; nothing of the batch was
    /// written and the request may be sent again.
    #[error("{0}")]
    Interrupted(String),
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The storage contract. Both backends pass the same test suite.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies `ops` atomically; audit events among them are appended to the log in order.
    async fn commit(&self, ops: Vec<Op>) -> Result<Committed>;

    /// A tenant by id.
    async fn tenant(&self, id: Uuid) -> Result<Option<TenantRow>>;
    /// All tenants (operator view and retention sweeps).
    async fn tenants(&self) -> Result<Vec<TenantRow>>;
    /// An API key by the SHA-256 of its token.
    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRow>>;
    /// A tenant's API keys (operator keys when `tenant` is `None`).
    async fn api_keys(&self, tenant: Option<Uuid>) -> Result<Vec<ApiKeyRow>>;
    /// An invitation by the SHA-256 of its token.
    async fn invitation_by_hash(&self, hash: &[u8; 32]) -> Result<Option<InvitationRow>>;
    /// A subject with its tenant's status and, optionally, its records: one round trip for
    /// the whole read path.
    async fn subject_view(
        &self,
        tenant: Uuid,
        subject: Uuid,
        records: RecordFilter<'_>,
    ) -> Result<Option<SubjectView>>;
    /// A subject by the keyed hash of its external reference.
    async fn subject_by_ref(&self, tenant: Uuid, ref_hash: &[u8]) -> Result<Option<SubjectRow>>;
    /// Records whose searchable field has this blind-index hash.
    async fn lookup(
        &self,
        tenant: Uuid,
        collection: &str,
        field: &str,
        hash: &[u8],
    ) -> Result<Vec<(SubjectRow, RecordRow)>>;

    /// The current audit tree head, consistent with every commit acknowledged so far.
    async fn audit_head(&self) -> Result<AuditHead>;
    /// Audit rows with `idx >= from`, in order, at most `limit`.
    async fn audit_rows(&self, from: u64, limit: u32) -> Result<Vec<AuditRow>>;
    /// The same rows as [`Store::audit_rows`], packed into one page (for verification, which
    /// reads them all).
    async fn audit_page(&self, from: u64, limit: u32) -> Result<AuditPage> {
        Ok(self.audit_rows(from, limit).await?.into_iter().collect())
    }
    /// A tenant's audit events, filtered, in order, for the tenant view.
    async fn audit_query(&self, query: &AuditQuery) -> Result<Vec<AuditRow>>;
    /// The newest system event (no tenant) with this action (snake_case): when the last
    /// backup, verification or retention sweep ran, for `ward doctor`. System events are few,
    /// and the tenant index finds them without reading any tenant's.
    async fn last_system_event(&self, action: &str) -> Result<Option<AuditRow>>;
    /// Every stored signed checkpoint, oldest first.
    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>>;
    /// Leaf hashes of the stored events with indices in `range`, in order: fewer than the
    /// range spans where retention pruned events. Proofs read at most a few 16-event blocks.
    async fn audit_leaves(&self, range: std::ops::Range<u64>) -> Result<Vec<ward_audit::Hash>>;
    /// The stored Merkle tree nodes ([`ward_audit::tree`]) of each span: subtrees of one
    /// stored height with indices in a range. Nodes missing from the store are left out (a
    /// log pruned before the nodes were stored lacks its oldest); the caller computes them
    /// from the level below.
    async fn audit_tree_nodes(
        &self,
        spans: Vec<(u8, std::ops::Range<u64>)>,
    ) -> Result<Vec<ward_audit::TreeNode>>;
    /// Index of the first stored event at or after `at` (`None` if there is none).
    async fn audit_index_at(&self, at: time::OffsetDateTime) -> Result<Option<u64>>;
    /// The subject index's postings of one sealed segment ([`SUBJECT_SEGMENT_BITS`]), in no
    /// particular order, for `ward audit verify` to check against the events (reads of a
    /// subject's log trust them). `None` when the segment is not sealed, or the store
    /// indexes every event instead (PostgreSQL).
    async fn audit_subject_postings(&self, segment: u64) -> Result<Option<Vec<SubjectPostings>>> {
        let _ = segment;
        Ok(None)
    }
    /// The (tenant, subject) pair of each subject index number in `numbers` that has one;
    /// a caller checking many segments asks once per number, not once per row.
    async fn audit_subject_numbers(&self, numbers: Vec<u64>) -> Result<Vec<(u64, Uuid, Uuid)>> {
        let _ = numbers;
        Ok(Vec::new())
    }

    /// Records with `expires_at <= now`, ordered by (expires_at, id), after the keyset
    /// cursor `after`, optionally of one tenant; at most `limit`.
    async fn expired_records(
        &self,
        now: time::OffsetDateTime,
        after: Option<(time::OffsetDateTime, Uuid)>,
        tenant: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ExpiredRecord>>;
    /// Held records whose hold ended by `now`, at most `limit`.
    async fn expired_held_records(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<HeldRecordRow>>;
    /// Holds whose key is still live but that hold nothing any more.
    async fn empty_holds(&self) -> Result<Vec<HoldRow>>;
    /// Held records of a tenant's hold(s) for one erased subject.
    async fn held_records(
        &self,
        tenant: Uuid,
        subject: Uuid,
    ) -> Result<Vec<(HoldRow, HeldRecordRow)>>;
    /// The erasure-ledger entry of a subject.
    async fn ledger_entry(&self, tenant: Uuid, subject: Uuid) -> Result<Option<LedgerRow>>;
    /// A tenant's subject ids after `after`, in order, at most `limit` (tenant export).
    async fn subject_ids(&self, tenant: Uuid, after: Option<Uuid>, limit: u32)
    -> Result<Vec<Uuid>>;
    /// A tenant's subjects that still have a key, after `after`, in id order, at most `limit`
    /// (tenant key rotation rewraps them).
    async fn keyed_subjects(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<SubjectRow>>;
    /// A tenant's holds whose key is still live.
    async fn live_holds(&self, tenant: Uuid) -> Result<Vec<HoldRow>>;
    /// The retired (older) keys of a subject that a record rotation has not finished with.
    async fn retired_keys(&self, tenant: Uuid, subject: Uuid) -> Result<Vec<RetiredKeyRow>>;
    /// A tenant's subjects that still have retired keys, in id order, at most `limit`.
    async fn subjects_with_retired_keys(&self, tenant: Uuid, limit: u32) -> Result<Vec<Uuid>>;
    /// How many retired subject keys a tenant has (`None`: all tenants).
    async fn retired_key_count(&self, tenant: Option<Uuid>) -> Result<u64>;
    /// Records of a tenant's subjects with ids in `(after, through]`, ordered by subject and
    /// id (record rotation reads a page of subjects' records in one query).
    async fn records_of_subjects(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        through: Uuid,
    ) -> Result<Vec<RecordRow>>;
    /// How many live records a tenant has.
    async fn record_count(&self, tenant: Uuid) -> Result<u64>;
    /// Sizes per tenant and the newest checkpoint, for `/metrics` (one pass of counts; the
    /// server calls it at most every few seconds, not per scrape).
    async fn stats(&self) -> Result<StoreStats>;
    /// Key jobs, newest first, optionally only those with `status`.
    async fn key_jobs(&self, status: Option<&str>) -> Result<Vec<KeyJobRow>>;
    /// A data-subject request.
    async fn request(&self, tenant: Uuid, id: Uuid) -> Result<Option<RequestRow>>;
    /// A tenant's requests, optionally of one status, ordered by due date.
    async fn requests(&self, tenant: Uuid, status: Option<&str>) -> Result<Vec<RequestRow>>;
    /// Requests of every tenant whose `verified_by` or `detail` does not start with
    /// `sealed_prefix`: the rows an older version wrote in clear, found by one query so the
    /// start-up pass that seals them costs nothing once they are gone.
    async fn requests_in_clear(&self, sealed_prefix: &str) -> Result<Vec<RequestRow>>;

    /// Writes one consistent point-in-time logical dump of `stream` (one read transaction:
    /// SQLite WAL read transaction over the data file and the attached key store; PostgreSQL
    /// REPEATABLE READ, READ ONLY) as Ward's backend-neutral snapshot format, in buffers of
    /// about 1 MiB, into `out`. Writers are never blocked. Returns when the dump is complete.
    ///
    /// A backup dumps the data stream first and the key stream after it, so that every key a
    /// data row needs is in the key snapshot: [`Store::reconcile_restore`] takes a key missing
    /// from it for a destroyed one. A consumer that goes away ends the export with
    /// [`StoreError::Snapshot`].
    async fn export_snapshot(
        &self,
        stream: SnapshotStream,
        out: mpsc::Sender<bytes::Bytes>,
    ) -> Result<SnapshotSummary> {
        let (tx, mut rx) = mpsc::channel(8);
        let forward = async move {
            while let Some(piece) = rx.recv().await {
                if let DumpPiece::Bytes(b) = piece
                    && out.send(b).await.is_err()
                {
                    // Dropping the receiver ends the export with "consumer went away".
                    break;
                }
            }
        };
        let nothing = ReusePlan::default();
        let (summary, ()) = tokio::join!(self.export_sections(stream, &nothing, tx), forward);
        summary
    }
    /// [`Store::export_snapshot`] in pieces: bytes, the cuts between the dump's sections,
    /// and, for each section `reuse` offers whose content the store still holds unchanged,
    /// [`DumpPiece::Reused`] in place of its bytes (the store does not read those rows). A
    /// backup offers the previous snapshot's sections, so a second backup of an unchanged
    /// store reads only the small tables and the newest part of the audit log.
    async fn export_sections(
        &self,
        stream: SnapshotStream,
        reuse: &ReusePlan,
        out: mpsc::Sender<DumpPiece>,
    ) -> Result<SnapshotSummary>;
    /// Loads a dump produced by `export_snapshot` (from either backend) into this store, which
    /// must hold no row of that stream (else [`StoreError::NotEmpty`]).
    /// One transaction: a failed import leaves nothing.
    ///
    /// Import the data stream before the key stream: the key stream carries the versions of
    /// the wrapped keys, which the key import writes onto the tenants, subjects and holds it
    /// finds (on PostgreSQL those rows are where the versions live).
    async fn import_snapshot(
        &self,
        stream: SnapshotStream,
        input: mpsc::Receiver<bytes::Bytes>,
    ) -> Result<SnapshotSummary>;
    /// After a Data and the newest Keys snapshot were imported: erases every subject that the
    /// erasure ledger lists or that has no subject key any more (its records, index entries
    /// and remaining keys go, as in an erasure), drops held records whose hold key is gone,
    /// and destroys every tenant that is destroyed or has no tenant key (as `DestroyTenant`
    /// does), so an erased subject or destroyed tenant never comes back. Keys whose tenant,
    /// subject or hold the data snapshot lacks (created after it) go too. Audit events stay
    /// (they hold no personal data). Idempotent, and a no-op after restoring a data and a key
    /// snapshot of the same moment.
    async fn reconcile_restore(&self) -> Result<Reconciliation>;
    /// A user by the keyed hash of its e-mail address (the login lookup).
    async fn user_by_email_hash(&self, hash: &[u8; 32]) -> Result<Option<UserRow>>;
    /// A user by id.
    async fn user(&self, id: Uuid) -> Result<Option<UserRow>>;
    /// Every user, platform staff and tenant users, in id order.
    async fn users(&self) -> Result<Vec<UserRow>>;
    /// How many of a user's recovery codes are still unused.
    async fn unused_recovery_codes(&self, user: Uuid) -> Result<u32>;
    /// A session by the SHA-256 of its id.
    async fn session_by_hash(&self, hash: &[u8; 32]) -> Result<Option<SessionRow>>;
    /// A user's sessions, ended ones included, in id order.
    async fn sessions_of(&self, user: Uuid) -> Result<Vec<SessionRow>>;
    /// A tenant's support grant.
    async fn support_grant(&self, tenant: Uuid, id: Uuid) -> Result<Option<SupportGrantRow>>;
    /// A user's memberships (ended ones included: the caller knows the time).
    async fn memberships_of(&self, user: Uuid) -> Result<Vec<MembershipRow>>;
    /// A tenant's memberships, in user id order.
    async fn memberships(&self, tenant: Uuid) -> Result<Vec<MembershipRow>>;
    /// A tenant's support grants, in id order.
    async fn support_grants(&self, tenant: Uuid) -> Result<Vec<SupportGrantRow>>;
    /// A support user's approved grants (expired ones included: the caller knows the time).
    async fn open_grants_of(&self, user: Uuid) -> Result<Vec<SupportGrantRow>>;
    /// One alert by id.
    async fn alert(&self, id: Uuid) -> Result<Option<AlertRow>>;
    /// The unresolved alert of a rule and scope, if any.
    async fn live_alert(&self, rule: &str, scope: &str) -> Result<Option<AlertRow>>;
    /// Alerts, newest first.
    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRow>>;
    /// Unresolved alerts counted by (rule, severity), for the `ward_alerts_open` gauge.
    async fn open_alert_counts(&self) -> Result<Vec<(String, String, u64)>>;
    /// One webhook by id (deleted ones included).
    async fn webhook(&self, id: Uuid) -> Result<Option<WebhookRow>>;
    /// The live webhooks of a tenant (`None`: the operator's), oldest first.
    async fn webhooks(&self, tenant: Option<Uuid>) -> Result<Vec<WebhookRow>>;
    /// One delivery by id.
    async fn webhook_delivery(&self, id: Uuid) -> Result<Option<DeliveryRow>>;
    /// A webhook's delivery log, newest first.
    async fn webhook_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryRow>>;
    /// Pending deliveries due at `now` whose lease is free or expired, oldest due first.
    async fn due_webhook_deliveries(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>>;
    /// Deliveries still pending, for the `ward_webhook_outbox_pending` gauge.
    async fn webhook_outbox_pending(&self) -> Result<u64>;
    /// One incident with its tenants, subjects, alerts and timeline.
    async fn incident(&self, id: Uuid) -> Result<Option<IncidentView>>;
    /// Incidents of `scope`, newest first (oldest first for `ClockPending`), at most `limit`.
    async fn incidents(&self, scope: IncidentScope, limit: u32) -> Result<Vec<IncidentRow>>;
}

//! PostgreSQL: the store for several Ward servers sharing one database.
//!
//! Writes go through the store's writer tasks, as on SQLite through its writer thread: a
//! writer drains whatever requests are waiting and commits them in one transaction (group
//! commit). What differs is that other servers append to the same audit log. The log's tail
//! (size, chain value, Merkle frontier) therefore lives in the single-row `audit_head` table
//! rather than in memory. A batch stages the audit events of its successful requests and,
//! last thing before it commits, locks that row (`SELECT ... FOR UPDATE`), numbers the events
//! from the size it finds, and writes them all with the new tail in one statement
//! (`INSERT … SELECT FROM UNNEST`). The row lock serializes appends across servers, and
//! across the two writers of one store, and keeps indices gap-free; it is held only for that
//! statement and the commit (nothing is locked after it, so no two batches can deadlock over
//! it), and a batch without audit events does not take it at all.
//!
//! Round trips are what a PostgreSQL write costs, not rows, so a batch's writes go to the
//! database set-wise ([`batch`]): the record inserts, revision-conditional updates and deletes
//! of all requests that consist of one record write (a put, a rectification, a deletion) and
//! audit events, in at most six statements for the whole batch, each reporting row by row
//! (`ON CONFLICT DO NOTHING RETURNING`, `UPDATE … FROM UNNEST … WHERE revision = expected
//! RETURNING`) which writes lost. **The per-request atomicity invariant:** a request either
//! takes effect whole, with its audit events, or leaves no trace and no event. The set-based
//! pass keeps it without a savepoint per request because each request in it is one write,
//! every statement skips the writes that lost in an earlier one, and no two writes in it touch
//! the same record (a request writing a record that an earlier request of the batch writes
//! too is applied after the pass, on its own, and so sees that write as it would in sequence).
//! Should a statement of the pass fail as a whole (a constraint it does not check row by row),
//! the transaction, which holds nothing else yet because the pass runs first, is rolled back
//! and begun again, and the pass's requests are replayed one at a time. Everything
//! else — requests of several record writes (batch calls), and every other kind of change — is
//! applied one request at a time after the pass, each under its own savepoint, the rare case
//! where a savepoint is worth its round trips. An audited read (only audit events) costs no
//! statement of its own, a batch of one request runs without savepoints, and a batch in which
//! every request failed is rolled back instead of committed.
//!
//! Locks are taken in one order everywhere, so that neither two writers nor two servers can
//! deadlock: tenant rows first (a batch locks every tenant row its requests need before it
//! writes anything, [`tenant_locks`]), then key rows, then the audit head.
//!
//! Two writers share the queue, each with a connection of its own (outside the read pool, so
//! a batch never queues behind reads): while one batch waits for its commit to reach the WAL,
//! the other gathers and writes the next. Reads use the pool, one query per method; sqlx prepares
//! each statement once per connection and keeps it cached. sqlx does not pipeline, so each
//! remaining statement is one round trip; per batch that is a handful, whatever its size.
//!
//! Wrapped keys live in their own tables (`tenant_keys`, `subject_keys`, `hold_keys`), as in
//! the SQLite key store, so that data backups can leave them out. Unlike SQLite's
//! `secure_delete`, PostgreSQL keeps a deleted key's bytes in dead tuples and WAL until vacuum
//! and WAL recycling; what makes a shredded key unrecoverable there is the short retention of
//! key backups and the database's own storage hygiene.
//!
//! Several servers may start at once: migrations (and the creation of the schema, for
//! [`PostgresStore::open_in_schema`]) run under a session advisory lock.

mod alerts;
mod incidents;
mod people;
mod webhooks;

mod apply;
mod decode;
mod open;
mod read;
mod writer;

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{
    AssertSqlSafe, Connection, Executor, PgConnection, Postgres, QueryBuilder, Row, Transaction,
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;
use ward_audit::{Frontier, Hash, chain_hash, leaf_hash};

mod batch;
mod snapshot;
mod tenant_locks;
mod tree;

use self::apply::*;
use self::decode::*;
pub(crate) use self::open::known_migrations;
use self::open::*;
use self::writer::*;

use batch::RecordWrite;

use crate::{
    AlertQuery, AlertRow, ApiKeyRow, AuditHead, AuditQuery, AuditRow, CheckpointRow, Committed,
    Conflict, ExpiredRecord, HeldRecordRow, HoldRow, IndexEntry, InvitationRow, KeyJobRow,
    KeyOwner, KeysRewrapped, LedgerRow, MembershipRow, Op, Reconciliation, RecordFilter, RecordRow,
    RequestRow, Result, RetiredKeyRow, Rewrapper, SessionRow, SnapshotStream, SnapshotSummary,
    Store, StoreError, SubjectRow, SubjectView, SupportGrantRow, TenantRow, TenantStatus, UserRow,
    WrappedKey, from_micros, to_micros,
};

/// A Ward store in a PostgreSQL database, safe to share between several Ward servers.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    writer: mpsc::Sender<Job>,
}

/// One `commit` call waiting for the writer.
type Job = (Vec<Op>, oneshot::Sender<Result<Committed>>);

impl PostgresStore {
    /// Connects to `url` (a `postgres://` URL) and applies migrations to the schema the
    /// connection's `search_path` names (`public` by default; a URL may set another with
    /// `?options=-c%20search_path%3Dname`, which must then already exist).
    pub async fn open(url: &str) -> Result<Self> {
        Self::connect(PgConnectOptions::from_str(url)?, None).await
    }

    /// Like [`PostgresStore::open`], but keeps every table in `schema`, creating the schema
    /// if it is missing: several Ward deployments (or tests) can share one database this way.
    ///
    /// `schema` must match `^[a-z_][a-z0-9_]{0,62}$`; anything else is refused with
    /// [`sqlx::Error::Configuration`]. Every pooled connection gets the schema as its
    /// `search_path` in its startup packet, so it holds from the first statement on and
    /// survives a `RESET ALL` or `DISCARD ALL`.
    pub async fn open_in_schema(url: &str, schema: &str) -> Result<Self> {
        check_schema_name(schema)?;
        let options = PgConnectOptions::from_str(url)?.options([("search_path", schema)]);
        Self::connect(options, Some(schema)).await
    }

    /// The connection pool, for maintenance queries in tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn connect(options: PgConnectOptions, schema: Option<&str>) -> Result<Self> {
        migrate(&options, schema).await?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            // A ping before every checkout would double the round trips of a read; a dead
            // connection surfaces as one failed query instead and is then discarded.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        let (tx, rx) = mpsc::channel(4096);
        // The writers have connections of their own: from the read pool, a batch would queue
        // behind every waiting read (the pool hands connections out first come, first served),
        // and every request of the batch would wait with it.
        let writers = PgPoolOptions::new()
            .max_connections(WRITERS as u32)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..WRITERS {
            tokio::spawn(run_writer(writers.clone(), rx.clone()));
        }
        Ok(Self { pool, writer: tx })
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn commit(&self, ops: Vec<Op>) -> Result<Committed> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send((ops, tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn tenant(&self, id: Uuid) -> Result<Option<TenantRow>> {
        read::tenant(&self.pool, id).await
    }

    async fn tenants(&self) -> Result<Vec<TenantRow>> {
        read::tenants(&self.pool).await
    }

    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRow>> {
        read::api_key_by_hash(&self.pool, hash).await
    }

    async fn invitation_by_hash(&self, hash: &[u8; 32]) -> Result<Option<InvitationRow>> {
        read::invitation_by_hash(&self.pool, hash).await
    }

    async fn api_keys(&self, tenant: Option<Uuid>) -> Result<Vec<ApiKeyRow>> {
        read::api_keys(&self.pool, tenant).await
    }

    async fn subject_view(
        &self,
        tenant: Uuid,
        subject: Uuid,
        records: RecordFilter<'_>,
    ) -> Result<Option<SubjectView>> {
        read::subject_view(&self.pool, tenant, subject, records).await
    }

    async fn subject_by_ref(&self, tenant: Uuid, ref_hash: &[u8]) -> Result<Option<SubjectRow>> {
        read::subject_by_ref(&self.pool, tenant, ref_hash).await
    }

    async fn lookup(
        &self,
        tenant: Uuid,
        collection: &str,
        field: &str,
        hash: &[u8],
    ) -> Result<Vec<(SubjectRow, RecordRow)>> {
        read::lookup(&self.pool, tenant, collection, field, hash).await
    }

    async fn audit_head(&self) -> Result<AuditHead> {
        read::audit::audit_head(&self.pool).await
    }

    async fn audit_rows(&self, from: u64, limit: u32) -> Result<Vec<AuditRow>> {
        read::audit::audit_rows(&self.pool, from, limit).await
    }

    async fn audit_query(&self, q: &AuditQuery) -> Result<Vec<AuditRow>> {
        read::audit::audit_query(&self.pool, q).await
    }

    async fn last_system_event(&self, action: &str) -> Result<Option<AuditRow>> {
        read::audit::last_system_event(&self.pool, action).await
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>> {
        read::audit::checkpoints(&self.pool).await
    }

    async fn audit_leaves(&self, range: std::ops::Range<u64>) -> Result<Vec<Hash>> {
        tree::leaves(&self.pool, range).await
    }

    async fn audit_tree_nodes(
        &self,
        spans: Vec<(u8, std::ops::Range<u64>)>,
    ) -> Result<Vec<ward_audit::TreeNode>> {
        tree::nodes(&self.pool, &spans).await
    }

    async fn audit_index_at(&self, at: time::OffsetDateTime) -> Result<Option<u64>> {
        read::audit::audit_index_at(&self.pool, at).await
    }

    async fn expired_records(
        &self,
        now: time::OffsetDateTime,
        after: Option<(time::OffsetDateTime, Uuid)>,
        tenant: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ExpiredRecord>> {
        read::expired_records(&self.pool, now, after, tenant, limit).await
    }

    async fn expired_held_records(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<HeldRecordRow>> {
        read::rights::expired_held_records(&self.pool, now, limit).await
    }

    async fn empty_holds(&self) -> Result<Vec<HoldRow>> {
        read::rights::empty_holds(&self.pool).await
    }

    async fn held_records(
        &self,
        tenant: Uuid,
        subject: Uuid,
    ) -> Result<Vec<(HoldRow, HeldRecordRow)>> {
        read::rights::held_records(&self.pool, tenant, subject).await
    }

    async fn ledger_entry(&self, tenant: Uuid, subject: Uuid) -> Result<Option<LedgerRow>> {
        read::ledger_entry(&self.pool, tenant, subject).await
    }

    async fn subject_ids(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Uuid>> {
        read::subject_ids(&self.pool, tenant, after, limit).await
    }

    async fn keyed_subjects(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<SubjectRow>> {
        read::keys::keyed_subjects(&self.pool, tenant, after, limit).await
    }

    async fn live_holds(&self, tenant: Uuid) -> Result<Vec<HoldRow>> {
        read::rights::live_holds(&self.pool, tenant).await
    }

    async fn retired_keys(&self, tenant: Uuid, subject: Uuid) -> Result<Vec<RetiredKeyRow>> {
        read::keys::retired_keys(&self.pool, tenant, subject).await
    }

    async fn subjects_with_retired_keys(&self, tenant: Uuid, limit: u32) -> Result<Vec<Uuid>> {
        read::keys::subjects_with_retired_keys(&self.pool, tenant, limit).await
    }

    async fn retired_key_count(&self, tenant: Option<Uuid>) -> Result<u64> {
        read::keys::retired_key_count(&self.pool, tenant).await
    }

    async fn records_of_subjects(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        through: Uuid,
    ) -> Result<Vec<RecordRow>> {
        read::records_of_subjects(&self.pool, tenant, after, through).await
    }

    async fn record_count(&self, tenant: Uuid) -> Result<u64> {
        read::record_count(&self.pool, tenant).await
    }

    async fn stats(&self) -> Result<crate::StoreStats> {
        read::stats(&self.pool).await
    }

    async fn key_jobs(&self, status: Option<&str>) -> Result<Vec<KeyJobRow>> {
        read::keys::key_jobs(&self.pool, status).await
    }

    async fn request(&self, tenant: Uuid, id: Uuid) -> Result<Option<RequestRow>> {
        read::rights::request(&self.pool, tenant, id).await
    }

    async fn requests(&self, tenant: Uuid, status: Option<&str>) -> Result<Vec<RequestRow>> {
        read::rights::requests(&self.pool, tenant, status).await
    }

    async fn requests_in_clear(&self, sealed_prefix: &str) -> Result<Vec<RequestRow>> {
        read::rights::requests_in_clear(&self.pool, sealed_prefix).await
    }

    async fn export_sections(
        &self,
        stream: SnapshotStream,
        reuse: &crate::ReusePlan,
        out: mpsc::Sender<crate::DumpPiece>,
    ) -> Result<SnapshotSummary> {
        snapshot::export(&self.pool, stream, reuse, &out).await
    }

    async fn import_snapshot(
        &self,
        stream: SnapshotStream,
        input: mpsc::Receiver<bytes::Bytes>,
    ) -> Result<SnapshotSummary> {
        snapshot::import(&self.pool, stream, input).await
    }

    async fn reconcile_restore(&self) -> Result<Reconciliation> {
        snapshot::reconcile_restore(&self.pool).await
    }

    async fn user_by_email_hash(&self, hash: &[u8; 32]) -> Result<Option<UserRow>> {
        people::user_by_email_hash(&self.pool, hash).await
    }

    async fn user(&self, id: Uuid) -> Result<Option<UserRow>> {
        people::user(&self.pool, id).await
    }

    async fn users(&self) -> Result<Vec<UserRow>> {
        people::users(&self.pool).await
    }

    async fn unused_recovery_codes(&self, user: Uuid) -> Result<u32> {
        people::unused_recovery_codes(&self.pool, user).await
    }

    async fn session_by_hash(&self, hash: &[u8; 32]) -> Result<Option<SessionRow>> {
        people::session_by_hash(&self.pool, hash).await
    }

    async fn sessions_of(&self, user: Uuid) -> Result<Vec<SessionRow>> {
        people::sessions_of(&self.pool, user).await
    }

    async fn support_grant(&self, tenant: Uuid, id: Uuid) -> Result<Option<SupportGrantRow>> {
        people::support_grant(&self.pool, tenant, id).await
    }

    async fn support_grants(&self, tenant: Uuid) -> Result<Vec<SupportGrantRow>> {
        people::support_grants(&self.pool, tenant).await
    }

    async fn open_grants_of(&self, user: Uuid) -> Result<Vec<SupportGrantRow>> {
        people::open_grants_of(&self.pool, user).await
    }

    async fn memberships_of(&self, user: Uuid) -> Result<Vec<MembershipRow>> {
        people::memberships_of(&self.pool, user).await
    }

    async fn memberships(&self, tenant: Uuid) -> Result<Vec<MembershipRow>> {
        people::memberships(&self.pool, tenant).await
    }

    async fn alert(&self, id: Uuid) -> Result<Option<AlertRow>> {
        alerts::alert(&self.pool, id).await
    }

    async fn live_alert(&self, rule: &str, scope: &str) -> Result<Option<AlertRow>> {
        alerts::live_alert(&self.pool, rule, scope).await
    }

    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRow>> {
        alerts::alerts(&self.pool, query).await
    }

    async fn open_alert_counts(&self) -> Result<Vec<(String, String, u64)>> {
        alerts::open_alert_counts(&self.pool).await
    }

    async fn webhook(&self, id: Uuid) -> Result<Option<crate::WebhookRow>> {
        webhooks::webhook(&self.pool, id).await
    }

    async fn webhooks(&self, tenant: Option<Uuid>) -> Result<Vec<crate::WebhookRow>> {
        webhooks::webhooks(&self.pool, tenant).await
    }

    async fn webhook_delivery(&self, id: Uuid) -> Result<Option<crate::DeliveryRow>> {
        webhooks::webhook_delivery(&self.pool, id).await
    }

    async fn webhook_deliveries(
        &self,
        query: &crate::DeliveryQuery,
    ) -> Result<Vec<crate::DeliveryRow>> {
        webhooks::webhook_deliveries(&self.pool, query).await
    }

    async fn due_webhook_deliveries(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<crate::DeliveryRow>> {
        webhooks::due_webhook_deliveries(&self.pool, now, limit).await
    }

    async fn webhook_outbox_pending(&self) -> Result<u64> {
        webhooks::webhook_outbox_pending(&self.pool).await
    }

    async fn incident(&self, id: Uuid) -> Result<Option<crate::IncidentView>> {
        incidents::incident(&self.pool, id).await
    }

    async fn incidents(
        &self,
        scope: crate::IncidentScope,
        limit: u32,
    ) -> Result<Vec<crate::IncidentRow>> {
        incidents::incidents(&self.pool, scope, limit).await
    }
}

//! The embedded default: one SQLite file in WAL mode, driven synchronously through rusqlite.
//!
//! SQLite has one writer at a time, so Ward gives it exactly one: an OS thread that owns the
//! write connection, drains whatever requests are waiting, and commits them in one transaction
//! (group commit). A failing request is replayed under its own savepoint and fails alone. The
//! audit frontier and hash chain live in the writer, so appends cost one row and no reads;
//! each group commit also stores them (`audit_tail`, one row), so opening a store with a long
//! log does not re-hash it, as long as the stored tail matches the newest event.
//!
//! Reads use a small pool of read-only connections and never wait for the writer. A point read
//! takes microseconds, so it runs inline on the calling task (a thread hop would cost more than
//! the query); scans that may read thousands of rows run on a blocking thread so they never
//! stall the runtime. Every statement is a cached prepared statement.

mod alerts;
mod incidents;
mod people;
mod webhooks;

#[macro_use]
mod columns;
mod apply;
mod decode;
mod open;
mod read;
mod writer;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Params, Row, ToSql, TransactionBehavior, ffi, params,
    params_from_iter,
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;
use ward_audit::{Frontier, Hash, TreeNode, chain_hash, leaf_hash};

mod audit_bundles;
mod recovery;
mod snapshot;
mod subject_postings;
mod tree;

use self::apply::*;
use self::decode::*;
pub(crate) use self::open::known_migrations;
use self::open::*;
use self::subject_postings::Sealer;
use self::writer::*;

use crate::{
    AlertQuery, AlertRow, ApiKeyRow, AuditHead, AuditPage, AuditQuery, AuditRow, CheckpointRow,
    Committed, Conflict, ExpiredRecord, HeldRecordRow, HoldRow, InvitationRow, KeyJobRow, KeyOwner,
    KeysRewrapped, LedgerRow, MembershipRow, Op, Reconciliation, RecordFilter, RecordRow,
    RequestRow, Result, RetiredKeyRow, Rewrapper, SessionRow, SnapshotStream, SnapshotSummary,
    Store, StoreError, SubjectPostings, SubjectRow, SubjectView, SupportGrantRow, TenantRow,
    TenantStatus, UserRow, WrappedKey, from_micros, to_micros,
};

/// A Ward store in one SQLite database file (and its key store beside it).
#[derive(Clone)]
pub struct SqliteStore {
    readers: Arc<Readers>,
    writer: mpsc::Sender<Job>,
}

enum Job {
    /// A request's ops, its audit events encoded in the same order, and where to answer.
    Commit(Vec<Op>, Vec<Encoded>, Reply),
    Head(oneshot::Sender<AuditHead>),
    /// Work that needs the write connection to itself (a snapshot import, the restore
    /// reconciliation): it runs between group commits, in its place in the queue, and
    /// answers on its own channel.
    Exclusive(ExclusiveWork),
    /// Seal every complete segment of the audit subject index now, answering with the
    /// sealed mark ([`SqliteStore::seal_audit_subject_index`]).
    Seal(oneshot::Sender<Result<u64>>),
}

/// What an exclusive job runs on the writer thread.
type ExclusiveWork = Box<dyn FnOnce(&mut Connection, &mut AuditState) + Send>;

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies migrations and starts the
    /// writer thread.
    pub async fn open(path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
        join(tokio::task::spawn_blocking(move || Self::open_blocking(path)).await)
    }

    fn open_blocking(path: PathBuf) -> Result<Self> {
        let mut conn = connect(&path, Access::Write)?;
        migrate(&mut conn)?;
        let mut audit = AuditState::load(&conn)?;
        let lock = OpenLock::take(&path)?;
        if lock.alone {
            let repairs = recovery::repair(&mut conn, &mut audit)?;
            if repairs.any() {
                tracing::warn!(
                    keys_deleted = repairs.keys_deleted,
                    tenants_rolled_back = repairs.tenants_rolled_back,
                    subjects_rolled_back = repairs.subjects_rolled_back,
                    rotations_rolled_back = repairs.rotations_rolled_back,
                    "repaired writes a crash left in one database file and not the other"
                );
            }
        }
        tree::backfill(&conn, audit.frontier.size())?;
        let sealer = Sealer::load(&conn)?;
        let lock = lock.share()?;
        let (tx, rx) = mpsc::channel(4096);
        std::thread::Builder::new()
            .name("ward-sqlite-writer".into())
            .spawn(move || run_writer(conn, rx, audit, sealer))
            .map_err(StoreError::Thread)?;
        Ok(Self {
            readers: Arc::new(Readers {
                path,
                idle: Mutex::new(Vec::new()),
                _lock: lock,
            }),
            writer: tx,
        })
    }

    /// A fresh read/write connection on the database file at `path`, with the key store
    /// attached as `keys` and the store's pragmas set, for maintenance in tests and tools.
    /// Its writes bypass the writer: never use it on a store that is serving requests
    /// except to tamper with rows on purpose.
    pub fn open_connection(path: &Path) -> Result<Connection> {
        connect(path, Access::Write)
    }

    /// [`Self::open_connection`] on this store's file.
    pub fn connection(&self) -> Result<Connection> {
        connect(&self.readers.path, Access::Write)
    }

    /// Seals every complete 65,536-event segment of the audit log's subject index now,
    /// rather than a step at a time between commits (see `subject_postings`); returns how
    /// many segments are sealed. For benchmarks and tests that want the sealed read path.
    pub async fn seal_audit_subject_index(&self) -> Result<u64> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Job::Seal(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a short read inline on the calling task: a point read takes microseconds, less
    /// than a hop to another thread would.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.readers.with(f)
    }

    /// Runs `work` on the writer thread with the write connection to itself.
    async fn exclusive<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection, &mut AuditState) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let job = Job::Exclusive(Box::new(move |conn, audit| {
            let _ = tx.send(work(conn, audit));
        }));
        self.writer
            .send(job)
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a read that may scan many rows on a blocking thread, off the async runtime.
    async fn scan<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = Arc::clone(&self.readers);
        join(tokio::task::spawn_blocking(move || readers.with(f)).await)
    }
}

/// Unwraps a blocking task's outcome, passing a panic on to the caller.
fn join<T>(joined: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    match joined {
        Ok(outcome) => outcome,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::Closed),
    }
}

/// Pages of at least this many rows are read as two halves at once ([`Store::audit_page`]).
const PARALLEL_PAGE_ROWS: u32 = 2_000;

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, ops: Vec<Op>) -> Result<Committed> {
        let events = Encoded::all(&ops);
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Job::Commit(ops, events, tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn tenant(&self, id: Uuid) -> Result<Option<TenantRow>> {
        self.read(|c| read::tenant(c, id))
    }

    async fn tenants(&self) -> Result<Vec<TenantRow>> {
        self.scan(read::tenants).await
    }

    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRow>> {
        self.read(|c| read::api_key_by_hash(c, hash))
    }

    async fn api_keys(&self, tenant: Option<Uuid>) -> Result<Vec<ApiKeyRow>> {
        self.read(|c| read::api_keys(c, tenant))
    }

    async fn invitation_by_hash(&self, hash: &[u8; 32]) -> Result<Option<InvitationRow>> {
        self.read(|c| read::invitation_by_hash(c, hash))
    }

    async fn subject_view(
        &self,
        tenant: Uuid,
        subject: Uuid,
        records: RecordFilter<'_>,
    ) -> Result<Option<SubjectView>> {
        match records {
            // All of a subject's records may be many (an export): off the runtime.
            RecordFilter::All(collection) => {
                let collection = collection.map(str::to_owned);
                self.scan(move |c| {
                    read::subject_view(c, tenant, subject, RecordFilter::All(collection.as_deref()))
                })
                .await
            }
            _ => self.read(|c| read::subject_view(c, tenant, subject, records)),
        }
    }

    async fn subject_by_ref(&self, tenant: Uuid, ref_hash: &[u8]) -> Result<Option<SubjectRow>> {
        self.read(|c| read::subject_by_ref(c, tenant, ref_hash))
    }

    async fn lookup(
        &self,
        tenant: Uuid,
        collection: &str,
        field: &str,
        hash: &[u8],
    ) -> Result<Vec<(SubjectRow, RecordRow)>> {
        self.read(|c| read::lookup(c, tenant, collection, field, hash))
    }

    async fn audit_head(&self) -> Result<AuditHead> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Job::Head(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)
    }

    async fn audit_rows(&self, from: u64, limit: u32) -> Result<Vec<AuditRow>> {
        let read = move |c: &Connection| read::audit::audit_rows(c, from, limit);
        if limit <= 16 {
            self.read(read)
        } else {
            self.scan(read).await
        }
    }

    /// A large page is read as two halves on two reader threads at once: reading and
    /// unpacking rows is the slower side of verification, which hashes on a third thread, so
    /// on two cores one read thread left a core idle.
    async fn audit_page(&self, from: u64, limit: u32) -> Result<AuditPage> {
        let page_at =
            |from: u64, limit: u32| self.scan(move |c| read::audit::audit_page(c, from, limit));
        if limit < PARALLEL_PAGE_ROWS {
            return page_at(from, limit).await;
        }
        let half = limit / 2;
        let second = from.saturating_add(u64::from(half));
        let (mut page, rest) =
            tokio::try_join!(page_at(from, half), page_at(second, limit - half))?;
        // A short first half means the log ended inside it. A full one that ends past
        // `second - 1` skipped a gap (a pruned prefix): the rest is read again from where it
        // ended, so the page holds exactly the rows one read would have.
        if let Some(last) = page.last_idx().filter(|_| page.len() == half as usize) {
            let rest = if last + 1 == second {
                rest
            } else {
                page_at(last + 1, limit - half).await?
            };
            page.append(rest);
        }
        Ok(page)
    }

    async fn audit_query(&self, q: &AuditQuery) -> Result<Vec<AuditRow>> {
        let q = q.clone();
        self.scan(move |c| read::audit::audit_query(c, &q)).await
    }

    async fn last_system_event(&self, action: &str) -> Result<Option<AuditRow>> {
        let action = action.to_owned();
        self.scan(move |c| read::audit::last_system_event(c, action))
            .await
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>> {
        self.scan(read::audit::checkpoints).await
    }

    async fn audit_leaves(&self, range: std::ops::Range<u64>) -> Result<Vec<Hash>> {
        self.scan(move |c| tree::leaves(c, range)).await
    }

    async fn audit_tree_nodes(
        &self,
        spans: Vec<(u8, std::ops::Range<u64>)>,
    ) -> Result<Vec<ward_audit::TreeNode>> {
        self.scan(move |c| tree::nodes(c, &spans)).await
    }

    async fn audit_subject_postings(&self, segment: u64) -> Result<Option<Vec<SubjectPostings>>> {
        self.scan(move |c| subject_postings::segment(c, segment))
            .await
    }

    async fn audit_subject_numbers(&self, numbers: Vec<u64>) -> Result<Vec<(u64, Uuid, Uuid)>> {
        self.scan(move |c| subject_postings::pairs(c, &numbers))
            .await
    }

    async fn audit_index_at(&self, at: time::OffsetDateTime) -> Result<Option<u64>> {
        // A walk that reads every event before `at` (see `read::audit::audit_index_at`): off the
        // runtime.
        self.scan(move |c| read::audit::audit_index_at(c, at)).await
    }

    async fn expired_records(
        &self,
        now: time::OffsetDateTime,
        after: Option<(time::OffsetDateTime, Uuid)>,
        tenant: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ExpiredRecord>> {
        self.scan(move |c| read::expired_records(c, now, after, tenant, limit))
            .await
    }

    async fn expired_held_records(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<HeldRecordRow>> {
        self.scan(move |c| read::rights::expired_held_records(c, now, limit))
            .await
    }

    async fn empty_holds(&self) -> Result<Vec<HoldRow>> {
        self.scan(read::rights::empty_holds).await
    }

    async fn held_records(
        &self,
        tenant: Uuid,
        subject: Uuid,
    ) -> Result<Vec<(HoldRow, HeldRecordRow)>> {
        self.scan(move |c| read::rights::held_records(c, tenant, subject))
            .await
    }

    async fn ledger_entry(&self, tenant: Uuid, subject: Uuid) -> Result<Option<LedgerRow>> {
        self.read(|c| read::ledger_entry(c, tenant, subject))
    }

    async fn subject_ids(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Uuid>> {
        self.scan(move |c| read::subject_ids(c, tenant, after, limit))
            .await
    }

    async fn keyed_subjects(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<SubjectRow>> {
        self.scan(move |c| read::keys::keyed_subjects(c, tenant, after, limit))
            .await
    }

    async fn live_holds(&self, tenant: Uuid) -> Result<Vec<HoldRow>> {
        self.read(|c| read::rights::live_holds(c, tenant))
    }

    async fn retired_keys(&self, tenant: Uuid, subject: Uuid) -> Result<Vec<RetiredKeyRow>> {
        self.read(|c| read::keys::retired_keys(c, tenant, subject))
    }

    async fn subjects_with_retired_keys(&self, tenant: Uuid, limit: u32) -> Result<Vec<Uuid>> {
        self.scan(move |c| read::keys::subjects_with_retired_keys(c, tenant, limit))
            .await
    }

    async fn retired_key_count(&self, tenant: Option<Uuid>) -> Result<u64> {
        self.scan(move |c| read::keys::retired_key_count(c, tenant))
            .await
    }

    async fn records_of_subjects(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        through: Uuid,
    ) -> Result<Vec<RecordRow>> {
        self.scan(move |c| read::records_of_subjects(c, tenant, after, through))
            .await
    }

    async fn record_count(&self, tenant: Uuid) -> Result<u64> {
        self.scan(move |c| read::record_count(c, tenant)).await
    }

    async fn stats(&self) -> Result<crate::StoreStats> {
        self.scan(read::stats).await
    }

    async fn key_jobs(&self, status: Option<&str>) -> Result<Vec<KeyJobRow>> {
        let status = status.map(str::to_owned);
        self.scan(move |c| read::keys::key_jobs(c, status)).await
    }

    async fn request(&self, tenant: Uuid, id: Uuid) -> Result<Option<RequestRow>> {
        self.read(|c| read::rights::request(c, tenant, id))
    }

    async fn requests(&self, tenant: Uuid, status: Option<&str>) -> Result<Vec<RequestRow>> {
        self.read(|c| read::rights::requests(c, tenant, status))
    }

    async fn requests_in_clear(&self, sealed_prefix: &str) -> Result<Vec<RequestRow>> {
        self.read(|c| read::rights::requests_in_clear(c, sealed_prefix))
    }

    async fn export_sections(
        &self,
        stream: SnapshotStream,
        reuse: &crate::ReusePlan,
        out: mpsc::Sender<crate::DumpPiece>,
    ) -> Result<SnapshotSummary> {
        let path = self.readers.path.clone();
        let reuse = reuse.clone();
        join(
            tokio::task::spawn_blocking(move || snapshot::export(&path, stream, &reuse, &out))
                .await,
        )
    }

    async fn import_snapshot(
        &self,
        stream: SnapshotStream,
        mut input: mpsc::Receiver<bytes::Bytes>,
    ) -> Result<SnapshotSummary> {
        self.exclusive(move |conn, audit| snapshot::import(conn, audit, stream, &mut input))
            .await
    }

    async fn reconcile_restore(&self) -> Result<Reconciliation> {
        self.exclusive(|conn, _| snapshot::reconcile_restore(conn))
            .await
    }

    async fn user_by_email_hash(&self, hash: &[u8; 32]) -> Result<Option<UserRow>> {
        self.read(|c| people::user_by_email_hash(c, hash))
    }

    async fn user(&self, id: Uuid) -> Result<Option<UserRow>> {
        self.read(|c| people::user(c, id))
    }

    async fn users(&self) -> Result<Vec<UserRow>> {
        self.scan(people::users).await
    }

    async fn unused_recovery_codes(&self, user: Uuid) -> Result<u32> {
        self.read(|c| people::unused_recovery_codes(c, user))
    }

    async fn session_by_hash(&self, hash: &[u8; 32]) -> Result<Option<SessionRow>> {
        self.read(|c| people::session_by_hash(c, hash))
    }

    async fn sessions_of(&self, user: Uuid) -> Result<Vec<SessionRow>> {
        self.read(|c| people::sessions_of(c, user))
    }

    async fn support_grant(&self, tenant: Uuid, id: Uuid) -> Result<Option<SupportGrantRow>> {
        self.read(|c| people::support_grant(c, tenant, id))
    }

    async fn support_grants(&self, tenant: Uuid) -> Result<Vec<SupportGrantRow>> {
        self.read(|c| people::support_grants(c, tenant))
    }

    async fn open_grants_of(&self, user: Uuid) -> Result<Vec<SupportGrantRow>> {
        self.read(|c| people::open_grants_of(c, user))
    }

    async fn memberships_of(&self, user: Uuid) -> Result<Vec<MembershipRow>> {
        self.read(|c| people::memberships_of(c, user))
    }

    async fn memberships(&self, tenant: Uuid) -> Result<Vec<MembershipRow>> {
        self.read(|c| people::memberships(c, tenant))
    }

    async fn alert(&self, id: Uuid) -> Result<Option<AlertRow>> {
        self.read(|c| alerts::alert(c, id))
    }

    async fn live_alert(&self, rule: &str, scope: &str) -> Result<Option<AlertRow>> {
        self.read(|c| alerts::live_alert(c, rule, scope))
    }

    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRow>> {
        let query = query.clone();
        self.scan(move |c| alerts::alerts(c, &query)).await
    }

    async fn open_alert_counts(&self) -> Result<Vec<(String, String, u64)>> {
        self.scan(alerts::open_alert_counts).await
    }

    async fn webhook(&self, id: Uuid) -> Result<Option<crate::WebhookRow>> {
        self.read(|c| webhooks::webhook(c, id))
    }

    async fn webhooks(&self, tenant: Option<Uuid>) -> Result<Vec<crate::WebhookRow>> {
        self.read(|c| webhooks::webhooks(c, tenant))
    }

    async fn webhook_delivery(&self, id: Uuid) -> Result<Option<crate::DeliveryRow>> {
        self.read(|c| webhooks::webhook_delivery(c, id))
    }

    async fn webhook_deliveries(
        &self,
        query: &crate::DeliveryQuery,
    ) -> Result<Vec<crate::DeliveryRow>> {
        let query = query.clone();
        self.scan(move |c| webhooks::webhook_deliveries(c, &query))
            .await
    }

    async fn due_webhook_deliveries(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<crate::DeliveryRow>> {
        self.scan(move |c| webhooks::due_webhook_deliveries(c, now, limit))
            .await
    }

    async fn webhook_outbox_pending(&self) -> Result<u64> {
        self.scan(webhooks::webhook_outbox_pending).await
    }

    async fn incident(&self, id: Uuid) -> Result<Option<crate::IncidentView>> {
        self.scan(move |c| incidents::incident(c, id)).await
    }

    async fn incidents(
        &self,
        scope: crate::IncidentScope,
        limit: u32,
    ) -> Result<Vec<crate::IncidentRow>> {
        self.scan(move |c| incidents::incidents(c, scope, limit))
            .await
    }
}

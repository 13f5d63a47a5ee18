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

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Params, Row, ToSql, TransactionBehavior, ffi, params,
    params_from_iter,
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;
use ward_audit::{Frontier, Hash, chain_hash, leaf_hash};

mod recovery;
mod snapshot;

use crate::{
    AlertQuery, AlertRow, ApiKeyRow, AuditHead, AuditPage, AuditQuery, AuditRow, CheckpointRow,
    Committed, Conflict, ExpiredRecord, HeldRecordRow, HoldRow, InvitationRow, KeyJobRow, KeyOwner,
    KeysRewrapped, LedgerRow, MembershipRow, Op, Reconciliation, RecordFilter, RecordRow,
    RequestRow, Result, RetiredKeyRow, Rewrapper, SessionRow, SnapshotStream, SnapshotSummary,
    Store, StoreError, SubjectRow, SubjectView, SupportGrantRow, TenantRow, TenantStatus, UserRow,
    WrappedKey, from_micros, to_micros,
};

/// Most requests one group commit takes; bounds the latency a batch adds to its first member.
const MAX_BATCH: usize = 512;

/// How long a connection waits for a lock before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection (the store uses fewer distinct statements).
const STATEMENT_CACHE: usize = 128;

/// Each connection's page cache, in KiB (why not more: see `connect`).
const CACHE_KIB: u32 = 8 << 10;

/// Idle read connections kept open; more are opened on demand under load.
const IDLE_READERS: usize = 8;

/// The migrations, applied in order at open. A migration is never edited once released.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "rights retention",
        include_str!("../migrations/sqlite/0002_rights_retention.sql"),
    ),
    (
        3,
        "record rotation",
        include_str!("../migrations/sqlite/0003_record_rotation.sql"),
    ),
    (
        4,
        "audit index at",
        include_str!("../migrations/sqlite/0004_audit_index_at.sql"),
    ),
    (
        5,
        "audit subject chunks",
        include_str!("../migrations/sqlite/0005_audit_subject_chunks.sql"),
    ),
    (
        6,
        "invitations",
        include_str!("../migrations/sqlite/0006_invitations.sql"),
    ),
    (
        7,
        "people",
        include_str!("../migrations/sqlite/0007_people.sql"),
    ),
    (
        8,
        "alerts",
        include_str!("../migrations/sqlite/0008_alerts.sql"),
    ),
    (
        9,
        "memberships",
        include_str!("../migrations/sqlite/0009_memberships.sql"),
    ),
    (
        10,
        "webhooks",
        include_str!("../migrations/sqlite/0010_webhooks.sql"),
    ),
    (
        11,
        "incidents",
        include_str!("../migrations/sqlite/0011_incidents.sql"),
    ),
    (
        12,
        "dump marks",
        include_str!("../migrations/sqlite/0012_dump_marks.sql"),
    ),
    (
        13,
        "audit tail",
        include_str!("../migrations/sqlite/0013_audit_tail.sql"),
    ),
    (
        14,
        "api key expiry",
        include_str!("../migrations/sqlite/0014_api_key_expiry.sql"),
    ),
];

/// The migrations this Ward applies to an SQLite database.
pub(crate) fn known_migrations() -> Vec<crate::schema::Migration> {
    MIGRATIONS
        .iter()
        .map(|(version, description, _)| crate::schema::Migration {
            version: *version,
            description,
        })
        .collect()
}

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
        let lock = lock.share()?;
        let (tx, rx) = mpsc::channel(4096);
        std::thread::Builder::new()
            .name("ward-sqlite-writer".into())
            .spawn(move || run_writer(conn, rx, audit))
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

/// The read-only connections.
/// The advisory lock every open store holds on `<database>.lock`, so that start-up repair
/// ([`recovery`]) runs only when no other process has the database open. A write in flight
/// in a running `ward serve` is, for a moment, in the data file and not yet in the key store:
/// exactly what a crash leaves. Repair must not "finish" it, so an admin command opened beside
/// a server (which holds its shared lock) skips the repair; only a process that finds nobody
/// else (after a crash, the kernel dropped the dead process's lock) repairs.
struct OpenLock {
    file: std::fs::File,
    path: PathBuf,
    /// Whether the exclusive lock was had: no other process has the database open.
    alone: bool,
}

impl OpenLock {
    fn take(database: &Path) -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let failed = |source| StoreError::Lock {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(failed)?;
        // A lock file copied in with a data directory keeps the copy's mode; the data
        // directory's files are the owner's only.
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(failed)?;
        }
        let alone = match file.try_lock() {
            Ok(()) => true,
            Err(std::fs::TryLockError::WouldBlock) => false,
            Err(std::fs::TryLockError::Error(e)) => return Err(failed(e)),
        };
        Ok(Self { file, path, alone })
    }

    /// Trades the exclusive lock (if held) for the shared one every open store holds.
    fn share(self) -> Result<std::fs::File> {
        let failed = |source| StoreError::Lock {
            path: self.path.clone(),
            source,
        };
        if self.alone {
            self.file.unlock().map_err(failed)?;
        }
        self.file.lock_shared().map_err(failed)?;
        Ok(self.file)
    }
}

struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// The shared [`OpenLock`], released when the last handle of the store is dropped (the
    /// writer then only finishes what it was given).
    _lock: std::fs::File,
}

impl Readers {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => connect(&self.path, Access::Read)?,
        };
        let out = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        out
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// Opens a connection with the store's pragmas and the key store attached as `keys`.
fn connect(path: &Path, access: Access) -> Result<Connection> {
    let flags = match access {
        Access::Read => OpenFlags::SQLITE_OPEN_READ_ONLY,
        Access::Write => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // FULL: an acknowledged commit survives power loss, not just a process crash.
    // secure_delete: rectified and deleted ciphertext is overwritten, not left in free pages;
    // a corrected value must not be recoverable from the file with the live key.
    // An 8 MiB page cache (SQLite's default is 2 MiB), not more: when a b-tree split reorders
    // sibling pages, SQLite parks a page at a temporary number past 1 GiB, and the commit that
    // follows scans the cache's whole hash table to drop it. With a 64 MiB writer cache that
    // scan cost a commit about a millisecond (a fifth of the writer's time on audited reads);
    // the pages a larger cache would keep are in the OS page cache anyway.
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; \
         PRAGMA cache_size = -{CACHE_KIB};"
    ))?;
    if access == Access::Write {
        // Checkpointing every 4,000 pages (16 MiB of WAL) rather than SQLite's default 1,000
        // copies a page rewritten by many commits once instead of four times.
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 4000;")?;
    }
    let keys_path = path.with_extension("keys.db");
    conn.execute(
        "ATTACH DATABASE ?1 AS keys",
        [keys_path.to_string_lossy().as_ref()],
    )?;
    // The key store: WAL like the data file, and secure_delete so a destroyed key's bytes are
    // overwritten in the file rather than left in a free page.
    conn.execute_batch("PRAGMA keys.synchronous = FULL; PRAGMA keys.secure_delete = ON;")?;
    if access == Access::Write {
        conn.execute_batch("PRAGMA keys.journal_mode = WAL;")?;
    }
    Ok(conn)
}

/// Applies the migrations not applied yet, all in one transaction.
///
/// Versions are kept in `_ward_migrations`. A database first migrated by the sqlx-based store
/// has `_sqlx_migrations` instead; its successful versions count as applied.
fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS _ward_migrations (version INTEGER PRIMARY KEY, \
         description TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )?;
    let from_sqlx: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
         AND name = '_sqlx_migrations')",
        [],
        |r| r.get(0),
    )?;
    if from_sqlx {
        tx.execute(
            "INSERT OR IGNORE INTO _ward_migrations (version, description, applied_at) \
             SELECT version, description, 0 FROM _sqlx_migrations WHERE success",
            [],
        )?;
    }
    let applied: HashSet<i64> = {
        let mut stmt = tx.prepare("SELECT version FROM _ward_migrations")?;
        stmt.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    crate::schema::SchemaStatus {
        applied: applied.iter().copied().collect(),
        known: known_migrations(),
    }
    .refuse_newer()?;
    let now = to_micros(time::OffsetDateTime::now_utc());
    for (version, description, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO _ward_migrations (version, description, applied_at) VALUES (?1, ?2, ?3)",
            params![version, description, now],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The in-memory tail of the audit log: what the next append needs.
#[derive(Clone)]
struct AuditState {
    frontier: Frontier,
    chain: Hash,
}

impl AuditState {
    /// The tail as the last group commit stored it (`audit_tail`), when it still describes
    /// the log: its size is one past the newest event's index and its chain value is that
    /// event's. Else (a store written before the table existed, an import, another
    /// process's commit that did not store it) rebuilt from the newest checkpoint's frontier
    /// plus the events after it, which reads every event since that checkpoint.
    fn load(conn: &Connection) -> Result<Self> {
        if let Some(stored) = Self::stored(conn)? {
            return Ok(stored);
        }
        Self::rebuild(conn)
    }

    fn stored(conn: &Connection) -> Result<Option<Self>> {
        let tail: Option<(i64, Vec<u8>, Vec<u8>)> = conn
            .query_row(
                "SELECT size, chain, frontier FROM audit_tail WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((size, chain, frontier)) = tail else {
            return Ok(None);
        };
        let newest: Option<(i64, Vec<u8>)> = conn
            .query_row(
                "SELECT idx, chain FROM audit_events ORDER BY idx DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((idx, newest_chain)) = newest else {
            return Ok(None);
        };
        let (Ok(chain), Ok(frontier)) = (
            Hash::try_from(chain.as_slice()),
            Frontier::from_bytes(&frontier),
        ) else {
            return Ok(None);
        };
        let fits = size == idx + 1
            && frontier.size() == size as u64
            && newest_chain.as_slice() == chain.as_slice();
        Ok(fits.then_some(Self { frontier, chain }))
    }

    /// Stores the tail in the current transaction, for the next [`AuditState::load`].
    fn store(&self, conn: &Connection) -> Result<()> {
        conn.prepare_cached(
            "INSERT INTO audit_tail (id, size, chain, frontier) VALUES (1, ?1, ?2, ?3) \
             ON CONFLICT (id) DO UPDATE SET size = excluded.size, chain = excluded.chain, \
             frontier = excluded.frontier",
        )?
        .execute(params![
            self.frontier.size() as i64,
            self.chain.as_slice(),
            self.frontier.to_bytes()
        ])?;
        Ok(())
    }

    /// Rebuilds the tail from the newest checkpoint's frontier plus the events after it.
    fn rebuild(conn: &Connection) -> Result<Self> {
        let (min_idx, count): (Option<i64>, i64) =
            conn.query_row("SELECT MIN(idx), COUNT(*) FROM audit_events", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let mut state = Self {
            frontier: Frontier::new(),
            chain: [0; 32],
        };
        let first = min_idx.unwrap_or(0).max(0) as u64;
        let mut from = 0u64;
        if first > 0 || count > 0 {
            // After pruning, resume from the checkpoint at the prune boundary.
            let cp: Option<(i64, Vec<u8>, String)> = conn
                .query_row(
                    "SELECT tree_size, frontier, checkpoint FROM audit_checkpoints \
                     WHERE tree_size <= (SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_events) \
                     AND tree_size >= ?1 ORDER BY tree_size DESC LIMIT 1",
                    [first as i64],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            if let Some((size, frontier, checkpoint)) = cp
                && size as u64 >= first
                && size > 0
            {
                let cp: ward_audit::Checkpoint = serde_json::from_str(&checkpoint)
                    .map_err(|e| StoreError::Corrupt(format!("checkpoint: {e}")))?;
                state.frontier = Frontier::from_bytes(&frontier)
                    .map_err(|e| StoreError::Corrupt(format!("frontier: {e}")))?;
                state.chain = cp
                    .chain_hash()
                    .map_err(|e| StoreError::Corrupt(format!("checkpoint: {e}")))?;
                from = size as u64;
            }
            if from == 0 && first > 0 {
                return Err(StoreError::Corrupt(format!(
                    "audit log starts at {first} but no checkpoint covers the pruned prefix"
                )));
            }
        }
        let mut stmt =
            conn.prepare("SELECT event FROM audit_events WHERE idx >= ?1 ORDER BY idx")?;
        let mut rows = stmt.query([from as i64])?;
        while let Some(row) = rows.next()? {
            state.append(blob_at(row, 0)?);
        }
        Ok(state)
    }

    fn append(&mut self, event: &[u8]) -> (u64, Hash) {
        self.append_leaf(leaf_hash(event))
    }

    fn append_leaf(&mut self, leaf: Hash) -> (u64, Hash) {
        let idx = self.frontier.size();
        self.frontier.push(leaf);
        self.chain = chain_hash(&self.chain, &leaf);
        (idx, self.chain)
    }

    fn head(&self) -> AuditHead {
        AuditHead {
            size: self.frontier.size(),
            root: self.frontier.root(),
            chain: self.chain,
            frontier: self.frontier.to_bytes(),
        }
    }
}

// ---- the writer -----------------------------------------------------------------------------

/// The writer thread: takes the first waiting job, drains what else is waiting, commits it all.
/// Ends when every store handle is dropped.
fn run_writer(mut conn: Connection, mut rx: mpsc::Receiver<Job>, mut audit: AuditState) {
    let mut seen = data_version(&conn).unwrap_or(0);
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut batch = Vec::with_capacity(jobs.len());
        for job in jobs {
            match job {
                Job::Exclusive(work) => {
                    if !batch.is_empty() {
                        group_commit(&mut conn, &mut audit, &mut seen, std::mem::take(&mut batch));
                    }
                    work(&mut conn, &mut audit);
                }
                job => batch.push(job),
            }
        }
        if !batch.is_empty() {
            group_commit(&mut conn, &mut audit, &mut seen, batch);
        }
    }
}

type Reply = oneshot::Sender<Result<Committed>>;

/// A request waiting in a group commit.
type Request = (Vec<Op>, Vec<Encoded>, Reply);

/// Runs a statement without parameters or results (transaction control).
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// SQLite's count of commits made by *other* connections to the main database (this
/// connection's own commits leave it unchanged).
fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("PRAGMA main.data_version")?
        .query_row([], |r| r.get(0))
}

/// Makes the in-memory audit tail current when another process committed since this writer
/// last held the lock: an admin command (`ward user add`, `ward backup run`, `ward retention
/// run`) run beside `ward serve` on the same file appends audit events too, and an append on
/// a stale frontier would collide with them. Called with the write lock held (`BEGIN
/// IMMEDIATE`), so nobody can commit between the check and the append; costs one pragma,
/// no I/O, when nothing changed.
fn catch_up(conn: &Connection, audit: &mut AuditState, seen: &mut i64) -> Result<()> {
    let now = data_version(conn)?;
    if now != *seen {
        *audit = AuditState::load(conn)?;
        *seen = now;
    }
    Ok(())
}

/// Commits a batch of jobs in one transaction.
fn group_commit(conn: &mut Connection, audit: &mut AuditState, seen: &mut i64, jobs: Vec<Job>) {
    let mut commits = Vec::with_capacity(jobs.len());
    let mut heads = Vec::new();
    for job in jobs {
        match job {
            Job::Commit(ops, events, reply) => commits.push((ops, events, reply)),
            Job::Head(reply) => heads.push(reply),
            // `run_writer` hands these over on their own; one that gets here runs first.
            Job::Exclusive(work) => work(conn, audit),
        }
    }
    if commits.is_empty() {
        // One read transaction, so the tail is read from one consistent state.
        if exec(conn, "BEGIN").is_ok() {
            if let Err(e) = catch_up(conn, audit, seen) {
                tracing::error!(error = %e, "reading the audit tail another process appended to");
            }
            let _ = exec(conn, "COMMIT");
        }
        for reply in heads {
            let _ = reply.send(audit.head());
        }
        return;
    }
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let msg = e.to_string();
        for (_, _, reply) in commits {
            let _ = reply.send(Err(StoreError::Conflict(Conflict::Interrupted(format!(
                "could not begin: {msg}"
            )))));
        }
        return;
    }
    if let Err(e) = catch_up(conn, audit, seen) {
        let _ = exec(conn, "ROLLBACK");
        let msg = e.to_string();
        for (_, _, reply) in commits {
            let _ = reply.send(Err(StoreError::Conflict(Conflict::Interrupted(format!(
                "could not read the audit tail another process appended to: {msg}"
            )))));
        }
        return;
    }
    let before = audit.clone();
    let shreds = commits.iter().any(|(ops, _, _)| {
        ops.iter().any(|op| {
            matches!(
                op,
                Op::EraseSubject { .. }
                    | Op::ShredHold { .. }
                    | Op::DestroyTenant { .. }
                    | Op::DestroyRetiredKeys { .. }
            )
        })
    });
    let mut results: Vec<(Reply, Result<Committed>)> = Vec::with_capacity(commits.len());
    // Fast path: every request's ops in a row, audit events gathered into multi-row inserts.
    // Requests were validated before they got here, so this almost always succeeds; if any op
    // fails, the whole attempt is rolled back and the batch replayed with a savepoint per
    // request, so the failure stays with its own request.
    match fast_path(conn, audit, &commits) {
        Ok(done) => {
            for ((_, _, reply), committed) in commits.into_iter().zip(done) {
                results.push((reply, Ok(committed)));
            }
        }
        Err(_) => {
            let restarted = exec(conn, "ROLLBACK").and_then(|()| exec(conn, "BEGIN IMMEDIATE"));
            if let Err(e) = restarted {
                let msg = e.to_string();
                for (_, _, reply) in commits {
                    let _ = reply.send(Err(StoreError::Conflict(Conflict::Interrupted(format!(
                        "could not restart: {msg}"
                    )))));
                }
                return;
            }
            for (ops, events, reply) in commits {
                let outcome = apply_in_savepoint(conn, audit, &ops, &events);
                results.push((reply, outcome));
            }
        }
    }
    if audit.frontier.size() != before.frontier.size()
        && let Err(e) = audit.store(conn)
    {
        // Harmless: a stored tail that does not match the log is rebuilt from the events.
        tracing::warn!(error = %e, "storing the audit tail");
    }
    if let Err(e) = exec(conn, "COMMIT") {
        tracing::error!(error = %e, "group commit failed; every request in the batch fails");
        let _ = exec(conn, "ROLLBACK");
        *audit = before;
        let msg = e.to_string();
        for (reply, _) in results {
            let _ = reply.send(Err(StoreError::Conflict(Conflict::Interrupted(format!(
                "commit failed: {msg}"
            )))));
        }
    } else {
        if shreds {
            // Push destroyed keys out of the key store's WAL into the (secure-deleted) file and
            // truncate the WAL, so no old page image of a destroyed key stays on disk.
            if let Err(e) = conn.query_row("PRAGMA keys.wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "key store checkpoint after shredding failed");
            }
        }
        for (reply, outcome) in results {
            let _ = reply.send(outcome);
        }
    }
    for reply in heads {
        let _ = reply.send(audit.head());
    }
}

/// An audit event encoded by the requester, before it reaches the writer: serializing and
/// hashing it costs the writer nothing, and requests encode in parallel.
struct Encoded {
    at: i64,
    tenant: Option<Uuid>,
    subject: Option<Uuid>,
    actor: String,
    action: &'static str,
    outcome: &'static str,
    event: Vec<u8>,
    leaf: Hash,
}

impl Encoded {
    /// Encodes the audit events among `ops`, in order.
    fn all(ops: &[Op]) -> Vec<Self> {
        ops.iter()
            .filter_map(|op| match op {
                Op::Audit(event) => Some(Self::new(event)),
                _ => None,
            })
            .collect()
    }

    fn new(event: &ward_audit::AuditEvent) -> Self {
        let bytes = event.to_bytes();
        Self {
            at: to_micros(event.at),
            tenant: event.tenant,
            subject: event.subject,
            actor: event.actor.id.clone(),
            action: event.action.as_str(),
            outcome: event.outcome.as_str(),
            leaf: leaf_hash(&bytes),
            event: bytes,
        }
    }
}

/// An audit row ready to insert: an encoded event with its place in the log.
struct PendingAudit<'a> {
    idx: i64,
    chain: Hash,
    event: &'a Encoded,
}

impl<'a> PendingAudit<'a> {
    /// Appends `event` to the log tail `audit`.
    fn append(event: &'a Encoded, audit: &mut AuditState) -> Self {
        let (idx, chain) = audit.append_leaf(event.leaf);
        Self {
            idx: idx as i64,
            chain,
            event,
        }
    }

    fn params(&self) -> [&dyn ToSql; 9] {
        let e = self.event;
        [
            &self.idx,
            &e.at,
            &e.tenant,
            &e.subject,
            &e.actor,
            &e.action,
            &e.outcome,
            &e.event,
            &self.chain,
        ]
    }
}

const AUDIT_INSERT: &str = "INSERT INTO audit_events (idx, at, tenant, subject, actor, action, \
    outcome, event, chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// Rows per multi-row audit insert (9 parameters each, well under SQLite's limit).
const AUDIT_ROWS_PER_INSERT: usize = 64;

/// The multi-row audit insert, built once.
fn audit_insert_many() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
        let rows = vec![row; AUDIT_ROWS_PER_INSERT].join(", ");
        format!(
            "INSERT INTO audit_events (idx, at, tenant, subject, actor, action, outcome, event, \
             chain) VALUES {rows}"
        )
    })
}

/// Inserts audit rows: full chunks through the cached multi-row statement, the rest one by one.
fn insert_audit(conn: &Connection, pending: &[PendingAudit<'_>]) -> Result<()> {
    let mut chunks = pending.chunks_exact(AUDIT_ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut stmt = conn.prepare_cached(audit_insert_many())?;
        let mut values: Vec<&dyn ToSql> = Vec::with_capacity(9 * AUDIT_ROWS_PER_INSERT);
        for chunk in &mut chunks {
            values.clear();
            values.extend(chunk.iter().flat_map(PendingAudit::params));
            stmt.execute(values.as_slice())?;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut stmt = conn.prepare_cached(AUDIT_INSERT)?;
        for p in rest {
            stmt.execute(&p.params()[..])?;
        }
    }
    Ok(())
}

fn fast_path(
    conn: &Connection,
    audit: &mut AuditState,
    commits: &[Request],
) -> Result<Vec<Committed>> {
    let mut staged = audit.clone();
    let mut pending = Vec::new();
    let mut out = Vec::with_capacity(commits.len());
    for (ops, events, _) in commits {
        let mut committed = Committed::default();
        let mut events = events.iter();
        for op in ops {
            match op {
                Op::Audit(_) => {
                    let row = PendingAudit::append(next_event(&mut events)?, &mut staged);
                    committed.audit_indices.push(row.idx as u64);
                    pending.push(row);
                }
                other => apply(conn, &mut staged, &mut committed, other, &mut events)?,
            }
        }
        out.push(committed);
    }
    insert_audit(conn, &pending)?;
    *audit = staged;
    Ok(out)
}

fn apply_in_savepoint(
    conn: &Connection,
    audit: &mut AuditState,
    ops: &[Op],
    events: &[Encoded],
) -> Result<Committed> {
    exec(conn, "SAVEPOINT request")?;
    let mut staged = audit.clone();
    let mut committed = Committed::default();
    let mut events = events.iter();
    let mut result = Ok(());
    for op in ops {
        result = apply(conn, &mut staged, &mut committed, op, &mut events);
        if result.is_err() {
            break;
        }
    }
    match result {
        Ok(()) => {
            exec(conn, "RELEASE request")?;
            *audit = staged;
            Ok(committed)
        }
        Err(e) => {
            exec(conn, "ROLLBACK TO request")?;
            exec(conn, "RELEASE request")?;
            Err(e)
        }
    }
}

fn unique_to_conflict(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| match e.sqlite_error().map(|f| f.extended_code) {
        Some(ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
            StoreError::Conflict(Conflict::Exists(what))
        }
        Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::NotFound(what),
        _ => StoreError::Sqlite(e),
    }
}

/// Runs a cached write statement and returns how many rows it changed.
fn run<P: Params>(conn: &Connection, sql: &str, params: P) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// A key wrapped under tenant key `version` may only be stored while that is the tenant's
/// current version, or a rotation committed meanwhile would strand it.
fn assert_tenant_key(conn: &Connection, tenant: Uuid, version: u32) -> Result<()> {
    let current: Option<i64> = conn
        .prepare_cached("SELECT key_version FROM keys.tenant_keys WHERE tenant = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?;
    if current != Some(i64::from(version)) {
        return Err(StoreError::Conflict(Conflict::KeyRotated));
    }
    Ok(())
}

/// Tenant key rotation inside the rotating commit: every key not yet under `key_version` is
/// rewrapped. The writer thread is the only writer, so nothing can slip in meanwhile.
fn rewrap_tenant_keys(
    conn: &Connection,
    tenant: Uuid,
    key_version: u32,
    rewrap: &Rewrapper,
) -> Result<KeysRewrapped> {
    // Each table's keys: (owner id, subject key version, wrapped key, tenant key version).
    let rewrap_table = |select: &str,
                        owner: fn(Uuid) -> KeyOwner,
                        update: &str,
                        mirror: Option<&str>|
     -> Result<u64> {
        let stale: Vec<(Uuid, u32, Vec<u8>, u32)> = conn
            .prepare_cached(select)?
            .query_map(params![tenant, key_version], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (id, version, wrapped, old) in &stale {
            let key = rewrap.rewrap(WrappedKey {
                owner: owner(*id),
                key_version: *old,
                wrapped,
            })?;
            run(conn, update, params![key, tenant, id, version, key_version])?;
            if let Some(mirror) = mirror {
                run(conn, mirror, params![key_version, tenant, id])?;
            }
        }
        Ok(stale.len() as u64)
    };
    Ok(KeysRewrapped {
        subjects: rewrap_table(
            "SELECT subject, version, wrapped_key, key_version FROM keys.subject_keys \
             WHERE tenant = ?1 AND key_version <> ?2",
            KeyOwner::Subject,
            "UPDATE keys.subject_keys SET wrapped_key = ?1, key_version = ?5 \
             WHERE tenant = ?2 AND subject = ?3 AND version = ?4",
            Some("UPDATE subjects SET key_version = ?1 WHERE tenant = ?2 AND id = ?3"),
        )?,
        retired_subject_keys: rewrap_table(
            "SELECT subject, version, wrapped_key, key_version FROM keys.retired_subject_keys \
             WHERE tenant = ?1 AND key_version <> ?2",
            KeyOwner::RetiredSubjectKey,
            "UPDATE keys.retired_subject_keys SET wrapped_key = ?1, key_version = ?5 \
             WHERE tenant = ?2 AND subject = ?3 AND version = ?4",
            None,
        )?,
        holds: rewrap_table(
            // Hold keys have no version of their own; 0 keeps the statement shapes alike.
            "SELECT hold, 0, wrapped_key, key_version FROM keys.hold_keys \
             WHERE tenant = ?1 AND key_version <> ?2",
            KeyOwner::Hold,
            "UPDATE keys.hold_keys SET wrapped_key = ?1, key_version = ?5 \
             WHERE tenant = ?2 AND hold = ?3 AND ?4 = 0",
            Some("UPDATE holds SET key_version = ?1 WHERE tenant = ?2 AND id = ?3"),
        )?,
    })
}

/// Like [`run`], failing with `NotFound(what)` when no row changed.
fn run_one<P: Params>(conn: &Connection, what: &'static str, sql: &str, params: P) -> Result<()> {
    if run(conn, sql, params)? == 0 {
        return Err(StoreError::NotFound(what));
    }
    Ok(())
}

/// The encoded form of a request's next audit event (encoded from the same ops, so present).
fn next_event<'a>(events: &mut std::slice::Iter<'a, Encoded>) -> Result<&'a Encoded> {
    events
        .next()
        .ok_or_else(|| StoreError::Corrupt("audit event without its encoding".into()))
}

fn apply(
    conn: &Connection,
    audit: &mut AuditState,
    committed: &mut Committed,
    op: &Op,
    events: &mut std::slice::Iter<'_, Encoded>,
) -> Result<()> {
    match op {
        Op::InsertTenant(t) => {
            run(
                conn,
                "INSERT INTO tenants (id, name, status, region, root_key_version, \
                 key_version, settings, created_at, status_changed_at, destroy_after) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    t.id,
                    t.name,
                    t.status.as_str(),
                    t.region,
                    t.root_key_version,
                    t.key_version,
                    t.settings,
                    to_micros(t.created_at),
                    to_micros(t.status_changed_at),
                    t.destroy_after.map(to_micros),
                ],
            )
            .map_err(unique_to_conflict("tenant"))?;
            if let Some(key) = &t.wrapped_key {
                run(
                    conn,
                    "INSERT INTO keys.tenant_keys (tenant, wrapped_key, root_key_version, \
                     key_version) VALUES (?1, ?2, ?3, ?4)",
                    params![t.id, key, t.root_key_version, t.key_version],
                )
                .map_err(unique_to_conflict("tenant"))?;
            }
        }
        Op::SetTenantStatus {
            id,
            status,
            at,
            destroy_after,
        } => run_one(
            conn,
            "tenant",
            "UPDATE tenants SET status = ?1, status_changed_at = ?2, destroy_after = ?3 \
             WHERE id = ?4",
            params![
                status.as_str(),
                to_micros(*at),
                destroy_after.map(to_micros),
                id
            ],
        )?,
        Op::InsertApiKey(k) => {
            run(
                conn,
                "INSERT INTO api_keys (id, tenant, token_hash, name, role, purposes, created_at, \
                 revoked_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    k.id,
                    k.tenant,
                    k.token_hash,
                    k.name,
                    k.role,
                    k.purposes,
                    to_micros(k.created_at),
                    k.revoked_at.map(to_micros),
                    k.expires_at.map(to_micros),
                ],
            )
            .map_err(unique_to_conflict("api key"))?;
        }
        Op::RevokeApiKey { tenant, id, at } => run_one(
            conn,
            "api key",
            "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND tenant IS ?3 \
             AND revoked_at IS NULL",
            params![to_micros(*at), id, tenant],
        )?,
        Op::InsertSubject(s) => {
            run(
                conn,
                "INSERT INTO subjects (tenant, id, external_ref, key_version, \
                 restrictions, hold_until, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    s.tenant,
                    s.id,
                    s.external_ref,
                    s.key_version,
                    s.restrictions,
                    s.hold_until.map(to_micros),
                    to_micros(s.created_at),
                ],
            )
            .map_err(unique_to_conflict("subject with this external_ref"))?;
            assert_tenant_key(conn, s.tenant, s.key_version)?;
            if let Some(key) = &s.wrapped_key {
                run(
                    conn,
                    "INSERT INTO keys.subject_keys (tenant, subject, wrapped_key, key_version, \
                     version) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![s.tenant, s.id, key, s.key_version, s.record_key_version],
                )
                .map_err(unique_to_conflict("subject"))?;
            }
        }
        Op::SetRestrictions {
            tenant,
            subject,
            restrictions,
        } => run_one(
            conn,
            "subject",
            "UPDATE subjects SET restrictions = ?1 WHERE tenant = ?2 AND id = ?3",
            params![restrictions, tenant, subject],
        )?,
        Op::InsertRecord { record: r, index } => {
            assert_subject_key(conn, r.tenant, r.subject, r.key_version)?;
            run(
                conn,
                "INSERT INTO records (tenant, subject, id, collection, ciphertext, key_version, \
                 revision, created_at, updated_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    r.tenant,
                    r.subject,
                    r.id,
                    r.collection,
                    r.ciphertext,
                    r.key_version,
                    r.revision,
                    to_micros(r.created_at),
                    to_micros(r.updated_at),
                    r.expires_at.map(to_micros),
                ],
            )
            .map_err(unique_to_conflict("subject"))?;
            insert_index(conn, r, index)?;
        }
        Op::UpdateRecord {
            record: r,
            expected_revision,
            index,
        } => {
            assert_subject_key(conn, r.tenant, r.subject, r.key_version)?;
            let done = run(
                conn,
                "UPDATE records SET ciphertext = ?1, key_version = ?2, revision = ?3, \
                 updated_at = ?4, expires_at = ?5 \
                 WHERE tenant = ?6 AND subject = ?7 AND id = ?8 AND revision = ?9",
                params![
                    r.ciphertext,
                    r.key_version,
                    r.revision,
                    to_micros(r.updated_at),
                    r.expires_at.map(to_micros),
                    r.tenant,
                    r.subject,
                    r.id,
                    expected_revision,
                ],
            )?;
            if done == 0 {
                return Err(StoreError::Conflict(Conflict::Stale));
            }
            delete_index(conn, r.tenant, r.subject, r.id)?;
            insert_index(conn, r, index)?;
        }
        Op::DeleteRecords { records } => {
            // One cached statement per row: with no per-statement overhead this is as fast as
            // a set-based delete, and needs no statement per list length.
            let mut index = conn.prepare_cached(
                "DELETE FROM blind_index WHERE tenant = ?1 AND subject = ?2 AND record = ?3",
            )?;
            let mut rows = conn.prepare_cached(
                "DELETE FROM records WHERE tenant = ?1 AND subject = ?2 AND id = ?3",
            )?;
            for (t, s, r) in records {
                index.execute(params![t, s, r])?;
                rows.execute(params![t, s, r])?;
            }
        }
        Op::DeleteRecord {
            tenant,
            subject,
            id,
        } => {
            run_one(
                conn,
                "record",
                "DELETE FROM records WHERE tenant = ?1 AND subject = ?2 AND id = ?3",
                params![tenant, subject, id],
            )?;
            delete_index(conn, *tenant, *subject, *id)?;
        }
        Op::AnonymizeRecord { record: r, at } => {
            run_one(
                conn,
                "record",
                "DELETE FROM records WHERE tenant = ?1 AND subject = ?2 AND id = ?3",
                params![r.tenant, r.subject, r.id],
            )?;
            delete_index(conn, r.tenant, r.subject, r.id)?;
            run(
                conn,
                "INSERT INTO anonymized_records (tenant, id, collection, ciphertext, key_version, \
                 created_at, anonymized_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    r.tenant,
                    r.id,
                    r.collection,
                    r.ciphertext,
                    r.key_version,
                    to_micros(r.created_at),
                    to_micros(*at),
                ],
            )?;
        }
        Op::PatchTenantSettings {
            id,
            path,
            value,
            expect,
        } => {
            let current: String = conn
                .query_row(
                    "SELECT settings FROM tenants WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or(StoreError::NotFound("tenant"))?;
            let settings = crate::settings_patch::patched(&current, path, value, expect.as_ref())?;
            run_one(
                conn,
                "tenant",
                "UPDATE tenants SET settings = ?1 WHERE id = ?2",
                params![settings, id],
            )?;
        }
        Op::ShiftExpiry {
            tenant,
            collection,
            by_micros,
        } => {
            run(
                conn,
                "UPDATE records SET expires_at = expires_at - ?1 \
                 WHERE tenant = ?2 AND collection = ?3 AND expires_at IS NOT NULL",
                params![by_micros, tenant, collection],
            )?;
        }
        Op::SetSubjectHold {
            tenant,
            subject,
            hold_until,
        } => run_one(
            conn,
            "subject",
            "UPDATE subjects SET hold_until = ?1 WHERE tenant = ?2 AND id = ?3 AND EXISTS \
             (SELECT 1 FROM keys.subject_keys k WHERE k.tenant = ?2 AND k.subject = ?3)",
            params![hold_until.map(to_micros), tenant, subject],
        )?,
        Op::EraseSubject { tenant, subject } => {
            // The key first: once it is gone, whatever else survives is undecryptable.
            for sql in [
                "DELETE FROM keys.subject_keys WHERE tenant = ?1 AND subject = ?2",
                "DELETE FROM keys.retired_subject_keys WHERE tenant = ?1 AND subject = ?2",
                "DELETE FROM blind_index WHERE tenant = ?1 AND subject = ?2",
                "DELETE FROM records WHERE tenant = ?1 AND subject = ?2",
            ] {
                run(conn, sql, params![tenant, subject])?;
            }
            run_one(
                conn,
                "subject",
                "UPDATE subjects SET external_ref = NULL, restrictions = '[]', \
                 hold_until = NULL WHERE tenant = ?1 AND id = ?2",
                params![tenant, subject],
            )?;
        }
        Op::InsertLedger(l) => {
            run(
                conn,
                "INSERT INTO erasure_ledger (id, tenant, subject, requested_by, erased_at, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    l.id,
                    l.tenant,
                    l.subject,
                    l.requested_by,
                    to_micros(l.erased_at),
                    l.detail,
                ],
            )?;
        }
        Op::InsertHold(h) => {
            run(
                conn,
                "INSERT INTO holds (tenant, id, subject, key_version, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    h.tenant,
                    h.id,
                    h.subject,
                    h.key_version,
                    to_micros(h.created_at)
                ],
            )?;
            if let Some(key) = &h.wrapped_key {
                assert_tenant_key(conn, h.tenant, h.key_version)?;
                run(
                    conn,
                    "INSERT INTO keys.hold_keys (tenant, hold, wrapped_key, key_version) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![h.tenant, h.id, key, h.key_version],
                )?;
            }
        }
        Op::InsertHeldRecord(h) => {
            run(
                conn,
                "INSERT INTO held_records (tenant, hold, id, collection, ciphertext, key_version, \
                 created_at, hold_until, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    h.tenant,
                    h.hold,
                    h.id,
                    h.collection,
                    h.ciphertext,
                    h.key_version,
                    to_micros(h.created_at),
                    to_micros(h.hold_until),
                    h.reason,
                ],
            )?;
        }
        Op::DeleteHeldRecord { tenant, id } => {
            run(
                conn,
                "DELETE FROM held_records WHERE tenant = ?1 AND id = ?2",
                params![tenant, id],
            )?;
        }
        Op::RewrapTenant {
            id,
            wrapped_key,
            root_key_version,
            key_version,
            expected_key_version,
        } => {
            let moved = run(
                conn,
                "UPDATE tenants SET root_key_version = ?1, key_version = ?2 \
                 WHERE id = ?3 AND key_version = ?4",
                params![root_key_version, key_version, id, expected_key_version],
            )?;
            if moved == 0 {
                return Err(StoreError::Conflict(Conflict::TenantKeyChanged));
            }
            run_one(
                conn,
                "tenant",
                "UPDATE keys.tenant_keys SET wrapped_key = ?1, root_key_version = ?3, \
                 key_version = ?4 WHERE tenant = ?2",
                params![wrapped_key, id, root_key_version, key_version],
            )?;
        }
        Op::RewrapTenantKeys {
            tenant,
            key_version,
            rewrap,
        } => committed.keys_rewrapped = rewrap_tenant_keys(conn, *tenant, *key_version, rewrap)?,
        Op::ShredHold { tenant, id } => {
            run(
                conn,
                "DELETE FROM keys.hold_keys WHERE tenant = ?1 AND hold = ?2",
                params![tenant, id],
            )?;
        }
        Op::InsertRequest(r) => {
            run(
                conn,
                "INSERT INTO requests (tenant, id, kind, subject, status, verified_by, detail, \
                 created_at, due_at, closed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    r.tenant,
                    r.id,
                    r.kind,
                    r.subject,
                    r.status,
                    r.verified_by,
                    r.detail,
                    to_micros(r.created_at),
                    to_micros(r.due_at),
                    r.closed_at.map(to_micros),
                ],
            )?;
        }
        Op::UpdateRequest {
            tenant,
            id,
            status,
            detail,
            closed_at,
        } => run_one(
            conn,
            "request",
            "UPDATE requests SET status = ?1, detail = ?2, closed_at = ?3 \
             WHERE tenant = ?4 AND id = ?5",
            params![status, detail, closed_at.map(to_micros), tenant, id],
        )?,
        Op::SealRequestText {
            tenant,
            id,
            old_verified_by,
            old_detail,
            verified_by,
            detail,
        } => {
            conn.prepare_cached(
                "UPDATE requests SET verified_by = ?1, detail = ?2 \
                 WHERE tenant = ?3 AND id = ?4 AND verified_by = ?5 AND detail = ?6",
            )?
            .execute(params![
                verified_by,
                detail,
                tenant,
                id,
                old_verified_by,
                old_detail
            ])?;
        }
        Op::DestroyTenant { id, at } => {
            for sql in [
                "DELETE FROM keys.subject_keys WHERE tenant = ?1",
                "DELETE FROM keys.retired_subject_keys WHERE tenant = ?1",
                "DELETE FROM key_jobs WHERE tenant = ?1",
                "DELETE FROM keys.hold_keys WHERE tenant = ?1",
                "DELETE FROM keys.tenant_keys WHERE tenant = ?1",
                "DELETE FROM blind_index WHERE tenant = ?1",
                "DELETE FROM records WHERE tenant = ?1",
                "DELETE FROM anonymized_records WHERE tenant = ?1",
                "DELETE FROM held_records WHERE tenant = ?1",
                "DELETE FROM holds WHERE tenant = ?1",
                "DELETE FROM requests WHERE tenant = ?1",
                "DELETE FROM subjects WHERE tenant = ?1",
                "DELETE FROM invitations WHERE tenant = ?1",
                "DELETE FROM memberships WHERE tenant = ?1",
            ] {
                run(conn, sql, [id])?;
            }
            run(
                conn,
                "UPDATE api_keys SET revoked_at = ?1 WHERE tenant = ?2 AND revoked_at IS NULL",
                params![to_micros(*at), id],
            )?;
            run_one(
                conn,
                "tenant",
                "UPDATE tenants SET status = 'destroyed', status_changed_at = ?1, \
                 destroy_after = NULL, settings = '{}' WHERE id = ?2",
                params![to_micros(*at), id],
            )?;
        }
        Op::PruneAudit { before } => {
            run(
                conn,
                "DELETE FROM audit_events WHERE idx < ?1",
                [*before as i64],
            )?;
        }
        Op::RotateSubjectKeys {
            tenant,
            tenant_key_version,
            keys,
        } => rotate_subject_keys(conn, *tenant, *tenant_key_version, keys)?,
        Op::ReencryptRecords { tenant, records } => {
            let mut stmt = conn.prepare_cached(
                "UPDATE records SET ciphertext = ?1, key_version = ?2 \
                 WHERE tenant = ?3 AND subject = ?4 AND id = ?5 AND revision = ?6",
            )?;
            for r in records {
                stmt.execute(params![
                    r.ciphertext,
                    r.key_version,
                    tenant,
                    r.subject,
                    r.id,
                    r.revision
                ])?;
            }
        }
        Op::DestroyRetiredKeys { tenant, subjects } => {
            // Only versions no record is sealed under any more: the records were committed
            // (data file) before this runs (key store).
            let mut stmt = conn.prepare_cached(
                "DELETE FROM keys.retired_subject_keys AS rk \
                 WHERE rk.tenant = ?1 AND rk.subject = ?2 AND NOT EXISTS \
                 (SELECT 1 FROM records r WHERE r.tenant = ?1 AND r.subject = ?2 \
                  AND r.key_version = rk.version)",
            )?;
            for s in subjects {
                stmt.execute(params![tenant, s])?;
            }
        }
        Op::InsertKeyJob(j) => {
            run(
                conn,
                "INSERT INTO key_jobs (id, tenant, status, cursor, subjects_done, records_done, \
                 records_total, started_at, updated_at, finished_at, lease_owner, lease_until, \
                 error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    j.id,
                    j.tenant,
                    j.status,
                    j.cursor,
                    j.subjects_done as i64,
                    j.records_done as i64,
                    j.records_total as i64,
                    to_micros(j.started_at),
                    to_micros(j.updated_at),
                    j.finished_at.map(to_micros),
                    j.lease_owner,
                    j.lease_until.map(to_micros),
                    j.error,
                ],
            )
            .map_err(unique_to_conflict("key job"))?;
        }
        Op::AdvanceKeyJob {
            id,
            owner,
            cursor,
            subjects,
            records,
            at,
            lease_until,
        } => {
            let done = run(
                conn,
                "UPDATE key_jobs SET cursor = COALESCE(?1, cursor), \
                 subjects_done = subjects_done + ?2, records_done = records_done + ?3, \
                 updated_at = ?4, lease_owner = ?5, lease_until = ?6 \
                 WHERE id = ?7 AND status = 'running' \
                 AND (lease_owner IS NULL OR lease_owner = ?5 OR lease_until < ?4)",
                params![
                    cursor,
                    *subjects as i64,
                    *records as i64,
                    to_micros(*at),
                    owner,
                    to_micros(*lease_until),
                    id,
                ],
            )?;
            if done == 0 {
                return Err(StoreError::Conflict(Conflict::KeyJobHeld));
            }
        }
        Op::FinishKeyJob {
            id,
            status,
            at,
            error,
        } => {
            let done = run(
                conn,
                "UPDATE key_jobs SET status = ?1, finished_at = ?2, updated_at = ?2, error = ?3, \
                 lease_owner = NULL, lease_until = NULL WHERE id = ?4 AND status = 'running'",
                params![status, to_micros(*at), error, id],
            )?;
            if done == 0 {
                return Err(StoreError::Conflict(Conflict::KeyJobNotRunning));
            }
        }
        Op::Audit(_) => {
            let row = PendingAudit::append(next_event(events)?, audit);
            run(conn, AUDIT_INSERT, &row.params()[..])?;
            committed.audit_indices.push(row.idx as u64);
        }
        Op::SaveCheckpoint(cp) => {
            run(
                conn,
                "INSERT OR REPLACE INTO audit_checkpoints (tree_size, checkpoint, frontier, \
                 created_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    cp.tree_size as i64,
                    cp.checkpoint,
                    cp.frontier,
                    to_micros(cp.created_at),
                ],
            )?;
        }
        Op::InsertInvitation(inv) => {
            run(
                conn,
                "DELETE FROM invitations WHERE tenant = ?1 AND used_at IS NULL \
                 AND role IS NULL AND ?2 IS NULL",
                params![inv.tenant, inv.role],
            )?;
            run(
                conn,
                "INSERT INTO invitations (id, tenant, token_hash, created_at, expires_at, \
                 used_at, role, purposes, membership_expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    inv.id,
                    inv.tenant,
                    inv.token_hash,
                    to_micros(inv.created_at),
                    to_micros(inv.expires_at),
                    inv.used_at.map(to_micros),
                    inv.role,
                    inv.purposes,
                    inv.membership_expires_at.map(to_micros),
                ],
            )
            .map_err(unique_to_conflict("invitation"))?;
        }
        Op::ClaimInvitation { tenant, id, at } => run_one(
            conn,
            "invitation",
            "UPDATE invitations SET used_at = ?1 WHERE id = ?2 AND tenant = ?3 \
             AND used_at IS NULL AND expires_at > ?1",
            params![to_micros(*at), id, tenant],
        )?,
        Op::AssertOwnerRemains { tenant } => {
            // The writer thread is the only writer, so the count cannot change meanwhile.
            let owners: i64 = conn
                .prepare_cached(
                    "SELECT (SELECT count(*) FROM api_keys WHERE tenant = ?1 AND role = 'owner' \
                     AND revoked_at IS NULL AND expires_at IS NULL) + (SELECT count(*) FROM memberships \
                     WHERE tenant = ?1 AND role = 'owner' AND expires_at IS NULL)",
                )?
                .query_row([tenant], |r| r.get(0))?;
            if owners == 0 {
                return Err(StoreError::Conflict(Conflict::LastOwner));
            }
        }
        Op::People(op) => people::apply(conn, op)?,
        Op::Alert(op) => alerts::apply(conn, op)?,
        Op::Webhook(op) => webhooks::apply(conn, op)?,
        Op::Incident(op) => incidents::apply(conn, op)?,
    }
    Ok(())
}

/// A record may only be written under its subject's current key version: a rotation that
/// replaced the key meanwhile may already have destroyed the old one.
fn assert_subject_key(conn: &Connection, tenant: Uuid, subject: Uuid, version: u32) -> Result<()> {
    let current: Option<i64> = conn
        .prepare_cached("SELECT version FROM keys.subject_keys WHERE tenant = ?1 AND subject = ?2")?
        .query_row(params![tenant, subject], |r| r.get(0))
        .optional()?;
    match current {
        None => Err(StoreError::NotFound("subject")),
        Some(v) if v == i64::from(version) => Ok(()),
        Some(_) => Err(StoreError::Conflict(Conflict::SubjectKeyRotated)),
    }
}

fn rotate_subject_keys(
    conn: &Connection,
    tenant: Uuid,
    tenant_key_version: u32,
    keys: &[crate::SubjectKeyChange],
) -> Result<()> {
    assert_tenant_key(conn, tenant, tenant_key_version)?;
    for k in keys {
        let retired = run(
            conn,
            "INSERT INTO keys.retired_subject_keys (tenant, subject, version, wrapped_key, \
             key_version) SELECT tenant, subject, version, wrapped_key, key_version \
             FROM keys.subject_keys WHERE tenant = ?1 AND subject = ?2 AND version = ?3",
            params![tenant, k.subject, k.expected_version],
        )
        .map_err(unique_to_conflict("retired subject key"))?;
        if retired == 0 {
            return Err(StoreError::Conflict(Conflict::SubjectKeyRotated));
        }
        run(
            conn,
            "UPDATE keys.subject_keys SET wrapped_key = ?1, key_version = ?2, version = ?3 \
             WHERE tenant = ?4 AND subject = ?5",
            params![
                k.wrapped_key,
                tenant_key_version,
                i64::from(k.expected_version) + 1,
                tenant,
                k.subject
            ],
        )?;
    }
    Ok(())
}

fn insert_index(conn: &Connection, r: &RecordRow, index: &[crate::IndexEntry]) -> Result<()> {
    if index.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO blind_index (tenant, collection, field, hash, subject, record) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for entry in index {
        stmt.execute(params![
            r.tenant,
            r.collection,
            entry.field,
            entry.hash,
            r.subject,
            r.id
        ])?;
    }
    Ok(())
}

fn delete_index(conn: &Connection, tenant: Uuid, subject: Uuid, id: Uuid) -> Result<()> {
    run(
        conn,
        "DELETE FROM blind_index WHERE tenant = ?1 AND subject = ?2 AND record = ?3",
        params![tenant, subject, id],
    )?;
    Ok(())
}

// ---- reading --------------------------------------------------------------------------------

/// Runs a cached query and decodes every row.
fn all<T, P: Params>(
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
fn first<T, P: Params>(
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

fn blob_at<'a>(row: &'a Row<'_>, i: usize) -> Result<&'a [u8]> {
    match row.get_ref(i)? {
        ValueRef::Blob(b) => Ok(b),
        _ => Err(StoreError::Corrupt("blob column".into())),
    }
}

fn uuid_at(row: &Row<'_>, i: usize) -> Result<Uuid> {
    opt_uuid_at(row, i)?.ok_or_else(|| StoreError::Corrupt("uuid column".into()))
}

fn opt_uuid_at(row: &Row<'_>, i: usize) -> Result<Option<Uuid>> {
    match row.get_ref(i)? {
        ValueRef::Null => Ok(None),
        ValueRef::Blob(b) => Uuid::from_slice(b)
            .map(Some)
            .map_err(|_| StoreError::Corrupt("uuid column".into())),
        _ => Err(StoreError::Corrupt("uuid column".into())),
    }
}

fn u32_at(row: &Row<'_>, i: usize) -> Result<u32> {
    let v: i64 = row.get(i)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt("key version".into()))
}

fn hash_at(row: &Row<'_>, i: usize) -> Result<[u8; 32]> {
    blob_at(row, i)?
        .try_into()
        .map_err(|_| StoreError::Corrupt("hash column".into()))
}

fn time_at(row: &Row<'_>, i: usize) -> Result<time::OffsetDateTime> {
    Ok(from_micros(row.get(i)?))
}

fn opt_time_at(row: &Row<'_>, i: usize) -> Result<Option<time::OffsetDateTime>> {
    Ok(row.get::<_, Option<i64>>(i)?.map(from_micros))
}

// The column lists are macros so that every query is one `concat!`ed constant: the statement
// cache is keyed by the SQL text, and a constant needs no formatting per call.

macro_rules! tenant_columns {
    () => {
        "t.id, t.name, t.status, t.region, tk.wrapped_key, \
         COALESCE(tk.root_key_version, t.root_key_version), COALESCE(tk.key_version, t.key_version), \
         t.settings, t.created_at, t.status_changed_at, t.destroy_after"
    };
}

/// Tenants with their wrapped key from the key store.
macro_rules! tenant_from {
    () => {
        "tenants t LEFT JOIN keys.tenant_keys tk ON tk.tenant = t.id"
    };
}

/// Subjects with their wrapped key from the key store.
macro_rules! subject_key_join {
    () => {
        "LEFT JOIN keys.subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id"
    };
}

macro_rules! subject_columns {
    () => {
        "s.tenant, s.id, s.external_ref, sk.wrapped_key, COALESCE(sk.key_version, s.key_version), \
         s.restrictions, s.hold_until, s.created_at, COALESCE(sk.version, 1)"
    };
}

macro_rules! record_columns {
    () => {
        "r.id, r.collection, r.ciphertext, r.key_version, r.revision, \
         r.created_at, r.updated_at, r.expires_at"
    };
}

macro_rules! key_columns {
    () => {
        "id, tenant, token_hash, name, role, purposes, created_at, revoked_at, expires_at"
    };
}

macro_rules! request_columns {
    () => {
        "tenant, id, kind, subject, status, verified_by, detail, created_at, due_at, closed_at"
    };
}

macro_rules! audit_columns {
    () => {
        "idx, event, chain, at, tenant, subject, actor, action, outcome"
    };
}

macro_rules! hold_columns {
    () => {
        "h.tenant, h.id, h.subject, hk.wrapped_key, COALESCE(hk.key_version, h.key_version), \
         h.created_at"
    };
}

fn tenant_from(row: &Row<'_>) -> Result<TenantRow> {
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

fn key_from(row: &Row<'_>) -> Result<ApiKeyRow> {
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
fn subject_from(row: &Row<'_>, at: usize) -> Result<SubjectRow> {
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
const SUBJECT_WIDTH: usize = 9;

/// Decodes record columns starting at `at`; `None` when the LEFT JOIN found no record.
fn record_from(row: &Row<'_>, at: usize, tenant: Uuid, subject: Uuid) -> Result<Option<RecordRow>> {
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

fn request_from(r: &Row<'_>) -> Result<RequestRow> {
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

fn hold_from(r: &Row<'_>, at: usize) -> Result<HoldRow> {
    Ok(HoldRow {
        tenant: uuid_at(r, at)?,
        id: uuid_at(r, at + 1)?,
        subject: uuid_at(r, at + 2)?,
        wrapped_key: r.get(at + 3)?,
        key_version: u32_at(r, at + 4)?,
        created_at: time_at(r, at + 5)?,
    })
}

fn held_from_at(r: &Row<'_>, at: usize) -> Result<HeldRecordRow> {
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

/// Calls `f` with up to `limit` audit rows from index `from` on, in log order.
fn each_audit_row(
    c: &Connection,
    from: u64,
    limit: u32,
    mut f: impl FnMut(&Row<'_>) -> Result<()>,
) -> Result<()> {
    let mut stmt = c.prepare_cached(concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_events WHERE idx >= ?1 ORDER BY idx LIMIT ?2"
    ))?;
    let mut rows = stmt.query(params![from as i64, i64::from(limit)])?;
    while let Some(row) = rows.next()? {
        f(row)?;
    }
    Ok(())
}

fn audit_row_from(row: &Row<'_>) -> Result<AuditRow> {
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

fn subject_view(
    conn: &Connection,
    tenant: Uuid,
    subject: Uuid,
    records: RecordFilter<'_>,
) -> Result<Option<SubjectView>> {
    macro_rules! with_records {
        ($join:literal) => {
            concat!(
                "SELECT t.status, ",
                subject_columns!(),
                ", ",
                record_columns!(),
                " FROM subjects s JOIN tenants t ON t.id = s.tenant ",
                subject_key_join!(),
                " LEFT JOIN records r ON r.tenant = s.tenant AND r.subject = s.id ",
                $join,
                " WHERE s.tenant = ?1 AND s.id = ?2 ORDER BY r.id"
            )
        };
    }
    let mut stmt;
    let mut rows = match records {
        // No records wanted: no join at all (a join with a false condition still walks the
        // subject's records in SQLite).
        RecordFilter::None => {
            stmt = conn.prepare_cached(concat!(
                "SELECT t.status, ",
                subject_columns!(),
                " FROM subjects s JOIN tenants t ON t.id = s.tenant ",
                subject_key_join!(),
                " WHERE s.tenant = ?1 AND s.id = ?2"
            ))?;
            stmt.query(params![tenant, subject])?
        }
        RecordFilter::One(id) => {
            stmt = conn.prepare_cached(with_records!("AND r.id = ?3"))?;
            stmt.query(params![tenant, subject, id])?
        }
        RecordFilter::All(None) => {
            stmt = conn.prepare_cached(with_records!(""))?;
            stmt.query(params![tenant, subject])?
        }
        RecordFilter::All(Some(c)) => {
            stmt = conn.prepare_cached(with_records!("AND r.collection = ?3"))?;
            stmt.query(params![tenant, subject, c])?
        }
    };
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let mut view = SubjectView {
        tenant_status: TenantStatus::decode(&row.get::<_, String>(0)?)?,
        subject: subject_from(row, 1)?,
        records: Vec::new(),
    };
    if matches!(records, RecordFilter::None) {
        return Ok(Some(view));
    }
    let mut row = Some(row);
    while let Some(r) = row {
        if let Some(record) = record_from(r, 1 + SUBJECT_WIDTH, tenant, subject)? {
            view.records.push(record);
        }
        row = rows.next()?;
    }
    Ok(Some(view))
}

/// Bits of the log index that the subject index groups by (see migration 0005).
const SUBJECT_CHUNK_BITS: u32 = 10;

/// Chunks of the log one statement of a subject's walk covers: one seek each, inside one
/// statement, since a statement per chunk costs several times the seek.
const CHUNKS_PER_STEP: i64 = 64;

fn audit_query(conn: &Connection, q: &AuditQuery) -> Result<Vec<AuditRow>> {
    let mut sql = String::new();
    let mut values = Vec::new();
    if q.subject.is_some() {
        // The index's own expression, named explicitly: a plan that walked the tenant's
        // index instead would read the tenant's whole log. The chunk range is bound for each
        // step of the walk below.
        sql.push_str(concat!(
            "WITH RECURSIVE chunks(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM chunks \
             WHERE n < ?) SELECT ",
            audit_columns!(),
            " FROM audit_events INDEXED BY audit_events_subject_chunk WHERE tenant = ?"
        ));
        sql.push_str(&format!(" AND (idx >> {SUBJECT_CHUNK_BITS}) IN chunks"));
        values.extend([Value::Null, Value::Null]);
    } else {
        sql.push_str(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events WHERE tenant = ?"
        ));
    }
    values.push(Value::from(q.tenant));
    let mut filter = |column: &str, value: Option<Value>| {
        if let Some(v) = value {
            sql.push_str(&format!(" AND {column} ?"));
            values.push(v);
        }
    };
    filter("at >=", q.since.map(|t| to_micros(t).into()));
    filter("at <", q.until.map(|t| to_micros(t).into()));
    filter("actor =", q.actor.clone().map(Into::into));
    filter("subject =", q.subject.map(Into::into));
    filter("action =", q.action.clone().map(Into::into));
    filter("outcome =", q.outcome.clone().map(Into::into));
    filter(
        "idx >",
        q.after.map(|a| i64::try_from(a).unwrap_or(i64::MAX).into()),
    );
    sql.push_str(" ORDER BY idx LIMIT ?");
    values.push(i64::from(q.limit).into());
    if q.subject.is_none() {
        return all(conn, &sql, params_from_iter(values), audit_row_from);
    }
    // A subject's events: the chunks from the cursor's to the newest, a step at a time,
    // until the page is full.
    let bounds: (Option<i64>, Option<i64>) = conn
        // Two subqueries: SQLite answers a lone MIN or MAX from the end of the primary key, but
        // scans the whole table for both in one select.
        .prepare_cached(
            "SELECT (SELECT MIN(idx) FROM audit_events), (SELECT MAX(idx) FROM audit_events)",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (Some(first), Some(last)) = bounds else {
        return Ok(Vec::new());
    };
    let from = q.after.map_or(first, |a| {
        i64::try_from(a)
            .unwrap_or(i64::MAX)
            .saturating_add(1)
            .max(first)
    });
    let (mut chunk, newest) = (from >> SUBJECT_CHUNK_BITS, last >> SUBJECT_CHUNK_BITS);
    let mut out = Vec::new();
    while chunk <= newest {
        let wanted = i64::from(q.limit) - out.len() as i64;
        if wanted <= 0 {
            break;
        }
        let to = (chunk + CHUNKS_PER_STEP - 1).min(newest);
        values[0] = chunk.into();
        values[1] = to.into();
        if let Some(limit) = values.last_mut() {
            *limit = wanted.into();
        }
        out.extend(all(
            conn,
            &sql,
            params_from_iter(values.iter()),
            audit_row_from,
        )?);
        chunk = to + 1;
    }
    Ok(out)
}

fn expired_records(
    conn: &Connection,
    now: time::OffsetDateTime,
    after: Option<(time::OffsetDateTime, Uuid)>,
    tenant: Option<Uuid>,
    limit: u32,
) -> Result<Vec<ExpiredRecord>> {
    let mut sql = String::from(concat!(
        "SELECT ",
        subject_columns!(),
        ", ",
        record_columns!(),
        " FROM records r JOIN subjects s ON s.tenant = r.tenant AND s.id = r.subject ",
        subject_key_join!(),
        " WHERE r.expires_at IS NOT NULL AND r.expires_at <= ?"
    ));
    let mut values = vec![Value::from(to_micros(now))];
    if let Some((at, id)) = after {
        // A row-value comparison walks the (expires_at, id) index from the cursor on.
        sql.push_str(" AND (r.expires_at, r.id) > (?, ?)");
        values.push(to_micros(at).into());
        values.push(id.into());
    }
    if let Some(t) = tenant {
        sql.push_str(" AND r.tenant = ?");
        values.push(t.into());
    }
    sql.push_str(" ORDER BY r.expires_at, r.id LIMIT ?");
    values.push(i64::from(limit).into());
    let mut out = Vec::new();
    for (subject, record) in all(conn, &sql, params_from_iter(values), |row| {
        let subject = subject_from(row, 0)?;
        let record = record_from(row, SUBJECT_WIDTH, subject.tenant, subject.id)?;
        Ok((subject, record))
    })? {
        if let Some(record) = record {
            out.push(ExpiredRecord { subject, record });
        }
    }
    Ok(out)
}

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
        self.read(|c| {
            first(
                c,
                concat!(
                    "SELECT ",
                    tenant_columns!(),
                    " FROM ",
                    tenant_from!(),
                    " WHERE t.id = ?1"
                ),
                [id],
                tenant_from,
            )
        })
    }

    async fn tenants(&self) -> Result<Vec<TenantRow>> {
        self.scan(|c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    tenant_columns!(),
                    " FROM ",
                    tenant_from!(),
                    " ORDER BY t.created_at"
                ),
                [],
                tenant_from,
            )
        })
        .await
    }

    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRow>> {
        self.read(|c| {
            first(
                c,
                concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM api_keys WHERE token_hash = ?1"
                ),
                [hash],
                key_from,
            )
        })
    }

    async fn api_keys(&self, tenant: Option<Uuid>) -> Result<Vec<ApiKeyRow>> {
        self.read(|c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM api_keys WHERE tenant IS ?1 ORDER BY id"
                ),
                [tenant],
                key_from,
            )
        })
    }

    async fn invitation_by_hash(&self, hash: &[u8; 32]) -> Result<Option<InvitationRow>> {
        self.read(|c| {
            first(
                c,
                "SELECT id, tenant, token_hash, created_at, expires_at, used_at, role, \
                 purposes, membership_expires_at FROM invitations WHERE token_hash = ?1",
                [hash],
                |row| {
                    Ok(InvitationRow {
                        id: uuid_at(row, 0)?,
                        tenant: uuid_at(row, 1)?,
                        token_hash: hash_at(row, 2)?,
                        created_at: time_at(row, 3)?,
                        expires_at: time_at(row, 4)?,
                        used_at: opt_time_at(row, 5)?,
                        role: row.get(6)?,
                        purposes: row.get(7)?,
                        membership_expires_at: opt_time_at(row, 8)?,
                    })
                },
            )
        })
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
                    subject_view(c, tenant, subject, RecordFilter::All(collection.as_deref()))
                })
                .await
            }
            _ => self.read(|c| subject_view(c, tenant, subject, records)),
        }
    }

    async fn subject_by_ref(&self, tenant: Uuid, ref_hash: &[u8]) -> Result<Option<SubjectRow>> {
        self.read(|c| {
            first(
                c,
                concat!(
                    "SELECT ",
                    subject_columns!(),
                    " FROM subjects s ",
                    subject_key_join!(),
                    " WHERE s.tenant = ?1 AND s.external_ref = ?2"
                ),
                params![tenant, ref_hash],
                |r| subject_from(r, 0),
            )
        })
    }

    async fn lookup(
        &self,
        tenant: Uuid,
        collection: &str,
        field: &str,
        hash: &[u8],
    ) -> Result<Vec<(SubjectRow, RecordRow)>> {
        let rows = self.read(|c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    subject_columns!(),
                    ", ",
                    record_columns!(),
                    " FROM blind_index b \
                     JOIN records r ON r.tenant = b.tenant AND r.subject = b.subject AND r.id = b.record \
                     JOIN subjects s ON s.tenant = b.tenant AND s.id = b.subject ",
                    subject_key_join!(),
                    " WHERE b.tenant = ?1 AND b.collection = ?2 AND b.field = ?3 AND b.hash = ?4 \
                     ORDER BY r.id LIMIT 1000"
                ),
                params![tenant, collection, field, hash],
                |row| {
                    let s = subject_from(row, 0)?;
                    let r = record_from(row, SUBJECT_WIDTH, s.tenant, s.id)?;
                    Ok((s, r))
                },
            )
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(s, r)| r.map(|r| (s, r)))
            .collect())
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
        let read = move |c: &Connection| {
            let mut out = Vec::with_capacity(limit.min(100_000) as usize);
            each_audit_row(c, from, limit, |row| {
                out.push(audit_row_from(row)?);
                Ok(())
            })?;
            Ok(out)
        };
        if limit <= 16 {
            self.read(read)
        } else {
            self.scan(read).await
        }
    }

    async fn audit_page(&self, from: u64, limit: u32) -> Result<AuditPage> {
        self.scan(move |c| {
            let mut page = AuditPage::with_capacity(limit.min(100_000) as usize, 400);
            each_audit_row(c, from, limit, |row| {
                let text = |i| row.get_ref(i).and_then(|v| Ok(v.as_str()?));
                page.push(
                    row.get::<_, i64>(0)? as u64,
                    blob_at(row, 1)?,
                    hash_at(row, 2)?,
                    row.get(3)?,
                    opt_uuid_at(row, 4)?,
                    opt_uuid_at(row, 5)?,
                    [text(6)?, text(7)?, text(8)?],
                );
                Ok(())
            })?;
            Ok(page)
        })
        .await
    }

    async fn audit_query(&self, q: &AuditQuery) -> Result<Vec<AuditRow>> {
        let q = q.clone();
        self.scan(move |c| audit_query(c, &q)).await
    }

    async fn last_system_event(&self, action: &str) -> Result<Option<AuditRow>> {
        let action = action.to_owned();
        self.scan(move |c| {
            let rows = all(
                c,
                concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit_events INDEXED BY audit_events_tenant \
                     WHERE tenant IS NULL AND action = ?1 ORDER BY idx DESC LIMIT 1"
                ),
                [action],
                audit_row_from,
            )?;
            Ok(rows.into_iter().next())
        })
        .await
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>> {
        self.scan(|c| {
            all(
                c,
                "SELECT tree_size, checkpoint, frontier, created_at FROM audit_checkpoints \
                 ORDER BY tree_size",
                [],
                |row| {
                    Ok(CheckpointRow {
                        tree_size: row.get::<_, i64>(0)? as u64,
                        checkpoint: row.get(1)?,
                        frontier: row.get(2)?,
                        created_at: time_at(row, 3)?,
                    })
                },
            )
        })
        .await
    }

    async fn audit_leaves(&self, size: u64) -> Result<Vec<Hash>> {
        self.scan(move |c| {
            all(
                c,
                "SELECT event FROM audit_events WHERE idx < ?1 ORDER BY idx",
                [size as i64],
                |row| Ok(leaf_hash(blob_at(row, 0)?)),
            )
        })
        .await
    }

    async fn audit_index_at(&self, at: time::OffsetDateTime) -> Result<Option<u64>> {
        // The first event in log order at or after `at`: a walk of the primary key that reads
        // only the events before it (the ones a prune is about to delete), so off the runtime.
        let v: Option<i64> = self
            .scan(move |c| {
                Ok(c.prepare_cached(
                    "SELECT idx FROM audit_events WHERE at >= ?1 ORDER BY idx LIMIT 1",
                )?
                .query_row([to_micros(at)], |r| r.get(0))
                .optional()?)
            })
            .await?;
        Ok(v.map(|v| v as u64))
    }

    async fn expired_records(
        &self,
        now: time::OffsetDateTime,
        after: Option<(time::OffsetDateTime, Uuid)>,
        tenant: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ExpiredRecord>> {
        self.scan(move |c| expired_records(c, now, after, tenant, limit))
            .await
    }

    async fn expired_held_records(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<HeldRecordRow>> {
        self.scan(move |c| {
            all(
                c,
                "SELECT tenant, hold, id, collection, ciphertext, key_version, created_at, \
                 hold_until, reason FROM held_records WHERE hold_until <= ?1 \
                 ORDER BY hold_until LIMIT ?2",
                params![to_micros(now), i64::from(limit)],
                |r| held_from_at(r, 0),
            )
        })
        .await
    }

    async fn empty_holds(&self) -> Result<Vec<HoldRow>> {
        self.scan(|c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    hold_columns!(),
                    " FROM holds h JOIN keys.hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id \
                     WHERE NOT EXISTS \
                     (SELECT 1 FROM held_records r WHERE r.tenant = h.tenant AND r.hold = h.id)"
                ),
                [],
                |r| hold_from(r, 0),
            )
        })
        .await
    }

    async fn held_records(
        &self,
        tenant: Uuid,
        subject: Uuid,
    ) -> Result<Vec<(HoldRow, HeldRecordRow)>> {
        self.scan(move |c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    hold_columns!(),
                    ", r.tenant, r.hold, r.id, r.collection, r.ciphertext, r.key_version, \
                     r.created_at, r.hold_until, r.reason \
                     FROM holds h JOIN held_records r ON r.tenant = h.tenant AND r.hold = h.id \
                     LEFT JOIN keys.hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id \
                     WHERE h.tenant = ?1 AND h.subject = ?2 ORDER BY r.id"
                ),
                params![tenant, subject],
                |r| Ok((hold_from(r, 0)?, held_from_at(r, 6)?)),
            )
        })
        .await
    }

    async fn ledger_entry(&self, tenant: Uuid, subject: Uuid) -> Result<Option<LedgerRow>> {
        self.read(|c| {
            first(
                c,
                "SELECT id, tenant, subject, requested_by, erased_at, detail FROM erasure_ledger \
                 WHERE tenant = ?1 AND subject = ?2 ORDER BY erased_at LIMIT 1",
                params![tenant, subject],
                |r| {
                    Ok(LedgerRow {
                        id: uuid_at(r, 0)?,
                        tenant: uuid_at(r, 1)?,
                        subject: uuid_at(r, 2)?,
                        requested_by: r.get(3)?,
                        erased_at: time_at(r, 4)?,
                        detail: r.get(5)?,
                    })
                },
            )
        })
    }

    async fn subject_ids(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Uuid>> {
        self.scan(move |c| {
            all(
                c,
                "SELECT s.id FROM subjects s \
                 JOIN keys.subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id \
                 WHERE s.tenant = ?1 AND s.id > ?2 ORDER BY s.id LIMIT ?3",
                params![tenant, after.unwrap_or(Uuid::nil()), i64::from(limit)],
                |r| uuid_at(r, 0),
            )
        })
        .await
    }

    async fn keyed_subjects(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<SubjectRow>> {
        self.scan(move |c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    subject_columns!(),
                    " FROM subjects s \
                     JOIN keys.subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id \
                     WHERE s.tenant = ?1 AND s.id > ?2 ORDER BY s.id LIMIT ?3"
                ),
                params![tenant, after.unwrap_or(Uuid::nil()), i64::from(limit)],
                |r| subject_from(r, 0),
            )
        })
        .await
    }

    async fn live_holds(&self, tenant: Uuid) -> Result<Vec<HoldRow>> {
        self.read(|c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    hold_columns!(),
                    " FROM holds h JOIN keys.hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id \
                     WHERE h.tenant = ?1 ORDER BY h.id"
                ),
                [tenant],
                |r| hold_from(r, 0),
            )
        })
    }

    async fn retired_keys(&self, tenant: Uuid, subject: Uuid) -> Result<Vec<RetiredKeyRow>> {
        self.read(|c| {
            all(
                c,
                "SELECT version, wrapped_key, key_version FROM keys.retired_subject_keys \
                 WHERE tenant = ?1 AND subject = ?2 ORDER BY version",
                params![tenant, subject],
                |r| {
                    Ok(RetiredKeyRow {
                        version: u32_at(r, 0)?,
                        wrapped_key: r.get(1)?,
                        key_version: u32_at(r, 2)?,
                    })
                },
            )
        })
    }

    async fn subjects_with_retired_keys(&self, tenant: Uuid, limit: u32) -> Result<Vec<Uuid>> {
        self.scan(move |c| {
            all(
                c,
                "SELECT DISTINCT subject FROM keys.retired_subject_keys WHERE tenant = ?1 \
                 ORDER BY subject LIMIT ?2",
                params![tenant, i64::from(limit)],
                |r| uuid_at(r, 0),
            )
        })
        .await
    }

    async fn retired_key_count(&self, tenant: Option<Uuid>) -> Result<u64> {
        let n: i64 = self
            .scan(move |c| {
                Ok(c.prepare_cached(
                    "SELECT COUNT(*) FROM keys.retired_subject_keys \
                     WHERE ?1 IS NULL OR tenant = ?1",
                )?
                .query_row([tenant], |r| r.get(0))?)
            })
            .await?;
        Ok(n as u64)
    }

    async fn records_of_subjects(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        through: Uuid,
    ) -> Result<Vec<RecordRow>> {
        let rows = self
            .scan(move |c| {
                all(
                    c,
                    concat!(
                        "SELECT r.subject, ",
                        record_columns!(),
                        " FROM records r WHERE r.tenant = ?1 AND r.subject > ?2 \
                         AND r.subject <= ?3 ORDER BY r.subject, r.id"
                    ),
                    params![tenant, after.unwrap_or(Uuid::nil()), through],
                    |row| record_from(row, 1, tenant, uuid_at(row, 0)?),
                )
            })
            .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn record_count(&self, tenant: Uuid) -> Result<u64> {
        let n: i64 = self
            .scan(move |c| {
                Ok(
                    c.prepare_cached("SELECT COUNT(*) FROM records WHERE tenant = ?1")?
                        .query_row([tenant], |r| r.get(0))?,
                )
            })
            .await?;
        Ok(n as u64)
    }

    async fn stats(&self) -> Result<crate::StoreStats> {
        self.scan(|c| {
            let tenants = all(
                c,
                "SELECT t.id, (SELECT COUNT(*) FROM subjects s WHERE s.tenant = t.id), \
                 (SELECT COUNT(*) FROM records r WHERE r.tenant = t.id) FROM tenants t \
                 ORDER BY t.id",
                [],
                |row| {
                    Ok(crate::TenantSize {
                        tenant: uuid_at(row, 0)?,
                        subjects: row.get::<_, i64>(1)? as u64,
                        records: row.get::<_, i64>(2)? as u64,
                    })
                },
            )?;
            let last_checkpoint = c
                .prepare_cached(
                    "SELECT tree_size, created_at FROM audit_checkpoints \
                     ORDER BY tree_size DESC LIMIT 1",
                )?
                .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))?
                .next()
                .transpose()?
                .map(|(size, at)| (size as u64, from_micros(at)));
            Ok(crate::StoreStats {
                tenants,
                last_checkpoint,
            })
        })
        .await
    }

    async fn key_jobs(&self, status: Option<&str>) -> Result<Vec<KeyJobRow>> {
        let status = status.map(str::to_owned);
        self.scan(move |c| {
            all(
                c,
                "SELECT id, tenant, status, cursor, subjects_done, records_done, records_total, \
                 started_at, updated_at, finished_at, lease_owner, lease_until, error \
                 FROM key_jobs WHERE ?1 IS NULL OR status = ?1 \
                 ORDER BY started_at DESC, id DESC LIMIT 1000",
                [status],
                |r| {
                    Ok(KeyJobRow {
                        id: uuid_at(r, 0)?,
                        tenant: uuid_at(r, 1)?,
                        status: r.get(2)?,
                        cursor: opt_uuid_at(r, 3)?,
                        subjects_done: r.get::<_, i64>(4)? as u64,
                        records_done: r.get::<_, i64>(5)? as u64,
                        records_total: r.get::<_, i64>(6)? as u64,
                        started_at: time_at(r, 7)?,
                        updated_at: time_at(r, 8)?,
                        finished_at: opt_time_at(r, 9)?,
                        lease_owner: r.get(10)?,
                        lease_until: opt_time_at(r, 11)?,
                        error: r.get(12)?,
                    })
                },
            )
        })
        .await
    }

    async fn request(&self, tenant: Uuid, id: Uuid) -> Result<Option<RequestRow>> {
        self.read(|c| {
            first(
                c,
                concat!(
                    "SELECT ",
                    request_columns!(),
                    " FROM requests WHERE tenant = ?1 AND id = ?2"
                ),
                params![tenant, id],
                request_from,
            )
        })
    }

    async fn requests(&self, tenant: Uuid, status: Option<&str>) -> Result<Vec<RequestRow>> {
        self.read(|c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    request_columns!(),
                    " FROM requests WHERE tenant = ?1 AND (?2 IS NULL OR status = ?2) \
                     ORDER BY due_at, id"
                ),
                params![tenant, status],
                request_from,
            )
        })
    }

    async fn requests_in_clear(&self, sealed_prefix: &str) -> Result<Vec<RequestRow>> {
        let prefix = sealed_prefix.to_owned();
        self.read(move |c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    request_columns!(),
                    " FROM requests WHERE substr(verified_by, 1, length(?1)) <> ?1 \
                     OR substr(detail, 1, length(?1)) <> ?1 ORDER BY tenant, id"
                ),
                params![prefix],
                request_from,
            )
        })
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

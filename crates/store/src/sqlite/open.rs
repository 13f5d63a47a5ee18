//! Opening a database file: the connection settings every connection shares, the migrations
//! (applied in order at open; a migration is never edited once released), the lock file that
//! tells a process whether it opened the file alone, and the pool of read-only connections.

use super::*;

/// How long a connection waits for a lock before failing with `SQLITE_BUSY`.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection (the store uses fewer distinct statements).
pub(super) const STATEMENT_CACHE: usize = 128;

/// The writer's page cache, in KiB (why not more: see `connect`).
pub(super) const CACHE_KIB: u32 = 8 << 10;

/// Each read connection's page cache, in KiB. Readers answer point lookups: what pays to
/// keep is the upper levels of the b-trees they walk, and a page missing from their cache is
/// a copy from the OS page cache, not a disk read. 8 MiB per reader bought no throughput
/// that a soak could see (BENCHMARKS.md "Load soak") but made the server's resident memory
/// grow with the store, times the number of readers.
pub(super) const READER_CACHE_KIB: u32 = 2 << 10;

/// Idle read connections kept open; more are opened on demand under load.
pub(super) const IDLE_READERS: usize = 8;

/// The migrations, applied in order at open. A migration is never edited once released.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "rights retention",
        include_str!("../../migrations/sqlite/0002_rights_retention.sql"),
    ),
    (
        3,
        "record rotation",
        include_str!("../../migrations/sqlite/0003_record_rotation.sql"),
    ),
    (
        4,
        "audit index at",
        include_str!("../../migrations/sqlite/0004_audit_index_at.sql"),
    ),
    (
        5,
        "audit subject chunks",
        include_str!("../../migrations/sqlite/0005_audit_subject_chunks.sql"),
    ),
    (
        6,
        "invitations",
        include_str!("../../migrations/sqlite/0006_invitations.sql"),
    ),
    (
        7,
        "people",
        include_str!("../../migrations/sqlite/0007_people.sql"),
    ),
    (
        8,
        "alerts",
        include_str!("../../migrations/sqlite/0008_alerts.sql"),
    ),
    (
        9,
        "memberships",
        include_str!("../../migrations/sqlite/0009_memberships.sql"),
    ),
    (
        10,
        "webhooks",
        include_str!("../../migrations/sqlite/0010_webhooks.sql"),
    ),
    (
        11,
        "incidents",
        include_str!("../../migrations/sqlite/0011_incidents.sql"),
    ),
    (
        12,
        "dump marks",
        include_str!("../../migrations/sqlite/0012_dump_marks.sql"),
    ),
    (
        13,
        "audit tail",
        include_str!("../../migrations/sqlite/0013_audit_tail.sql"),
    ),
    (
        14,
        "api key expiry",
        include_str!("../../migrations/sqlite/0014_api_key_expiry.sql"),
    ),
    (
        15,
        "audit tree",
        include_str!("../../migrations/sqlite/0015_audit_tree.sql"),
    ),
    (
        16,
        "audit subject postings",
        include_str!("../../migrations/sqlite/0016_audit_subject_postings.sql"),
    ),
    (
        17,
        "audit bundles",
        include_str!("../../migrations/sqlite/0017_audit_bundles.sql"),
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

/// The read-only connections.
/// The advisory lock every open store holds on `<database>.lock`, so that start-up repair
/// ([`recovery`]) runs only when no other process has the database open. A write in flight
/// in a running `ward serve` is, for a moment, in the data file and not yet in the key store:
/// exactly what a crash leaves. Repair must not "finish" it, so an admin command opened beside
/// a server (which holds its shared lock) skips the repair; only a process that finds nobody
/// else (after a crash, the kernel dropped the dead process's lock) repairs.
pub(super) struct OpenLock {
    pub(super) file: std::fs::File,
    pub(super) path: PathBuf,
    /// Whether the exclusive lock was had: no other process has the database open.
    pub(super) alone: bool,
}

impl OpenLock {
    pub(super) fn take(database: &Path) -> Result<Self> {
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
    pub(super) fn share(self) -> Result<std::fs::File> {
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

pub(super) struct Readers {
    pub(super) path: PathBuf,
    pub(super) idle: Mutex<Vec<Connection>>,
    /// The shared [`OpenLock`], released when the last handle of the store is dropped (the
    /// writer then only finishes what it was given).
    pub(super) _lock: std::fs::File,
}

impl Readers {
    pub(super) fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
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
pub(super) enum Access {
    Read,
    Write,
}

/// Opens a connection with the store's pragmas and the key store attached as `keys`.
pub(super) fn connect(path: &Path, access: Access) -> Result<Connection> {
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
    // The writer's 8 MiB page cache (SQLite's default is 2 MiB), not more: when a b-tree split reorders
    // sibling pages, SQLite parks a page at a temporary number past 1 GiB, and the commit that
    // follows scans the cache's whole hash table to drop it. With a 64 MiB writer cache that
    // scan cost a commit about a millisecond (a fifth of the writer's time on audited reads);
    // the pages a larger cache would keep are in the OS page cache anyway. Readers keep less
    // (`READER_CACHE_KIB`).
    let cache_kib = match access {
        Access::Read => READER_CACHE_KIB,
        Access::Write => CACHE_KIB,
    };
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; \
         PRAGMA cache_size = -{cache_kib};"
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
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
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

/// Runs a statement without parameters or results (transaction control).
pub(super) fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

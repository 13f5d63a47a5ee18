//! The embedded default: one SQLite file in WAL mode.
//!
//! SQLite has one writer at a time, so Ward gives it exactly one: a task that owns the write
//! connection, drains whatever requests are waiting, and commits them in one transaction with a
//! savepoint per request (group commit). A failing request rolls back to its savepoint and
//! fails alone. Readers use a separate pool and never wait for the writer. The audit frontier
//! and hash chain live in the writer, so appends cost one row and no reads.

use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Connection, Executor, QueryBuilder, Row, Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;
use ward_audit::{Frontier, Hash, chain_hash, leaf_hash};

use crate::{
    ApiKeyRow, AuditHead, AuditQuery, AuditRow, CheckpointRow, Committed, ExpiredRecord,
    HeldRecordRow, HoldRow, KeyJobRow, LedgerRow, Op, RecordFilter, RecordRow, RequestRow, Result,
    RetiredKeyRow, Store, StoreError, SubjectRow, SubjectView, TenantRow, from_micros, to_micros,
};

/// Most requests one group commit takes; bounds the latency a batch adds to its first member.
const MAX_BATCH: usize = 512;

/// A Ward store in one SQLite database file.
#[derive(Clone)]
pub struct SqliteStore {
    readers: SqlitePool,
    writer: mpsc::Sender<Job>,
}

enum Job {
    Commit(Vec<Op>, oneshot::Sender<Result<Committed>>),
    Head(oneshot::Sender<AuditHead>),
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged commit survives power loss, not just a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Rectified and deleted ciphertext is overwritten, not left in free pages: a
            // corrected value must not be recoverable from the file with the live key.
            .pragma("secure_delete", "ON")
            .busy_timeout(std::time::Duration::from_secs(10));
        let keys_path = path.with_extension("keys.db");
        let attach = format!(
            "ATTACH DATABASE '{}' AS keys",
            keys_path.display().to_string().replace('\'', "''")
        );
        let mut conn = SqliteConnection::connect_with(&options).await?;
        conn.execute(AssertSqlSafe(attach.clone())).await?;
        // The key store: WAL like the data file, and secure_delete so a destroyed key's bytes
        // are overwritten in the file rather than left in a free page.
        conn.execute("PRAGMA keys.journal_mode = WAL").await?;
        conn.execute("PRAGMA keys.synchronous = FULL").await?;
        conn.execute("PRAGMA keys.secure_delete = ON").await?;
        sqlx::migrate!("./migrations/sqlite").run(&mut conn).await?;
        let audit = AuditState::load(&mut conn).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .after_connect(move |conn, _| {
                let attach = attach.clone();
                Box::pin(async move {
                    conn.execute(AssertSqlSafe(attach)).await?;
                    Ok(())
                })
            })
            .connect_with(options.read_only(true))
            .await?;
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run_writer(conn, rx, audit));
        Ok(Self {
            readers,
            writer: tx,
        })
    }

    /// The read pool, for maintenance queries in tests and tools.
    pub fn pool(&self) -> &SqlitePool {
        &self.readers
    }
}

/// The in-memory tail of the audit log: what the next append needs.
#[derive(Clone)]
struct AuditState {
    frontier: Frontier,
    chain: Hash,
}

impl AuditState {
    /// Rebuilds the tail from the newest checkpoint's frontier plus the events after it.
    async fn load(conn: &mut SqliteConnection) -> Result<Self> {
        let (min_idx, count): (Option<i64>, i64) =
            sqlx::query_as("SELECT MIN(idx), COUNT(*) FROM audit_events")
                .fetch_one(&mut *conn)
                .await?;
        let mut state = Self {
            frontier: Frontier::new(),
            chain: [0; 32],
        };
        let first = min_idx.unwrap_or(0).max(0) as u64;
        let mut from = 0u64;
        if first > 0 || count > 0 {
            // After pruning, resume from the checkpoint at the prune boundary.
            let cp: Option<(i64, Vec<u8>, String)> = sqlx::query_as(
                "SELECT tree_size, frontier, checkpoint FROM audit_checkpoints \
                 WHERE tree_size <= (SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_events) \
                 AND tree_size >= ?1 ORDER BY tree_size DESC LIMIT 1",
            )
            .bind(first as i64)
            .fetch_optional(&mut *conn)
            .await?;
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
        let rows = sqlx::query("SELECT idx, event FROM audit_events WHERE idx >= ?1 ORDER BY idx")
            .bind(from as i64)
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let event: Vec<u8> = row.try_get(1)?;
            state.append(&event);
        }
        Ok(state)
    }

    fn append(&mut self, event: &[u8]) -> (u64, Hash) {
        let idx = self.frontier.size();
        let leaf = leaf_hash(event);
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

async fn run_writer(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Job>,
    mut audit: AuditState,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        group_commit(&mut conn, &mut audit, jobs).await;
    }
}

/// Commits a batch of jobs in one transaction, each request under its own savepoint.
async fn group_commit(conn: &mut SqliteConnection, audit: &mut AuditState, jobs: Vec<Job>) {
    let mut commits = Vec::with_capacity(jobs.len());
    let mut heads = Vec::new();
    for job in jobs {
        match job {
            Job::Commit(ops, reply) => commits.push((ops, reply)),
            Job::Head(reply) => heads.push(reply),
        }
    }
    if commits.is_empty() {
        for reply in heads {
            let _ = reply.send(audit.head());
        }
        return;
    }
    if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
        let msg = e.to_string();
        for (_, reply) in commits {
            let _ = reply.send(Err(StoreError::Conflict(format!("could not begin: {msg}"))));
        }
        return;
    }
    let before = audit.clone();
    let shreds = commits.iter().any(|(ops, _)| {
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
    let mut results = Vec::with_capacity(commits.len());
    // Fast path: every request's ops in a row, audit events gathered into multi-row inserts.
    // Requests were validated before they got here, so this almost always succeeds; if any op
    // fails, the whole attempt is rolled back and the batch replayed with a savepoint per
    // request, so the failure stays with its own request.
    let fast = fast_path(conn, audit, &commits).await;
    match fast {
        Ok(done) => {
            for ((_, reply), committed) in commits.into_iter().zip(done) {
                results.push((reply, Ok(committed)));
            }
        }
        Err(_) => {
            let restarted = match conn.execute("ROLLBACK").await {
                Ok(_) => conn.execute("BEGIN IMMEDIATE").await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = restarted {
                let msg = e.to_string();
                for (_, reply) in commits {
                    let _ = reply.send(Err(StoreError::Conflict(format!(
                        "could not restart: {msg}"
                    ))));
                }
                return;
            }
            for (ops, reply) in commits {
                let outcome = apply_in_savepoint(conn, audit, ops).await;
                results.push((reply, outcome));
            }
        }
    }
    if let Err(e) = conn.execute("COMMIT").await {
        tracing::error!(error = %e, "group commit failed; every request in the batch fails");
        let _ = conn.execute("ROLLBACK").await;
        *audit = before;
        let msg = e.to_string();
        for (reply, _) in results {
            let _ = reply.send(Err(StoreError::Conflict(format!("commit failed: {msg}"))));
        }
    } else {
        if shreds {
            // Push destroyed keys out of the key store's WAL into the (secure-deleted) file and
            // truncate the WAL, so no old page image of a destroyed key stays on disk.
            if let Err(e) = conn.execute("PRAGMA keys.wal_checkpoint(TRUNCATE)").await {
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

/// An audit row ready to insert.
struct PendingAudit {
    idx: i64,
    at: i64,
    tenant: Option<Vec<u8>>,
    subject: Option<Vec<u8>>,
    actor: String,
    action: &'static str,
    outcome: &'static str,
    event: Vec<u8>,
    chain: Vec<u8>,
}

/// Rows per multi-row audit insert (9 parameters each, well under SQLite's limit).
const AUDIT_ROWS_PER_INSERT: usize = 400;

async fn fast_path(
    conn: &mut SqliteConnection,
    audit: &mut AuditState,
    commits: &[(Vec<Op>, oneshot::Sender<Result<Committed>>)],
) -> Result<Vec<Committed>> {
    let mut staged = audit.clone();
    let mut pending = Vec::new();
    let mut out = Vec::with_capacity(commits.len());
    for (ops, _) in commits {
        let mut committed = Committed::default();
        for op in ops {
            match op {
                Op::Audit(event) => {
                    let bytes = event.to_bytes();
                    let (idx, chain) = staged.append(&bytes);
                    committed.audit_indices.push(idx);
                    pending.push(PendingAudit {
                        idx: idx as i64,
                        at: to_micros(event.at),
                        tenant: event.tenant.map(|t| t.as_bytes().to_vec()),
                        subject: event.subject.map(|s| s.as_bytes().to_vec()),
                        actor: event.actor.id.clone(),
                        action: event.action.as_str(),
                        outcome: event.outcome.as_str(),
                        event: bytes,
                        chain: chain.to_vec(),
                    });
                }
                other => apply(conn, &mut staged, &mut committed, other.clone()).await?,
            }
        }
        out.push(committed);
    }
    for chunk in pending.chunks(AUDIT_ROWS_PER_INSERT) {
        let mut b: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO audit_events (idx, at, tenant, subject, actor, action, outcome, event, chain) ",
        );
        b.push_values(chunk, |mut row, p| {
            row.push_bind(p.idx)
                .push_bind(p.at)
                .push_bind(p.tenant.clone())
                .push_bind(p.subject.clone())
                .push_bind(p.actor.clone())
                .push_bind(p.action)
                .push_bind(p.outcome)
                .push_bind(p.event.clone())
                .push_bind(p.chain.clone());
        });
        b.build().execute(&mut *conn).await?;
    }
    *audit = staged;
    Ok(out)
}

async fn apply_in_savepoint(
    conn: &mut SqliteConnection,
    audit: &mut AuditState,
    ops: Vec<Op>,
) -> Result<Committed> {
    conn.execute("SAVEPOINT request").await?;
    let mut staged = audit.clone();
    let mut committed = Committed::default();
    let mut result = Ok(());
    for op in ops {
        result = apply(conn, &mut staged, &mut committed, op).await;
        if result.is_err() {
            break;
        }
    }
    match result {
        Ok(()) => {
            conn.execute("RELEASE request").await?;
            *audit = staged;
            Ok(committed)
        }
        Err(e) => {
            conn.execute("ROLLBACK TO request").await?;
            conn.execute("RELEASE request").await?;
            Err(e)
        }
    }
}

fn unique_to_conflict(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("{what} already exists"))
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound(what),
        _ => StoreError::Database(e),
    }
}

async fn apply(
    conn: &mut SqliteConnection,
    audit: &mut AuditState,
    committed: &mut Committed,
    op: Op,
) -> Result<()> {
    match op {
        Op::InsertTenant(t) => {
            sqlx::query(
                "INSERT INTO tenants (id, name, status, region, root_key_version, \
                 key_version, settings, created_at, status_changed_at, destroy_after) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .bind(t.id.as_bytes().as_slice())
            .bind(&t.name)
            .bind(&t.status)
            .bind(&t.region)
            .bind(i64::from(t.root_key_version))
            .bind(i64::from(t.key_version))
            .bind(&t.settings)
            .bind(to_micros(t.created_at))
            .bind(to_micros(t.status_changed_at))
            .bind(t.destroy_after.map(to_micros))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("tenant"))?;
            if let Some(key) = &t.wrapped_key {
                sqlx::query("INSERT INTO keys.tenant_keys (tenant, wrapped_key, root_key_version, key_version) VALUES (?1, ?2, ?3, ?4)")
                    .bind(t.id.as_bytes().as_slice())
                    .bind(key)
                    .bind(i64::from(t.root_key_version))
                    .bind(i64::from(t.key_version))
                    .execute(&mut *conn)
                    .await
                    .map_err(unique_to_conflict("tenant"))?;
            }
        }
        Op::SetTenantStatus {
            id,
            status,
            at,
            destroy_after,
        } => {
            let done = sqlx::query(
                "UPDATE tenants SET status = ?1, status_changed_at = ?2, destroy_after = ?3 \
                 WHERE id = ?4",
            )
            .bind(&status)
            .bind(to_micros(at))
            .bind(destroy_after.map(to_micros))
            .bind(id.as_bytes().as_slice())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("tenant"));
            }
        }
        Op::InsertApiKey(k) => {
            sqlx::query(
                "INSERT INTO api_keys (id, tenant, token_hash, name, role, purposes, created_at, \
                 revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .bind(k.id.as_bytes().as_slice())
            .bind(k.tenant.map(|t| t.as_bytes().to_vec()))
            .bind(k.token_hash.as_slice())
            .bind(&k.name)
            .bind(&k.role)
            .bind(&k.purposes)
            .bind(to_micros(k.created_at))
            .bind(k.revoked_at.map(to_micros))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("api key"))?;
        }
        Op::RevokeApiKey { tenant, id, at } => {
            let done = sqlx::query(
                "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND tenant IS ?3 \
                 AND revoked_at IS NULL",
            )
            .bind(to_micros(at))
            .bind(id.as_bytes().as_slice())
            .bind(tenant.map(|t| t.as_bytes().to_vec()))
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("api key"));
            }
        }
        Op::InsertSubject(s) => {
            sqlx::query(
                "INSERT INTO subjects (tenant, id, external_ref, key_version, \
                 restrictions, hold_until, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(s.tenant.as_bytes().as_slice())
            .bind(s.id.as_bytes().as_slice())
            .bind(&s.external_ref)
            .bind(i64::from(s.key_version))
            .bind(&s.restrictions)
            .bind(s.hold_until.map(to_micros))
            .bind(to_micros(s.created_at))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("subject with this external_ref"))?;
            // A subject key must be wrapped under the tenant's current key version, or a
            // rotation committed meanwhile would strand it.
            let current: Option<i64> =
                sqlx::query_scalar("SELECT key_version FROM keys.tenant_keys WHERE tenant = ?1")
                    .bind(s.tenant.as_bytes().as_slice())
                    .fetch_optional(&mut *conn)
                    .await?;
            if current != Some(i64::from(s.key_version)) {
                return Err(StoreError::Conflict(crate::KEY_ROTATED.into()));
            }
            if let Some(key) = &s.wrapped_key {
                sqlx::query("INSERT INTO keys.subject_keys (tenant, subject, wrapped_key, key_version, version) VALUES (?1, ?2, ?3, ?4, ?5)")
                    .bind(s.tenant.as_bytes().as_slice())
                    .bind(s.id.as_bytes().as_slice())
                    .bind(key)
                    .bind(i64::from(s.key_version))
                    .bind(i64::from(s.record_key_version))
                    .execute(&mut *conn)
                    .await
                    .map_err(unique_to_conflict("subject"))?;
            }
        }
        Op::SetRestrictions {
            tenant,
            subject,
            restrictions,
        } => {
            let done =
                sqlx::query("UPDATE subjects SET restrictions = ?1 WHERE tenant = ?2 AND id = ?3")
                    .bind(&restrictions)
                    .bind(tenant.as_bytes().as_slice())
                    .bind(subject.as_bytes().as_slice())
                    .execute(&mut *conn)
                    .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("subject"));
            }
        }
        Op::InsertRecord { record: r, index } => {
            assert_subject_key(conn, r.tenant, r.subject, r.key_version).await?;
            sqlx::query(
                "INSERT INTO records (tenant, subject, id, collection, ciphertext, key_version, \
                 revision, created_at, updated_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .bind(r.tenant.as_bytes().as_slice())
            .bind(r.subject.as_bytes().as_slice())
            .bind(r.id.as_bytes().as_slice())
            .bind(&r.collection)
            .bind(&r.ciphertext)
            .bind(i64::from(r.key_version))
            .bind(r.revision)
            .bind(to_micros(r.created_at))
            .bind(to_micros(r.updated_at))
            .bind(r.expires_at.map(to_micros))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("subject"))?;
            insert_index(conn, &r, &index).await?;
        }
        Op::UpdateRecord {
            record: r,
            expected_revision,
            index,
        } => {
            assert_subject_key(conn, r.tenant, r.subject, r.key_version).await?;
            let done = sqlx::query(
                "UPDATE records SET ciphertext = ?1, key_version = ?2, revision = ?3, \
                 updated_at = ?4, expires_at = ?5 \
                 WHERE tenant = ?6 AND subject = ?7 AND id = ?8 AND revision = ?9",
            )
            .bind(&r.ciphertext)
            .bind(i64::from(r.key_version))
            .bind(r.revision)
            .bind(to_micros(r.updated_at))
            .bind(r.expires_at.map(to_micros))
            .bind(r.tenant.as_bytes().as_slice())
            .bind(r.subject.as_bytes().as_slice())
            .bind(r.id.as_bytes().as_slice())
            .bind(expected_revision)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(
                    "record was changed or deleted concurrently; read it again".into(),
                ));
            }
            delete_index(conn, r.tenant, r.subject, r.id).await?;
            insert_index(conn, &r, &index).await?;
        }
        Op::DeleteRecords { records } => {
            for chunk in records.chunks(300) {
                for (table, id_col) in [("blind_index", "record"), ("records", "id")] {
                    let mut b: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
                        "DELETE FROM {table} WHERE (tenant, subject, {id_col}) IN ("
                    ));
                    let mut list = b.separated(", ");
                    for (t, s, r) in chunk {
                        list.push("(");
                        list.push_bind_unseparated(t.as_bytes().to_vec());
                        list.push_unseparated(", ");
                        list.push_bind_unseparated(s.as_bytes().to_vec());
                        list.push_unseparated(", ");
                        list.push_bind_unseparated(r.as_bytes().to_vec());
                        list.push_unseparated(")");
                    }
                    b.push(")");
                    b.build().execute(&mut *conn).await?;
                }
            }
        }
        Op::DeleteRecord {
            tenant,
            subject,
            id,
        } => {
            let done =
                sqlx::query("DELETE FROM records WHERE tenant = ?1 AND subject = ?2 AND id = ?3")
                    .bind(tenant.as_bytes().as_slice())
                    .bind(subject.as_bytes().as_slice())
                    .bind(id.as_bytes().as_slice())
                    .execute(&mut *conn)
                    .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("record"));
            }
            delete_index(conn, tenant, subject, id).await?;
        }
        Op::AnonymizeRecord { record: r, at } => {
            let done =
                sqlx::query("DELETE FROM records WHERE tenant = ?1 AND subject = ?2 AND id = ?3")
                    .bind(r.tenant.as_bytes().as_slice())
                    .bind(r.subject.as_bytes().as_slice())
                    .bind(r.id.as_bytes().as_slice())
                    .execute(&mut *conn)
                    .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("record"));
            }
            delete_index(conn, r.tenant, r.subject, r.id).await?;
            sqlx::query(
                "INSERT INTO anonymized_records (tenant, id, collection, ciphertext, key_version, \
                 created_at, anonymized_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(r.tenant.as_bytes().as_slice())
            .bind(r.id.as_bytes().as_slice())
            .bind(&r.collection)
            .bind(&r.ciphertext)
            .bind(i64::from(r.key_version))
            .bind(to_micros(r.created_at))
            .bind(to_micros(at))
            .execute(&mut *conn)
            .await?;
        }
        Op::SetTenantSettings { id, settings } => {
            let done = sqlx::query("UPDATE tenants SET settings = ?1 WHERE id = ?2")
                .bind(&settings)
                .bind(id.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("tenant"));
            }
        }
        Op::ShiftExpiry {
            tenant,
            collection,
            by_micros,
        } => {
            sqlx::query(
                "UPDATE records SET expires_at = expires_at - ?1 \
                 WHERE tenant = ?2 AND collection = ?3 AND expires_at IS NOT NULL",
            )
            .bind(by_micros)
            .bind(tenant.as_bytes().as_slice())
            .bind(&collection)
            .execute(&mut *conn)
            .await?;
        }
        Op::SetSubjectHold {
            tenant,
            subject,
            hold_until,
        } => {
            let done = sqlx::query(
                "UPDATE subjects SET hold_until = ?1 WHERE tenant = ?2 AND id = ?3 AND EXISTS \
                 (SELECT 1 FROM keys.subject_keys k WHERE k.tenant = ?2 AND k.subject = ?3)",
            )
            .bind(hold_until.map(to_micros))
            .bind(tenant.as_bytes().as_slice())
            .bind(subject.as_bytes().as_slice())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("subject"));
            }
        }
        Op::EraseSubject { tenant, subject } => {
            let t = tenant.as_bytes().as_slice();
            let s = subject.as_bytes().as_slice();
            // The key first: once it is gone, whatever else survives is undecryptable.
            for sql in [
                "DELETE FROM keys.subject_keys WHERE tenant = ?1 AND subject = ?2",
                "DELETE FROM keys.retired_subject_keys WHERE tenant = ?1 AND subject = ?2",
            ] {
                sqlx::query(sql).bind(t).bind(s).execute(&mut *conn).await?;
            }
            sqlx::query("DELETE FROM blind_index WHERE tenant = ?1 AND subject = ?2")
                .bind(t)
                .bind(s)
                .execute(&mut *conn)
                .await?;
            sqlx::query("DELETE FROM records WHERE tenant = ?1 AND subject = ?2")
                .bind(t)
                .bind(s)
                .execute(&mut *conn)
                .await?;
            let done = sqlx::query(
                "UPDATE subjects SET external_ref = NULL, restrictions = '[]', \
                 hold_until = NULL WHERE tenant = ?1 AND id = ?2",
            )
            .bind(t)
            .bind(s)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("subject"));
            }
        }
        Op::InsertLedger(l) => {
            sqlx::query(
                "INSERT INTO erasure_ledger (id, tenant, subject, requested_by, erased_at, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(l.id.as_bytes().as_slice())
            .bind(l.tenant.as_bytes().as_slice())
            .bind(l.subject.as_bytes().as_slice())
            .bind(&l.requested_by)
            .bind(to_micros(l.erased_at))
            .bind(&l.detail)
            .execute(&mut *conn)
            .await?;
        }
        Op::InsertHold(h) => {
            sqlx::query(
                "INSERT INTO holds (tenant, id, subject, key_version, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(h.tenant.as_bytes().as_slice())
            .bind(h.id.as_bytes().as_slice())
            .bind(h.subject.as_bytes().as_slice())
            .bind(i64::from(h.key_version))
            .bind(to_micros(h.created_at))
            .execute(&mut *conn)
            .await?;
            if let Some(key) = &h.wrapped_key {
                sqlx::query(
                    "INSERT INTO keys.hold_keys (tenant, hold, wrapped_key, key_version) VALUES (?1, ?2, ?3, ?4)",
                )
                .bind(h.tenant.as_bytes().as_slice())
                .bind(h.id.as_bytes().as_slice())
                .bind(key)
                .bind(i64::from(h.key_version))
                .execute(&mut *conn)
                .await?;
            }
        }
        Op::InsertHeldRecord(h) => {
            sqlx::query(
                "INSERT INTO held_records (tenant, hold, id, collection, ciphertext, key_version, \
                 created_at, hold_until, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .bind(h.tenant.as_bytes().as_slice())
            .bind(h.hold.as_bytes().as_slice())
            .bind(h.id.as_bytes().as_slice())
            .bind(&h.collection)
            .bind(&h.ciphertext)
            .bind(i64::from(h.key_version))
            .bind(to_micros(h.created_at))
            .bind(to_micros(h.hold_until))
            .bind(&h.reason)
            .execute(&mut *conn)
            .await?;
        }
        Op::DeleteHeldRecord { tenant, id } => {
            sqlx::query("DELETE FROM held_records WHERE tenant = ?1 AND id = ?2")
                .bind(tenant.as_bytes().as_slice())
                .bind(id.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
        }
        Op::RewrapTenant {
            id,
            wrapped_key,
            root_key_version,
            key_version,
            expected_key_version,
        } => {
            let moved = sqlx::query("UPDATE tenants SET root_key_version = ?1, key_version = ?2 WHERE id = ?3 AND key_version = ?4")
                .bind(i64::from(root_key_version))
                .bind(i64::from(key_version))
                .bind(id.as_bytes().as_slice())
                .bind(i64::from(expected_key_version))
                .execute(&mut *conn)
                .await?;
            if moved.rows_affected() == 0 {
                return Err(StoreError::Conflict(
                    "the tenant key changed concurrently".into(),
                ));
            }
            let done =
                sqlx::query("UPDATE keys.tenant_keys SET wrapped_key = ?1, root_key_version = ?3, key_version = ?4 WHERE tenant = ?2")
                    .bind(&wrapped_key)
                    .bind(id.as_bytes().as_slice())
                    .bind(i64::from(root_key_version))
                    .bind(i64::from(key_version))
                    .execute(&mut *conn)
                    .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("tenant"));
            }
        }
        Op::AssertKeyVersion {
            tenant,
            key_version,
        } => {
            let stragglers: i64 = sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM subjects s JOIN keys.subject_keys sk \
                 ON sk.tenant = s.tenant AND sk.subject = s.id \
                 WHERE s.tenant = ?1 AND sk.key_version <> ?2) + \
                 (SELECT COUNT(*) FROM holds h JOIN keys.hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id \
                 WHERE h.tenant = ?1 AND hk.key_version <> ?2) + \
                 (SELECT COUNT(*) FROM keys.retired_subject_keys rk \
                 WHERE rk.tenant = ?1 AND rk.key_version <> ?2)",
            )
            .bind(tenant.as_bytes().as_slice())
            .bind(i64::from(key_version))
            .fetch_one(&mut *conn)
            .await?;
            if stragglers > 0 {
                return Err(StoreError::Conflict(
                    "keys were created during the rotation; rotate again".into(),
                ));
            }
        }
        Op::RewrapSubject {
            tenant,
            subject,
            wrapped_key,
            key_version,
        } => {
            let done = sqlx::query(
                "UPDATE keys.subject_keys SET wrapped_key = ?1, key_version = ?4 WHERE tenant = ?2 AND subject = ?3",
            )
            .bind(&wrapped_key)
            .bind(tenant.as_bytes().as_slice())
            .bind(subject.as_bytes().as_slice())
            .bind(i64::from(key_version))
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("subject"));
            }
            sqlx::query("UPDATE subjects SET key_version = ?1 WHERE tenant = ?2 AND id = ?3")
                .bind(i64::from(key_version))
                .bind(tenant.as_bytes().as_slice())
                .bind(subject.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
        }
        Op::RewrapHold {
            tenant,
            hold,
            wrapped_key,
            key_version,
        } => {
            let done = sqlx::query(
                "UPDATE keys.hold_keys SET wrapped_key = ?1, key_version = ?4 WHERE tenant = ?2 AND hold = ?3",
            )
            .bind(&wrapped_key)
            .bind(tenant.as_bytes().as_slice())
            .bind(hold.as_bytes().as_slice())
            .bind(i64::from(key_version))
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("hold"));
            }
            sqlx::query("UPDATE holds SET key_version = ?1 WHERE tenant = ?2 AND id = ?3")
                .bind(i64::from(key_version))
                .bind(tenant.as_bytes().as_slice())
                .bind(hold.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
        }
        Op::ShredHold { tenant, id } => {
            sqlx::query("DELETE FROM keys.hold_keys WHERE tenant = ?1 AND hold = ?2")
                .bind(tenant.as_bytes().as_slice())
                .bind(id.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
        }
        Op::InsertRequest(r) => {
            sqlx::query(
                "INSERT INTO requests (tenant, id, kind, subject, status, verified_by, detail, \
                 created_at, due_at, closed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .bind(r.tenant.as_bytes().as_slice())
            .bind(r.id.as_bytes().as_slice())
            .bind(&r.kind)
            .bind(r.subject.as_bytes().as_slice())
            .bind(&r.status)
            .bind(&r.verified_by)
            .bind(&r.detail)
            .bind(to_micros(r.created_at))
            .bind(to_micros(r.due_at))
            .bind(r.closed_at.map(to_micros))
            .execute(&mut *conn)
            .await?;
        }
        Op::UpdateRequest {
            tenant,
            id,
            status,
            detail,
            closed_at,
        } => {
            let done = sqlx::query(
                "UPDATE requests SET status = ?1, detail = ?2, closed_at = ?3 WHERE tenant = ?4 AND id = ?5",
            )
            .bind(&status)
            .bind(&detail)
            .bind(closed_at.map(to_micros))
            .bind(tenant.as_bytes().as_slice())
            .bind(id.as_bytes().as_slice())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("request"));
            }
        }
        Op::DestroyTenant { id, at } => {
            let t = id.as_bytes().as_slice();
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
            ] {
                sqlx::query(sql).bind(t).execute(&mut *conn).await?;
            }
            sqlx::query(
                "UPDATE api_keys SET revoked_at = ?1 WHERE tenant = ?2 AND revoked_at IS NULL",
            )
            .bind(to_micros(at))
            .bind(t)
            .execute(&mut *conn)
            .await?;
            let done = sqlx::query(
                "UPDATE tenants SET status = 'destroyed', status_changed_at = ?1, \
                 destroy_after = NULL, settings = '{}' WHERE id = ?2",
            )
            .bind(to_micros(at))
            .bind(t)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("tenant"));
            }
        }
        Op::PruneAudit { before } => {
            sqlx::query("DELETE FROM audit_events WHERE idx < ?1")
                .bind(before as i64)
                .execute(&mut *conn)
                .await?;
        }
        Op::RotateSubjectKeys {
            tenant,
            tenant_key_version,
            keys,
        } => rotate_subject_keys(conn, tenant, tenant_key_version, &keys).await?,
        Op::ReencryptRecords { tenant, records } => {
            let t = tenant.as_bytes().as_slice();
            for r in &records {
                sqlx::query(
                    "UPDATE records SET ciphertext = ?1, key_version = ?2 \
                     WHERE tenant = ?3 AND subject = ?4 AND id = ?5 AND revision = ?6",
                )
                .bind(&r.ciphertext)
                .bind(i64::from(r.key_version))
                .bind(t)
                .bind(r.subject.as_bytes().as_slice())
                .bind(r.id.as_bytes().as_slice())
                .bind(r.revision)
                .execute(&mut *conn)
                .await?;
            }
        }
        Op::DestroyRetiredKeys { tenant, subjects } => {
            let t = tenant.as_bytes().as_slice();
            for s in &subjects {
                // Only versions no record is sealed under any more: the records were
                // committed (data file) before this runs (key store).
                sqlx::query(
                    "DELETE FROM keys.retired_subject_keys AS rk \
                     WHERE rk.tenant = ?1 AND rk.subject = ?2 AND NOT EXISTS \
                     (SELECT 1 FROM records r WHERE r.tenant = ?1 AND r.subject = ?2 \
                      AND r.key_version = rk.version)",
                )
                .bind(t)
                .bind(s.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
            }
        }
        Op::InsertKeyJob(j) => {
            sqlx::query(
                "INSERT INTO key_jobs (id, tenant, status, cursor, subjects_done, records_done, \
                 records_total, started_at, updated_at, finished_at, lease_owner, lease_until, error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )
            .bind(j.id.as_bytes().as_slice())
            .bind(j.tenant.as_bytes().as_slice())
            .bind(&j.status)
            .bind(j.cursor.map(|c| c.as_bytes().to_vec()))
            .bind(j.subjects_done as i64)
            .bind(j.records_done as i64)
            .bind(j.records_total as i64)
            .bind(to_micros(j.started_at))
            .bind(to_micros(j.updated_at))
            .bind(j.finished_at.map(to_micros))
            .bind(&j.lease_owner)
            .bind(j.lease_until.map(to_micros))
            .bind(&j.error)
            .execute(&mut *conn)
            .await
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
            let done = sqlx::query(
                "UPDATE key_jobs SET cursor = COALESCE(?1, cursor), \
                 subjects_done = subjects_done + ?2, records_done = records_done + ?3, \
                 updated_at = ?4, lease_owner = ?5, lease_until = ?6 \
                 WHERE id = ?7 AND status = 'running' \
                 AND (lease_owner IS NULL OR lease_owner = ?5 OR lease_until < ?4)",
            )
            .bind(cursor.map(|c| c.as_bytes().to_vec()))
            .bind(subjects as i64)
            .bind(records as i64)
            .bind(to_micros(at))
            .bind(&owner)
            .bind(to_micros(lease_until))
            .bind(id.as_bytes().as_slice())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(
                    "the key job is finished or held by another process".into(),
                ));
            }
        }
        Op::FinishKeyJob {
            id,
            status,
            at,
            error,
        } => {
            let done = sqlx::query(
                "UPDATE key_jobs SET status = ?1, finished_at = ?2, updated_at = ?2, error = ?3, \
                 lease_owner = NULL, lease_until = NULL WHERE id = ?4 AND status = 'running'",
            )
            .bind(&status)
            .bind(to_micros(at))
            .bind(&error)
            .bind(id.as_bytes().as_slice())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("the key job is not running".into()));
            }
        }
        Op::Audit(event) => {
            let bytes = event.to_bytes();
            let (idx, chain) = audit.append(&bytes);
            sqlx::query(
                "INSERT INTO audit_events (idx, at, tenant, subject, actor, action, outcome, \
                 event, chain) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .bind(idx as i64)
            .bind(to_micros(event.at))
            .bind(event.tenant.map(|t| t.as_bytes().to_vec()))
            .bind(event.subject.map(|s| s.as_bytes().to_vec()))
            .bind(&event.actor.id)
            .bind(event.action.as_str())
            .bind(event.outcome.as_str())
            .bind(&bytes)
            .bind(chain.as_slice())
            .execute(&mut *conn)
            .await?;
            committed.audit_indices.push(idx);
        }
        Op::SaveCheckpoint(cp) => {
            sqlx::query(
                "INSERT OR REPLACE INTO audit_checkpoints (tree_size, checkpoint, frontier, \
                 created_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .bind(cp.tree_size as i64)
            .bind(&cp.checkpoint)
            .bind(&cp.frontier)
            .bind(to_micros(cp.created_at))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// A record may only be written under its subject's current key version: a rotation that
/// replaced the key meanwhile may already have destroyed the old one.
async fn assert_subject_key(
    conn: &mut SqliteConnection,
    tenant: Uuid,
    subject: Uuid,
    version: u32,
) -> Result<()> {
    let current: Option<i64> = sqlx::query_scalar(
        "SELECT version FROM keys.subject_keys WHERE tenant = ?1 AND subject = ?2",
    )
    .bind(tenant.as_bytes().as_slice())
    .bind(subject.as_bytes().as_slice())
    .fetch_optional(&mut *conn)
    .await?;
    match current {
        None => Err(StoreError::NotFound("subject")),
        Some(v) if v == i64::from(version) => Ok(()),
        Some(_) => Err(StoreError::Conflict(crate::SUBJECT_KEY_ROTATED.into())),
    }
}

async fn rotate_subject_keys(
    conn: &mut SqliteConnection,
    tenant: Uuid,
    tenant_key_version: u32,
    keys: &[crate::SubjectKeyChange],
) -> Result<()> {
    let t = tenant.as_bytes().as_slice();
    let current: Option<i64> =
        sqlx::query_scalar("SELECT key_version FROM keys.tenant_keys WHERE tenant = ?1")
            .bind(t)
            .fetch_optional(&mut *conn)
            .await?;
    if current != Some(i64::from(tenant_key_version)) {
        return Err(StoreError::Conflict(crate::KEY_ROTATED.into()));
    }
    for k in keys {
        let s = k.subject.as_bytes().as_slice();
        let retired = sqlx::query(
            "INSERT INTO keys.retired_subject_keys (tenant, subject, version, wrapped_key, key_version) \
             SELECT tenant, subject, version, wrapped_key, key_version FROM keys.subject_keys \
             WHERE tenant = ?1 AND subject = ?2 AND version = ?3",
        )
        .bind(t)
        .bind(s)
        .bind(i64::from(k.expected_version))
        .execute(&mut *conn)
        .await
        .map_err(unique_to_conflict("retired subject key"))?;
        if retired.rows_affected() == 0 {
            return Err(StoreError::Conflict(crate::SUBJECT_KEY_ROTATED.into()));
        }
        sqlx::query(
            "UPDATE keys.subject_keys SET wrapped_key = ?1, key_version = ?2, version = ?3 \
             WHERE tenant = ?4 AND subject = ?5",
        )
        .bind(&k.wrapped_key)
        .bind(i64::from(tenant_key_version))
        .bind(i64::from(k.expected_version) + 1)
        .bind(t)
        .bind(s)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn insert_index(
    conn: &mut SqliteConnection,
    r: &RecordRow,
    index: &[crate::IndexEntry],
) -> Result<()> {
    for entry in index {
        sqlx::query(
            "INSERT OR IGNORE INTO blind_index (tenant, collection, field, hash, subject, record) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(r.tenant.as_bytes().as_slice())
        .bind(&r.collection)
        .bind(&entry.field)
        .bind(entry.hash.as_slice())
        .bind(r.subject.as_bytes().as_slice())
        .bind(r.id.as_bytes().as_slice())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn delete_index(
    conn: &mut SqliteConnection,
    tenant: Uuid,
    subject: Uuid,
    id: Uuid,
) -> Result<()> {
    sqlx::query("DELETE FROM blind_index WHERE tenant = ?1 AND subject = ?2 AND record = ?3")
        .bind(tenant.as_bytes().as_slice())
        .bind(subject.as_bytes().as_slice())
        .bind(id.as_bytes().as_slice())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// ---- decoding -------------------------------------------------------------------------------

fn uuid_at(row: &SqliteRow, i: usize) -> Result<Uuid> {
    let bytes: Vec<u8> = row.try_get(i)?;
    Uuid::from_slice(&bytes).map_err(|_| StoreError::Corrupt("uuid column".into()))
}

fn opt_uuid_at(row: &SqliteRow, i: usize) -> Result<Option<Uuid>> {
    let bytes: Option<Vec<u8>> = row.try_get(i)?;
    bytes
        .map(|b| Uuid::from_slice(&b).map_err(|_| StoreError::Corrupt("uuid column".into())))
        .transpose()
}

fn u32_at(row: &SqliteRow, i: usize) -> Result<u32> {
    let v: i64 = row.try_get(i)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt("key version".into()))
}

fn hash_at(row: &SqliteRow, i: usize) -> Result<[u8; 32]> {
    let v: Vec<u8> = row.try_get(i)?;
    v.try_into()
        .map_err(|_| StoreError::Corrupt("hash column".into()))
}

const TENANT_COLUMNS: &str = "t.id, t.name, t.status, t.region, tk.wrapped_key, \
    COALESCE(tk.root_key_version, t.root_key_version), COALESCE(tk.key_version, t.key_version), \
    t.settings, t.created_at, t.status_changed_at, t.destroy_after";

/// Tenants with their wrapped key from the key store.
const TENANT_FROM: &str = "tenants t LEFT JOIN keys.tenant_keys tk ON tk.tenant = t.id";

/// Subjects with their wrapped key from the key store.
const SUBJECT_KEY_JOIN: &str =
    "LEFT JOIN keys.subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id";

fn tenant_from(row: &SqliteRow) -> Result<TenantRow> {
    Ok(TenantRow {
        id: uuid_at(row, 0)?,
        name: row.try_get(1)?,
        status: row.try_get(2)?,
        region: row.try_get(3)?,
        wrapped_key: row.try_get(4)?,
        root_key_version: u32_at(row, 5)?,
        key_version: u32_at(row, 6)?,
        settings: row.try_get(7)?,
        created_at: from_micros(row.try_get(8)?),
        status_changed_at: from_micros(row.try_get(9)?),
        destroy_after: row.try_get::<Option<i64>, _>(10)?.map(from_micros),
    })
}

const KEY_COLUMNS: &str = "id, tenant, token_hash, name, role, purposes, created_at, revoked_at";

fn key_from(row: &SqliteRow) -> Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: uuid_at(row, 0)?,
        tenant: opt_uuid_at(row, 1)?,
        token_hash: hash_at(row, 2)?,
        name: row.try_get(3)?,
        role: row.try_get(4)?,
        purposes: row.try_get(5)?,
        created_at: from_micros(row.try_get(6)?),
        revoked_at: row.try_get::<Option<i64>, _>(7)?.map(from_micros),
    })
}

const SUBJECT_COLUMNS: &str = "s.tenant, s.id, s.external_ref, sk.wrapped_key, COALESCE(sk.key_version, s.key_version), \
    s.restrictions, s.hold_until, s.created_at, COALESCE(sk.version, 1)";

/// How many columns [`SUBJECT_COLUMNS`] has (record columns follow them in joins).
const SUBJECT_WIDTH: usize = 9;

/// Decodes subject columns starting at `at`.
fn subject_from(row: &SqliteRow, at: usize) -> Result<SubjectRow> {
    Ok(SubjectRow {
        tenant: uuid_at(row, at)?,
        id: uuid_at(row, at + 1)?,
        external_ref: row.try_get(at + 2)?,
        wrapped_key: row.try_get(at + 3)?,
        key_version: u32_at(row, at + 4)?,
        restrictions: row.try_get(at + 5)?,
        hold_until: row.try_get::<Option<i64>, _>(at + 6)?.map(from_micros),
        created_at: from_micros(row.try_get(at + 7)?),
        record_key_version: u32_at(row, at + 8)?,
    })
}

const RECORD_COLUMNS: &str = "r.id, r.collection, r.ciphertext, r.key_version, r.revision, \
    r.created_at, r.updated_at, r.expires_at";

/// Decodes record columns starting at `at`; `None` when the LEFT JOIN found no record.
fn record_from(
    row: &SqliteRow,
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
        collection: row.try_get(at + 1)?,
        ciphertext: row.try_get(at + 2)?,
        key_version: u32_at(row, at + 3)?,
        revision: row.try_get(at + 4)?,
        created_at: from_micros(row.try_get(at + 5)?),
        updated_at: from_micros(row.try_get(at + 6)?),
        expires_at: row.try_get::<Option<i64>, _>(at + 7)?.map(from_micros),
    }))
}

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, ops: Vec<Op>) -> Result<Committed> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Job::Commit(ops, tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn tenant(&self, id: Uuid) -> Result<Option<TenantRow>> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM {TENANT_FROM} WHERE t.id = ?1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_bytes().as_slice())
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(tenant_from).transpose()
    }

    async fn tenants(&self) -> Result<Vec<TenantRow>> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM {TENANT_FROM} ORDER BY t.created_at");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(tenant_from).collect()
    }

    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRow>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE token_hash = ?1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(hash.as_slice())
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(key_from).transpose()
    }

    async fn api_keys(&self, tenant: Option<Uuid>) -> Result<Vec<ApiKeyRow>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant IS ?1 ORDER BY id");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.map(|t| t.as_bytes().to_vec()))
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(key_from).collect()
    }

    async fn subject_view(
        &self,
        tenant: Uuid,
        subject: Uuid,
        records: RecordFilter<'_>,
    ) -> Result<Option<SubjectView>> {
        let join = match records {
            // No records wanted: no join at all (a join with a false condition still walks
            // the subject's records in SQLite).
            RecordFilter::None => None,
            RecordFilter::One(_) => Some("AND r.id = ?3"),
            RecordFilter::All(None) => Some(""),
            RecordFilter::All(Some(_)) => Some("AND r.collection = ?3"),
        };
        let sql = match join {
            None => format!(
                "SELECT t.status, {SUBJECT_COLUMNS} FROM subjects s \
                 JOIN tenants t ON t.id = s.tenant {SUBJECT_KEY_JOIN} \
                 WHERE s.tenant = ?1 AND s.id = ?2"
            ),
            Some(join) => format!(
                "SELECT t.status, {SUBJECT_COLUMNS}, {RECORD_COLUMNS} FROM subjects s \
                 JOIN tenants t ON t.id = s.tenant {SUBJECT_KEY_JOIN} \
                 LEFT JOIN records r ON r.tenant = s.tenant AND r.subject = s.id {join} \
                 WHERE s.tenant = ?1 AND s.id = ?2 ORDER BY r.id"
            ),
        };
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_bytes().as_slice())
            .bind(subject.as_bytes().as_slice());
        match records {
            RecordFilter::One(id) => query = query.bind(id.as_bytes().to_vec()),
            RecordFilter::All(Some(c)) => query = query.bind(c),
            _ => {}
        }
        let rows = query.fetch_all(&self.readers).await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut view = SubjectView {
            tenant_status: first.try_get(0)?,
            subject: subject_from(first, 1)?,
            records: Vec::with_capacity(rows.len()),
        };
        if join.is_some() {
            for row in &rows {
                if let Some(r) = record_from(row, 1 + SUBJECT_WIDTH, tenant, subject)? {
                    view.records.push(r);
                }
            }
        }
        Ok(Some(view))
    }

    async fn subject_by_ref(&self, tenant: Uuid, ref_hash: &[u8]) -> Result<Option<SubjectRow>> {
        let sql = format!(
            "SELECT {SUBJECT_COLUMNS} FROM subjects s {SUBJECT_KEY_JOIN} WHERE s.tenant = ?1 AND s.external_ref = ?2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_bytes().as_slice())
            .bind(ref_hash)
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(|r| subject_from(r, 0)).transpose()
    }

    async fn lookup(
        &self,
        tenant: Uuid,
        collection: &str,
        field: &str,
        hash: &[u8],
    ) -> Result<Vec<(SubjectRow, RecordRow)>> {
        let sql = format!(
            "SELECT {SUBJECT_COLUMNS}, {RECORD_COLUMNS} FROM blind_index b \
             JOIN records r ON r.tenant = b.tenant AND r.subject = b.subject AND r.id = b.record \
             JOIN subjects s ON s.tenant = b.tenant AND s.id = b.subject {SUBJECT_KEY_JOIN} \
             WHERE b.tenant = ?1 AND b.collection = ?2 AND b.field = ?3 AND b.hash = ?4 \
             ORDER BY r.id LIMIT 1000"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_bytes().as_slice())
            .bind(collection)
            .bind(field)
            .bind(hash)
            .fetch_all(&self.readers)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let s = subject_from(row, 0)?;
            if let Some(r) = record_from(row, SUBJECT_WIDTH, s.tenant, s.id)? {
                out.push((s, r));
            }
        }
        Ok(out)
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
        let rows = sqlx::query(
            "SELECT idx, event, chain, at, tenant, subject, actor, action, outcome FROM audit_events WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
        )
        .bind(from as i64)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(audit_row_from).collect()
    }

    async fn audit_query(&self, q: &AuditQuery) -> Result<Vec<AuditRow>> {
        let mut b: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT idx, event, chain, at, tenant, subject, actor, action, outcome FROM audit_events WHERE tenant = ",
        );
        b.push_bind(q.tenant.as_bytes().to_vec());
        if let Some(t) = q.since {
            b.push(" AND at >= ").push_bind(to_micros(t));
        }
        if let Some(t) = q.until {
            b.push(" AND at < ").push_bind(to_micros(t));
        }
        if let Some(a) = &q.actor {
            b.push(" AND actor = ").push_bind(a.clone());
        }
        if let Some(s) = q.subject {
            b.push(" AND subject = ").push_bind(s.as_bytes().to_vec());
        }
        if let Some(a) = &q.action {
            b.push(" AND action = ").push_bind(a.clone());
        }
        if let Some(o) = &q.outcome {
            b.push(" AND outcome = ").push_bind(o.clone());
        }
        if let Some(after) = q.after {
            b.push(" AND idx > ").push_bind(after as i64);
        }
        b.push(" ORDER BY idx LIMIT ").push_bind(i64::from(q.limit));
        let rows = b.build().fetch_all(&self.readers).await?;
        rows.iter().map(audit_row_from).collect()
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>> {
        let rows = sqlx::query(
            "SELECT tree_size, checkpoint, frontier, created_at FROM audit_checkpoints ORDER BY tree_size",
        )
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CheckpointRow {
                    tree_size: row.try_get::<i64, _>(0)? as u64,
                    checkpoint: row.try_get(1)?,
                    frontier: row.try_get(2)?,
                    created_at: from_micros(row.try_get(3)?),
                })
            })
            .collect()
    }

    async fn audit_leaves(&self, size: u64) -> Result<Vec<Hash>> {
        let rows = sqlx::query("SELECT event FROM audit_events WHERE idx < ?1 ORDER BY idx")
            .bind(size as i64)
            .fetch_all(&self.readers)
            .await?;
        rows.iter()
            .map(|row| Ok(leaf_hash(&row.try_get::<Vec<u8>, _>(0)?)))
            .collect()
    }
    async fn audit_index_at(&self, at: time::OffsetDateTime) -> Result<Option<u64>> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MIN(idx) FROM audit_events WHERE at >= ?1")
            .bind(to_micros(at))
            .fetch_one(&self.readers)
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
        let mut b: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {SUBJECT_COLUMNS}, {RECORD_COLUMNS}, r.expires_at AS ord FROM records r \
             JOIN subjects s ON s.tenant = r.tenant AND s.id = r.subject {SUBJECT_KEY_JOIN} \
             WHERE r.expires_at IS NOT NULL AND r.expires_at <= "
        ));
        b.push_bind(to_micros(now));
        if let Some((at, id)) = after {
            // A row-value comparison walks the (expires_at, id) index from the cursor on.
            b.push(" AND (r.expires_at, r.id) > (")
                .push_bind(to_micros(at));
            b.push(", ").push_bind(id.as_bytes().to_vec()).push(")");
        }
        if let Some(t) = tenant {
            b.push(" AND r.tenant = ").push_bind(t.as_bytes().to_vec());
        }
        b.push(" ORDER BY r.expires_at, r.id LIMIT ")
            .push_bind(i64::from(limit));
        let rows = b.build().fetch_all(&self.readers).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let subject = subject_from(row, 0)?;
            if let Some(record) = record_from(row, SUBJECT_WIDTH, subject.tenant, subject.id)? {
                out.push(ExpiredRecord { subject, record });
            }
        }
        Ok(out)
    }

    async fn expired_held_records(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<HeldRecordRow>> {
        let rows = sqlx::query(
            "SELECT tenant, hold, id, collection, ciphertext, key_version, created_at, hold_until, reason \
             FROM held_records WHERE hold_until <= ?1 ORDER BY hold_until LIMIT ?2",
        )
        .bind(to_micros(now))
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(held_from).collect()
    }

    async fn empty_holds(&self) -> Result<Vec<HoldRow>> {
        let rows = sqlx::query(
            "SELECT h.tenant, h.id, h.subject, hk.wrapped_key, COALESCE(hk.key_version, h.key_version), h.created_at FROM holds h \
             JOIN keys.hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id WHERE NOT EXISTS \
             (SELECT 1 FROM held_records r WHERE r.tenant = h.tenant AND r.hold = h.id)",
        )
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(|r| hold_from(r, 0)).collect()
    }

    async fn held_records(
        &self,
        tenant: Uuid,
        subject: Uuid,
    ) -> Result<Vec<(HoldRow, HeldRecordRow)>> {
        let rows = sqlx::query(
            "SELECT h.tenant, h.id, h.subject, hk.wrapped_key, COALESCE(hk.key_version, h.key_version), h.created_at, \
             r.tenant, r.hold, r.id, r.collection, r.ciphertext, r.key_version, r.created_at, r.hold_until, r.reason \
             FROM holds h JOIN held_records r ON r.tenant = h.tenant AND r.hold = h.id \
             LEFT JOIN keys.hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id \
             WHERE h.tenant = ?1 AND h.subject = ?2 ORDER BY r.id",
        )
        .bind(tenant.as_bytes().as_slice())
        .bind(subject.as_bytes().as_slice())
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| Ok((hold_from(r, 0)?, held_from_at(r, 6)?)))
            .collect()
    }

    async fn ledger_entry(&self, tenant: Uuid, subject: Uuid) -> Result<Option<LedgerRow>> {
        let row = sqlx::query(
            "SELECT id, tenant, subject, requested_by, erased_at, detail FROM erasure_ledger \
             WHERE tenant = ?1 AND subject = ?2 ORDER BY erased_at LIMIT 1",
        )
        .bind(tenant.as_bytes().as_slice())
        .bind(subject.as_bytes().as_slice())
        .fetch_optional(&self.readers)
        .await?;
        row.map(|r| {
            Ok(LedgerRow {
                id: uuid_at(&r, 0)?,
                tenant: uuid_at(&r, 1)?,
                subject: uuid_at(&r, 2)?,
                requested_by: r.try_get(3)?,
                erased_at: from_micros(r.try_get(4)?),
                detail: r.try_get(5)?,
            })
        })
        .transpose()
    }

    async fn subject_ids(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Uuid>> {
        let rows = sqlx::query(
            "SELECT s.id FROM subjects s JOIN keys.subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id \
             WHERE s.tenant = ?1 AND s.id > ?2 ORDER BY s.id LIMIT ?3",
        )
        .bind(tenant.as_bytes().as_slice())
        .bind(after.unwrap_or(Uuid::nil()).as_bytes().to_vec())
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(|r| uuid_at(r, 0)).collect()
    }

    async fn keyed_subjects(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<SubjectRow>> {
        let sql = format!(
            "SELECT {SUBJECT_COLUMNS} FROM subjects s \
             JOIN keys.subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id \
             WHERE s.tenant = ?1 AND s.id > ?2 ORDER BY s.id LIMIT ?3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_bytes().as_slice())
            .bind(after.unwrap_or(Uuid::nil()).as_bytes().to_vec())
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(|r| subject_from(r, 0)).collect()
    }

    async fn live_holds(&self, tenant: Uuid) -> Result<Vec<HoldRow>> {
        let rows = sqlx::query(
            "SELECT h.tenant, h.id, h.subject, hk.wrapped_key, COALESCE(hk.key_version, h.key_version), h.created_at FROM holds h \
             JOIN keys.hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id WHERE h.tenant = ?1 ORDER BY h.id",
        )
        .bind(tenant.as_bytes().as_slice())
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(|r| hold_from(r, 0)).collect()
    }

    async fn retired_keys(&self, tenant: Uuid, subject: Uuid) -> Result<Vec<RetiredKeyRow>> {
        let rows = sqlx::query(
            "SELECT version, wrapped_key, key_version FROM keys.retired_subject_keys \
             WHERE tenant = ?1 AND subject = ?2 ORDER BY version",
        )
        .bind(tenant.as_bytes().as_slice())
        .bind(subject.as_bytes().as_slice())
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RetiredKeyRow {
                    version: u32_at(r, 0)?,
                    wrapped_key: r.try_get(1)?,
                    key_version: u32_at(r, 2)?,
                })
            })
            .collect()
    }

    async fn subjects_with_retired_keys(&self, tenant: Uuid, limit: u32) -> Result<Vec<Uuid>> {
        let rows = sqlx::query(
            "SELECT DISTINCT subject FROM keys.retired_subject_keys WHERE tenant = ?1 \
             ORDER BY subject LIMIT ?2",
        )
        .bind(tenant.as_bytes().as_slice())
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(|r| uuid_at(r, 0)).collect()
    }

    async fn retired_key_count(&self, tenant: Option<Uuid>) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM keys.retired_subject_keys WHERE ?1 IS NULL OR tenant = ?1",
        )
        .bind(tenant.map(|t| t.as_bytes().to_vec()))
        .fetch_one(&self.readers)
        .await?;
        Ok(n as u64)
    }

    async fn records_of_subjects(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        through: Uuid,
    ) -> Result<Vec<RecordRow>> {
        let sql = format!(
            "SELECT r.subject, {RECORD_COLUMNS} FROM records r \
             WHERE r.tenant = ?1 AND r.subject > ?2 AND r.subject <= ?3 ORDER BY r.subject, r.id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_bytes().as_slice())
            .bind(after.unwrap_or(Uuid::nil()).as_bytes().to_vec())
            .bind(through.as_bytes().as_slice())
            .fetch_all(&self.readers)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(r) = record_from(row, 1, tenant, uuid_at(row, 0)?)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    async fn record_count(&self, tenant: Uuid) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records WHERE tenant = ?1")
            .bind(tenant.as_bytes().as_slice())
            .fetch_one(&self.readers)
            .await?;
        Ok(n as u64)
    }

    async fn key_jobs(&self, status: Option<&str>) -> Result<Vec<KeyJobRow>> {
        let rows = sqlx::query(
            "SELECT id, tenant, status, cursor, subjects_done, records_done, records_total, \
             started_at, updated_at, finished_at, lease_owner, lease_until, error FROM key_jobs \
             WHERE ?1 IS NULL OR status = ?1 ORDER BY started_at DESC, id DESC LIMIT 1000",
        )
        .bind(status)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyJobRow {
                    id: uuid_at(r, 0)?,
                    tenant: uuid_at(r, 1)?,
                    status: r.try_get(2)?,
                    cursor: opt_uuid_at(r, 3)?,
                    subjects_done: r.try_get::<i64, _>(4)? as u64,
                    records_done: r.try_get::<i64, _>(5)? as u64,
                    records_total: r.try_get::<i64, _>(6)? as u64,
                    started_at: from_micros(r.try_get(7)?),
                    updated_at: from_micros(r.try_get(8)?),
                    finished_at: r.try_get::<Option<i64>, _>(9)?.map(from_micros),
                    lease_owner: r.try_get(10)?,
                    lease_until: r.try_get::<Option<i64>, _>(11)?.map(from_micros),
                    error: r.try_get(12)?,
                })
            })
            .collect()
    }

    async fn request(&self, tenant: Uuid, id: Uuid) -> Result<Option<RequestRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE tenant = ?1 AND id = ?2"
        )))
        .bind(tenant.as_bytes().as_slice())
        .bind(id.as_bytes().as_slice())
        .fetch_optional(&self.readers)
        .await?;
        row.as_ref().map(request_from).transpose()
    }

    async fn requests(&self, tenant: Uuid, status: Option<&str>) -> Result<Vec<RequestRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE tenant = ?1 AND (?2 IS NULL OR status = ?2) \
             ORDER BY due_at, id"
        )))
        .bind(tenant.as_bytes().as_slice())
        .bind(status)
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(request_from).collect()
    }
}

const REQUEST_COLUMNS: &str =
    "tenant, id, kind, subject, status, verified_by, detail, created_at, due_at, closed_at";

fn request_from(r: &SqliteRow) -> Result<RequestRow> {
    Ok(RequestRow {
        tenant: uuid_at(r, 0)?,
        id: uuid_at(r, 1)?,
        kind: r.try_get(2)?,
        subject: uuid_at(r, 3)?,
        status: r.try_get(4)?,
        verified_by: r.try_get(5)?,
        detail: r.try_get(6)?,
        created_at: from_micros(r.try_get(7)?),
        due_at: from_micros(r.try_get(8)?),
        closed_at: r.try_get::<Option<i64>, _>(9)?.map(from_micros),
    })
}

fn hold_from(r: &SqliteRow, at: usize) -> Result<HoldRow> {
    Ok(HoldRow {
        tenant: uuid_at(r, at)?,
        id: uuid_at(r, at + 1)?,
        subject: uuid_at(r, at + 2)?,
        wrapped_key: r.try_get(at + 3)?,
        key_version: u32_at(r, at + 4)?,
        created_at: from_micros(r.try_get(at + 5)?),
    })
}

fn held_from(r: &SqliteRow) -> Result<HeldRecordRow> {
    held_from_at(r, 0)
}

fn held_from_at(r: &SqliteRow, at: usize) -> Result<HeldRecordRow> {
    Ok(HeldRecordRow {
        tenant: uuid_at(r, at)?,
        hold: uuid_at(r, at + 1)?,
        id: uuid_at(r, at + 2)?,
        collection: r.try_get(at + 3)?,
        ciphertext: r.try_get(at + 4)?,
        key_version: u32_at(r, at + 5)?,
        created_at: from_micros(r.try_get(at + 6)?),
        hold_until: from_micros(r.try_get(at + 7)?),
        reason: r.try_get(at + 8)?,
    })
}

fn audit_row_from(row: &SqliteRow) -> Result<AuditRow> {
    Ok(AuditRow {
        idx: row.try_get::<i64, _>(0)? as u64,
        event: row.try_get(1)?,
        chain: hash_at(row, 2)?,
        columns: crate::AuditColumns {
            at: row.try_get(3)?,
            tenant: opt_uuid_at(row, 4)?,
            subject: opt_uuid_at(row, 5)?,
            actor: row.try_get(6)?,
            action: row.try_get(7)?,
            outcome: row.try_get(8)?,
        },
    })
}

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

use batch::RecordWrite;

use crate::{
    AlertQuery, AlertRow, ApiKeyRow, AuditColumns, AuditHead, AuditQuery, AuditRow, CheckpointRow,
    Committed, Conflict, ExpiredRecord, HeldRecordRow, HoldRow, IndexEntry, InvitationRow,
    KeyJobRow, KeyOwner, KeysRewrapped, LedgerRow, MembershipRow, Op, Reconciliation, RecordFilter,
    RecordRow, RequestRow, Result, RetiredKeyRow, Rewrapper, SessionRow, SnapshotStream,
    SnapshotSummary, Store, StoreError, SubjectRow, SubjectView, SupportGrantRow, TenantRow,
    TenantStatus, UserRow, WrappedKey, from_micros, to_micros,
};

/// Most requests one group commit takes; bounds the latency a batch adds to its first member.
const MAX_BATCH: usize = 512;

/// Read pool size per store. Reads are one query each, so a few connections keep up with many
/// clients; more would only add PostgreSQL backends competing for the same cores.
const MAX_CONNECTIONS: u32 = 8;

/// Writer tasks per store. While one batch waits for its commit (the WAL flush), the next
/// batch is already being gathered and written by the other writer; the `audit_head` row lock
/// orders their final appends exactly as it orders those of several servers.
const WRITERS: usize = 2;

/// Key of the session advisory lock held while creating the schema and migrating, so that
/// servers starting together apply migrations one at a time (`"ward:mig"` in ASCII).
const MIGRATION_LOCK: i64 = i64::from_be_bytes(*b"ward:mig");

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

/// Refuses schema names that would need quoting (or could smuggle SQL into `CREATE SCHEMA`).
fn check_schema_name(schema: &str) -> Result<()> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && schema.len() <= 63 {
        Ok(())
    } else {
        Err(StoreError::Database(sqlx::Error::Configuration(
            format!("invalid PostgreSQL schema name {schema:?}: use ^[a-z_][a-z0-9_]{{0,62}}$")
                .into(),
        )))
    }
}

/// Creates the schema if asked and applies migrations, under [`MIGRATION_LOCK`], on a
/// connection of its own.
async fn migrate(options: &PgConnectOptions, schema: Option<&str>) -> Result<()> {
    let mut conn = PgConnection::connect_with(options).await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut conn)
        .await?;
    let migrated = migrate_locked(&mut conn, schema).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut conn)
        .await;
    // Closing also releases the lock, should the unlock above have failed.
    let _ = conn.close().await;
    migrated?;
    unlocked?;
    Ok(())
}

async fn migrate_locked(conn: &mut PgConnection, schema: Option<&str>) -> Result<()> {
    if let Some(schema) = schema {
        // The name was checked by `check_schema_name`: lowercase letters, digits, underscores.
        conn.execute(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .await?;
    }
    // A database a newer Ward migrated is refused with both versions named, before sqlx
    // would report the unknown migration less helpfully.
    crate::schema::postgres_status(conn).await?.refuse_newer()?;
    MIGRATOR.run(conn).await?;
    Ok(())
}

/// The PostgreSQL migrations, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The migrations this Ward applies to a PostgreSQL database.
pub(crate) fn known_migrations() -> Vec<crate::schema::Migration> {
    MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| crate::schema::Migration {
            version: m.version,
            // `migrate!` compiles the descriptions in, so they are borrowed for 'static.
            description: match &m.description {
                std::borrow::Cow::Borrowed(s) => s,
                std::borrow::Cow::Owned(_) => "",
            },
        })
        .collect()
}

// ---- the writer -----------------------------------------------------------------------------

/// The audit log's tail: what the `audit_head` row holds and the next append needs.
struct AuditTail {
    frontier: Frontier,
    chain: Hash,
}

impl AuditTail {
    const COLUMNS: &'static str = "size, chain, frontier";

    fn from_row(row: &PgRow) -> Result<Self> {
        let size: i64 = row.try_get(0)?;
        let chain = hash_at(row, 1)?;
        let frontier = Frontier::from_bytes(&row.try_get::<Vec<u8>, _>(2)?)
            .map_err(|e| StoreError::Corrupt(format!("audit_head frontier: {e}")))?;
        if u64::try_from(size).ok() != Some(frontier.size()) {
            return Err(StoreError::Corrupt(format!(
                "audit_head size {size} disagrees with its frontier ({})",
                frontier.size()
            )));
        }
        Ok(Self { frontier, chain })
    }

    /// Locks the head row until the transaction ends and reads it.
    async fn lock(conn: &mut PgConnection) -> Result<Self> {
        let sql = format!(
            "SELECT {} FROM audit_head WHERE id = 1 FOR UPDATE",
            Self::COLUMNS
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .fetch_optional(conn)
            .await?
            .ok_or_else(|| StoreError::Corrupt("audit_head row is missing".into()))?;
        Self::from_row(&row)
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

/// An audit event of a request that succeeded, waiting for the end of the batch to get its
/// index.
struct StagedEvent {
    /// Position of its request in the batch.
    request: usize,
    at: i64,
    tenant: Option<Uuid>,
    subject: Option<Uuid>,
    actor: String,
    action: &'static str,
    outcome: &'static str,
    bytes: Vec<u8>,
}

/// One writer: takes whatever requests are waiting (the receiver is shared by the store's
/// writers, and held only while gathering) and commits them as one batch.
async fn run_writer(pool: PgPool, rx: std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let jobs = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            jobs
        };
        group_commit(&pool, jobs).await;
    }
}

/// A request of a batch that the set-based pass can take: record writes and audit events.
struct SetRequest {
    /// Position of the request in the batch.
    request: usize,
    writes: Vec<RecordWrite>,
    events: Vec<StagedEvent>,
}

/// A request of a batch, sorted by how the writer applies it.
enum Planned {
    /// Only record writes of pairwise different records, and audit events.
    Set(SetRequest),
    /// Anything else, applied op by op.
    Ops(usize, Vec<Op>),
}

/// Sorts request `request` for the writer: as record writes and staged audit events when it
/// has nothing else and touches no record twice, else as it is.
fn plan(request: usize, ops: Vec<Op>) -> Planned {
    let mut keys = std::collections::HashSet::new();
    let set_based = ops.iter().all(|op| match op {
        Op::Audit(_) => true,
        // Two writes of one record depend on each other: one statement cannot order them.
        op if RecordWrite::accepts(op) => RecordWrite::key_of(op).is_some_and(|k| keys.insert(k)),
        _ => false,
    });
    if !set_based {
        return Planned::Ops(request, ops);
    }
    let mut writes = Vec::new();
    let mut events = Vec::new();
    for op in ops {
        match op {
            Op::Audit(event) => events.push(stage(request, event)),
            // Only record writes and audit events got this far.
            op => writes.extend(RecordWrite::from_op(op)),
        }
    }
    Planned::Set(SetRequest {
        request,
        writes,
        events,
    })
}

/// An audit event of request `request`, waiting for the end of the batch.
fn stage(request: usize, event: Box<ward_audit::AuditEvent>) -> StagedEvent {
    let event = *event;
    StagedEvent {
        request,
        at: to_micros(event.at),
        tenant: event.tenant,
        subject: event.subject,
        action: event.action.as_str(),
        outcome: event.outcome.as_str(),
        bytes: event.to_bytes(),
        actor: event.actor.id,
    }
}

/// A statement error of a record write, as the one-row path reports it.
fn record_error(e: StoreError) -> StoreError {
    match e {
        StoreError::Database(e) => unique_to_conflict("subject")(e),
        other => other,
    }
}

/// Commits a batch of requests in one transaction and appends their audit events at the end.
///
/// Requests of one record write (and audit events) go first, all together, through the
/// set-based statements of [`batch`]: a few round trips for the whole batch, and only the
/// requests whose write lost fail. Everything else follows one request at a time, each under
/// its own savepoint so that a failing request rolls back alone.
async fn group_commit(pool: &PgPool, jobs: Vec<Job>) {
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            let msg = e.to_string();
            for (_, reply) in jobs {
                let _ = reply.send(Err(StoreError::Conflict(Conflict::Interrupted(format!(
                    "could not begin: {msg}"
                )))));
            }
            return;
        }
    };
    // With one request there is nothing to isolate it from: on failure the whole
    // transaction rolls back.
    let isolate = jobs.len() > 1;
    let mut replies = Vec::with_capacity(jobs.len());
    let mut outcomes: Vec<Result<Committed>> = Vec::with_capacity(jobs.len());
    let mut together = Vec::new();
    let mut alone = Vec::new();
    let mut claimed = std::collections::HashSet::new();
    for (request, (ops, reply)) in jobs.into_iter().enumerate() {
        replies.push(reply);
        outcomes.push(Ok(Committed::default()));
        match plan(request, ops) {
            // A record another request of the set writes too waits for its turn alone, so
            // that it sees that write (and loses against it, as it would in sequence).
            Planned::Set(set)
                if set.writes.len() <= 1 && set.writes.iter().all(|w| claimed.insert(w.key())) =>
            {
                together.push(set)
            }
            planned => alone.push(planned),
        }
    }
    // Tenant rows before anything else: the lock order of `tenant_locks`.
    let mut tenant_locks = tenant_locks::TenantLocks::default();
    for planned in &alone {
        if let Planned::Ops(_, ops) = planned {
            tenant_locks.add(ops);
        }
    }
    let mut events = Vec::new();
    let mut broken = tenant_locks.take(&mut tx).await.err();
    let together = if broken.is_some() {
        Vec::new()
    } else {
        together
    };
    match apply_together(&mut tx, together, isolate, &mut outcomes, &mut events).await {
        Ok(replay) if replay.is_empty() => {}
        Ok(replay) => {
            // A statement of the pass failed as a whole and aborted the transaction, which
            // held nothing else yet (the pass runs first): start it again and replay the
            // pass's requests one at a time.
            let _ = tx.rollback().await;
            tx = match pool.begin().await {
                Ok(tx) => tx,
                Err(e) => {
                    let msg = e.to_string();
                    for reply in replies {
                        let _ = reply.send(Err(StoreError::Conflict(Conflict::Interrupted(
                            format!("could not begin: {msg}"),
                        ))));
                    }
                    return;
                }
            };
            broken = tenant_locks.take(&mut tx).await.err();
            alone.splice(0..0, replay.into_iter().map(Planned::Set));
        }
        Err(e) => broken = Some(e),
    }
    for planned in alone {
        let request = match &planned {
            Planned::Set(set) => set.request,
            Planned::Ops(request, _) => *request,
        };
        if broken.is_some() {
            // Answered below with the error that broke the transaction.
            outcomes[request] = Err(StoreError::Closed);
            continue;
        }
        let applied = match planned {
            Planned::Ops(request, ops) => {
                apply_request(&mut tx, &mut events, request, ops, isolate).await
            }
            Planned::Set(set) => apply_alone(&mut tx, set, isolate, &mut events).await,
        };
        match applied {
            Ok(outcome) => outcomes[request] = outcome,
            Err(e) => {
                // A savepoint could not be set, released or rolled back to: the
                // transaction is in an unknown state and must not commit.
                broken = Some(e);
                outcomes[request] = Err(StoreError::Closed);
            }
        }
    }
    let mut results: Vec<_> = replies.into_iter().zip(outcomes).collect();
    if broken.is_none() && results.iter().all(|(_, outcome)| outcome.is_err()) {
        // Nothing to keep (and after a failure without savepoint, nothing that could be).
        let _ = tx.rollback().await;
        for (reply, outcome) in results {
            let _ = reply.send(outcome);
        }
        return;
    }
    let finished = match broken {
        Some(e) => Err(e),
        None => append_audit(&mut tx, &events, &mut results).await,
    };
    let finished = match finished {
        Ok(()) => tx.commit().await.map_err(StoreError::from),
        Err(e) => {
            // Roll back now rather than when the connection is next used: until then it would
            // keep its locks, the audit head's among them.
            let _ = tx.rollback().await;
            Err(e)
        }
    };
    match finished {
        Ok(()) => {
            for (reply, outcome) in results {
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed; every request in the batch fails");
            let msg = e.to_string();
            for (reply, _) in results {
                let _ = reply.send(Err(StoreError::Conflict(Conflict::Interrupted(format!(
                    "commit failed: {msg}"
                )))));
            }
        }
    }
}

/// The batch's requests of at most one record write, in one set-based pass, the first thing
/// in the transaction. Returns the requests to replay one at a time: none, or all of them when
/// a statement failed as a whole, which leaves the transaction aborted for the caller to roll
/// back and start again (cheaper than a savepoint around every pass for a case that does not
/// happen in practice). The error means the transaction is unusable.
async fn apply_together(
    conn: &mut PgConnection,
    together: Vec<SetRequest>,
    isolate: bool,
    outcomes: &mut [Result<Committed>],
    events: &mut Vec<StagedEvent>,
) -> Result<Vec<SetRequest>> {
    let any_write = together.iter().any(|set| !set.writes.is_empty());
    let lost = if any_write {
        let writes: Vec<&RecordWrite> = together.iter().flat_map(|set| &set.writes).collect();
        match batch::apply_writes(conn, &writes).await {
            Ok(lost) => lost,
            Err(e) if isolate => {
                tracing::debug!(error = %e, "set-based writes failed; replaying one by one");
                return Ok(together);
            }
            Err(e) => {
                // The batch's only request: it fails, and the transaction rolls back.
                if let Some(set) = together.first() {
                    outcomes[set.request] = Err(record_error(e));
                }
                return Ok(Vec::new());
            }
        }
    } else {
        Vec::new()
    };
    let mut lost = lost.into_iter();
    for set in together {
        let failure = if set.writes.is_empty() {
            None
        } else {
            lost.next().flatten()
        };
        match failure {
            Some(e) => outcomes[set.request] = Err(e),
            None => events.extend(set.events),
        }
    }
    Ok(Vec::new())
}

/// One request of record writes on its own (a batch call, or a write of a record another
/// request of the batch writes too): set-based, under a savepoint when it shares the
/// transaction, rolled back whole when any of its writes lost. The outer error means the
/// transaction is unusable; the inner result is the request's own outcome.
async fn apply_alone(
    conn: &mut PgConnection,
    set: SetRequest,
    isolate: bool,
    events: &mut Vec<StagedEvent>,
) -> Result<Result<Committed>> {
    if !set.writes.is_empty() {
        if isolate {
            conn.execute("SAVEPOINT request").await?;
        }
        let writes: Vec<&RecordWrite> = set.writes.iter().collect();
        let failure = match batch::apply_writes(conn, &writes).await {
            // The first write that lost, in the request's order, is the one it reports.
            Ok(lost) => lost.into_iter().flatten().next(),
            Err(e) => Some(record_error(e)),
        };
        if let Some(e) = failure {
            if isolate {
                conn.execute("ROLLBACK TO SAVEPOINT request; RELEASE SAVEPOINT request")
                    .await?;
            }
            return Ok(Err(e));
        }
        if isolate {
            conn.execute("RELEASE SAVEPOINT request").await?;
        }
    }
    events.extend(set.events);
    Ok(Ok(Committed::default()))
}

/// Numbers the batch's audit events, records their indices in `results`, and appends them.
///
/// The head row is locked here, at the very end of the batch, so other servers wait only for
/// this statement and the commit, never for the batch's other writes; and since nothing else
/// is locked after it, two servers cannot deadlock over it.
async fn append_audit(
    tx: &mut Transaction<'static, Postgres>,
    events: &[StagedEvent],
    results: &mut [(oneshot::Sender<Result<Committed>>, Result<Committed>)],
) -> Result<()> {
    if !events.is_empty() {
        let mut tail = AuditTail::lock(tx).await?;
        let mut chains = Vec::with_capacity(events.len());
        let mut indices = Vec::with_capacity(events.len());
        for event in events {
            let (idx, chain) = tail.append(&event.bytes);
            if let (_, Ok(committed)) = &mut results[event.request] {
                committed.audit_indices.push(idx);
            }
            indices.push(
                i64::try_from(idx)
                    .map_err(|_| StoreError::Corrupt("audit log size exceeds BIGINT".into()))?,
            );
            chains.push(chain);
        }
        append_events(tx, &tail, events, &indices, &chains).await?;
    }
    Ok(())
}

/// Inserts `events` (numbered `indices`, chained `chains`) and moves `audit_head` to `tail`,
/// in one statement.
async fn append_events(
    conn: &mut PgConnection,
    tail: &AuditTail,
    events: &[StagedEvent],
    indices: &[i64],
    chains: &[Hash],
) -> Result<()> {
    let size = i64::try_from(tail.frontier.size())
        .map_err(|_| StoreError::Corrupt("audit log size exceeds BIGINT".into()))?;
    let done = sqlx::query(
        "WITH appended AS ( \
             INSERT INTO audit_events (idx, at, tenant, subject, actor, action, outcome, event, \
             chain) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BYTEA[], $4::BYTEA[], \
             $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::BYTEA[], $9::BYTEA[]) \
         ) \
         UPDATE audit_head SET size = $10, chain = $11, frontier = $12 WHERE id = 1",
    )
    .bind(indices)
    .bind(events.iter().map(|e| e.at).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|e| e.tenant.as_ref().map(uuid_bytes))
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|e| e.subject.as_ref().map(uuid_bytes))
            .collect::<Vec<_>>(),
    )
    .bind(events.iter().map(|e| e.actor.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.action).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.outcome).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|e| e.bytes.as_slice())
            .collect::<Vec<_>>(),
    )
    .bind(chains.iter().map(|c| c.as_slice()).collect::<Vec<_>>())
    .bind(size)
    .bind(tail.chain.as_slice())
    .bind(tail.frontier.to_bytes())
    .execute(conn)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Corrupt("audit_head row is missing".into()));
    }
    Ok(())
}

fn uuid_bytes(u: &Uuid) -> &[u8] {
    u.as_bytes()
}

/// Applies one request. The outer error means the transaction itself is unusable; the inner
/// result is the request's own outcome, which on failure has left no trace in `events`.
async fn apply_request(
    conn: &mut PgConnection,
    events: &mut Vec<StagedEvent>,
    request: usize,
    ops: Vec<Op>,
    isolate: bool,
) -> Result<Result<Committed>> {
    // Audit events run no statement until the batch ends, so a request made only of them
    // cannot fail halfway and needs no savepoint.
    let savepoint = isolate && ops.iter().any(|op| !matches!(op, Op::Audit(_)));
    if savepoint {
        conn.execute("SAVEPOINT request").await?;
    }
    let events_before = events.len();
    let mut committed = Committed::default();
    let mut result = Ok(());
    for op in ops {
        result = match op {
            Op::RewrapTenantKeys {
                tenant,
                key_version,
                rewrap,
            } => rewrap_tenant_keys(conn, tenant, key_version, &rewrap)
                .await
                .map(|done| committed.keys_rewrapped = done),
            Op::Audit(event) => {
                events.push(stage(request, event));
                Ok(())
            }
            op => apply(conn, op).await,
        };
        if result.is_err() {
            break;
        }
    }
    match result {
        Ok(()) => {
            if savepoint {
                conn.execute("RELEASE SAVEPOINT request").await?;
            }
            // The indices of its events are filled in when the batch ends.
            Ok(Ok(committed))
        }
        Err(e) => {
            if savepoint {
                conn.execute("ROLLBACK TO SAVEPOINT request; RELEASE SAVEPOINT request")
                    .await?;
            }
            events.truncate(events_before);
            Ok(Err(e))
        }
    }
}

fn unique_to_conflict(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(Conflict::Exists(what))
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound(what),
        _ => StoreError::Database(e),
    }
}

/// Applies one change other than an audit event (those are staged by `apply_request`).
async fn apply(conn: &mut PgConnection, op: Op) -> Result<()> {
    match op {
        Op::InsertTenant(t) => {
            sqlx::query(
                "INSERT INTO tenants (id, name, status, region, root_key_version, key_version, \
                 settings, created_at, status_changed_at, destroy_after) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(t.id.as_bytes().as_slice())
            .bind(&t.name)
            .bind(t.status.as_str())
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
                sqlx::query("INSERT INTO tenant_keys (tenant, wrapped_key) VALUES ($1, $2)")
                    .bind(t.id.as_bytes().as_slice())
                    .bind(key)
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
                "UPDATE tenants SET status = $1, status_changed_at = $2, destroy_after = $3 \
                 WHERE id = $4",
            )
            .bind(status.as_str())
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
                 revoked_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(k.id.as_bytes().as_slice())
            .bind(k.tenant.as_ref().map(|t| t.as_bytes().as_slice()))
            .bind(k.token_hash.as_slice())
            .bind(&k.name)
            .bind(&k.role)
            .bind(&k.purposes)
            .bind(to_micros(k.created_at))
            .bind(k.revoked_at.map(to_micros))
            .bind(k.expires_at.map(to_micros))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("api key"))?;
        }
        Op::RevokeApiKey { tenant, id, at } => {
            let done = sqlx::query(
                "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 \
                 AND tenant IS NOT DISTINCT FROM $3 AND revoked_at IS NULL",
            )
            .bind(to_micros(at))
            .bind(id.as_bytes().as_slice())
            .bind(tenant.as_ref().map(|t| t.as_bytes().as_slice()))
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("api key"));
            }
        }
        Op::InsertSubject(s) => {
            sqlx::query(
                "INSERT INTO subjects (tenant, id, external_ref, key_version, restrictions, \
                 hold_until, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
            assert_tenant_key(conn, s.tenant, s.key_version).await?;
            if let Some(key) = &s.wrapped_key {
                sqlx::query(
                    "INSERT INTO subject_keys (tenant, subject, wrapped_key, version) VALUES ($1, $2, $3, $4)",
                )
                .bind(s.tenant.as_bytes().as_slice())
                .bind(s.id.as_bytes().as_slice())
                .bind(key)
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
                sqlx::query("UPDATE subjects SET restrictions = $1 WHERE tenant = $2 AND id = $3")
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
                "UPDATE records SET ciphertext = $1, key_version = $2, revision = $3, \
                 updated_at = $4, expires_at = $5 \
                 WHERE tenant = $6 AND subject = $7 AND id = $8 AND revision = $9",
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
                return Err(StoreError::Conflict(Conflict::Stale));
            }
            delete_index(conn, r.tenant, r.subject, r.id).await?;
            insert_index(conn, &r, &index).await?;
        }
        Op::DeleteRecords { records } => {
            for chunk in records.chunks(300) {
                for (table, id_col) in [("blind_index", "record"), ("records", "id")] {
                    let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!(
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
                sqlx::query("DELETE FROM records WHERE tenant = $1 AND subject = $2 AND id = $3")
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
                sqlx::query("DELETE FROM records WHERE tenant = $1 AND subject = $2 AND id = $3")
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
                 created_at, anonymized_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
        Op::PatchTenantSettings {
            id,
            path,
            value,
            expect,
        } => {
            // The batch holds the tenant row's update lock (`tenant_locks`), so nothing
            // changes it between this read and the write.
            let current: String = sqlx::query_scalar("SELECT settings FROM tenants WHERE id = $1")
                .bind(id.as_bytes().as_slice())
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("tenant"))?;
            let settings =
                crate::settings_patch::patched(&current, &path, &value, expect.as_ref())?;
            sqlx::query("UPDATE tenants SET settings = $1 WHERE id = $2")
                .bind(&settings)
                .bind(id.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
        }
        Op::ShiftExpiry {
            tenant,
            collection,
            by_micros,
        } => {
            sqlx::query(
                "UPDATE records SET expires_at = expires_at - $1 \
                 WHERE tenant = $2 AND collection = $3 AND expires_at IS NOT NULL",
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
                "UPDATE subjects SET hold_until = $1 \
                 WHERE tenant = $2 AND id = $3 AND EXISTS \
                 (SELECT 1 FROM subject_keys k WHERE k.tenant = $2 AND k.subject = $3)",
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
                "DELETE FROM subject_keys WHERE tenant = $1 AND subject = $2",
                "DELETE FROM retired_subject_keys WHERE tenant = $1 AND subject = $2",
            ] {
                sqlx::query(sql).bind(t).bind(s).execute(&mut *conn).await?;
            }
            sqlx::query("DELETE FROM blind_index WHERE tenant = $1 AND subject = $2")
                .bind(t)
                .bind(s)
                .execute(&mut *conn)
                .await?;
            sqlx::query("DELETE FROM records WHERE tenant = $1 AND subject = $2")
                .bind(t)
                .bind(s)
                .execute(&mut *conn)
                .await?;
            let done = sqlx::query(
                "UPDATE subjects SET external_ref = NULL, restrictions = '[]', hold_until = NULL \
                 WHERE tenant = $1 AND id = $2",
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
                 VALUES ($1, $2, $3, $4, $5, $6)",
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
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(h.tenant.as_bytes().as_slice())
            .bind(h.id.as_bytes().as_slice())
            .bind(h.subject.as_bytes().as_slice())
            .bind(i64::from(h.key_version))
            .bind(to_micros(h.created_at))
            .execute(&mut *conn)
            .await?;
            if let Some(key) = &h.wrapped_key {
                assert_tenant_key(conn, h.tenant, h.key_version).await?;
                sqlx::query(
                    "INSERT INTO hold_keys (tenant, hold, wrapped_key) VALUES ($1, $2, $3)",
                )
                .bind(h.tenant.as_bytes().as_slice())
                .bind(h.id.as_bytes().as_slice())
                .bind(key)
                .execute(&mut *conn)
                .await?;
            }
        }
        Op::InsertHeldRecord(h) => {
            sqlx::query(
                "INSERT INTO held_records (tenant, hold, id, collection, ciphertext, key_version, \
                 created_at, hold_until, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
            sqlx::query("DELETE FROM held_records WHERE tenant = $1 AND id = $2")
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
            let moved = sqlx::query("UPDATE tenants SET root_key_version = $1, key_version = $2 WHERE id = $3 AND key_version = $4")
                .bind(i64::from(root_key_version))
                .bind(i64::from(key_version))
                .bind(id.as_bytes().as_slice())
                .bind(i64::from(expected_key_version))
                .execute(&mut *conn)
                .await?;
            if moved.rows_affected() == 0 {
                return Err(StoreError::Conflict(Conflict::TenantKeyChanged));
            }
            let done = sqlx::query("UPDATE tenant_keys SET wrapped_key = $1 WHERE tenant = $2")
                .bind(&wrapped_key)
                .bind(id.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("tenant"));
            }
        }
        Op::ShredHold { tenant, id } => {
            sqlx::query("DELETE FROM hold_keys WHERE tenant = $1 AND hold = $2")
                .bind(tenant.as_bytes().as_slice())
                .bind(id.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
        }
        Op::InsertRequest(r) => {
            sqlx::query(
                "INSERT INTO requests (tenant, id, kind, subject, status, verified_by, detail, \
                 created_at, due_at, closed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
                "UPDATE requests SET status = $1, detail = $2, closed_at = $3 \
                 WHERE tenant = $4 AND id = $5",
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
        Op::SealRequestText {
            tenant,
            id,
            old_verified_by,
            old_detail,
            verified_by,
            detail,
        } => {
            sqlx::query(
                "UPDATE requests SET verified_by = $1, detail = $2 \
                 WHERE tenant = $3 AND id = $4 AND verified_by = $5 AND detail = $6",
            )
            .bind(&verified_by)
            .bind(&detail)
            .bind(tenant.as_bytes().as_slice())
            .bind(id.as_bytes().as_slice())
            .bind(&old_verified_by)
            .bind(&old_detail)
            .execute(&mut *conn)
            .await?;
        }
        Op::DestroyTenant { id, at } => {
            let t = id.as_bytes().as_slice();
            for sql in [
                "DELETE FROM subject_keys WHERE tenant = $1",
                "DELETE FROM retired_subject_keys WHERE tenant = $1",
                "DELETE FROM key_jobs WHERE tenant = $1",
                "DELETE FROM hold_keys WHERE tenant = $1",
                "DELETE FROM tenant_keys WHERE tenant = $1",
                "DELETE FROM blind_index WHERE tenant = $1",
                "DELETE FROM records WHERE tenant = $1",
                "DELETE FROM anonymized_records WHERE tenant = $1",
                "DELETE FROM held_records WHERE tenant = $1",
                "DELETE FROM holds WHERE tenant = $1",
                "DELETE FROM requests WHERE tenant = $1",
                "DELETE FROM subjects WHERE tenant = $1",
                "DELETE FROM invitations WHERE tenant = $1",
                "DELETE FROM memberships WHERE tenant = $1",
            ] {
                sqlx::query(sql).bind(t).execute(&mut *conn).await?;
            }
            sqlx::query(
                "UPDATE api_keys SET revoked_at = $1 WHERE tenant = $2 AND revoked_at IS NULL",
            )
            .bind(to_micros(at))
            .bind(t)
            .execute(&mut *conn)
            .await?;
            let done = sqlx::query(
                "UPDATE tenants SET status = 'destroyed', \
                 status_changed_at = $1, destroy_after = NULL, settings = '{}' WHERE id = $2",
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
            // The tail in `audit_head` is untouched: pruning removes leaves, not the tree.
            sqlx::query("DELETE FROM audit_events WHERE idx < $1")
                .bind(i64::try_from(before).unwrap_or(i64::MAX))
                .execute(&mut *conn)
                .await?;
        }
        Op::Audit(_) | Op::RewrapTenantKeys { .. } => {
            return Err(StoreError::Corrupt(
                "audit events and key rewraps are applied by the request, not one by one".into(),
            ));
        }
        Op::RotateSubjectKeys {
            tenant,
            tenant_key_version,
            keys,
        } => rotate_subject_keys(conn, tenant, tenant_key_version, &keys).await?,
        Op::ReencryptRecords { tenant, records } => {
            // One statement for the whole list: the rows travel as arrays.
            let subjects: Vec<Vec<u8>> = records
                .iter()
                .map(|r| r.subject.as_bytes().to_vec())
                .collect();
            let ids: Vec<Vec<u8>> = records.iter().map(|r| r.id.as_bytes().to_vec()).collect();
            let revisions: Vec<i64> = records.iter().map(|r| r.revision).collect();
            let versions: Vec<i64> = records.iter().map(|r| i64::from(r.key_version)).collect();
            let ciphertexts: Vec<Vec<u8>> = records.into_iter().map(|r| r.ciphertext).collect();
            sqlx::query(
                "UPDATE records r SET ciphertext = v.ciphertext, key_version = v.key_version \
                 FROM UNNEST($2::bytea[], $3::bytea[], $4::bigint[], $5::bytea[], $6::bigint[]) \
                 AS v(subject, id, revision, ciphertext, key_version) \
                 WHERE r.tenant = $1 AND r.subject = v.subject AND r.id = v.id \
                 AND r.revision = v.revision",
            )
            .bind(tenant.as_bytes().as_slice())
            .bind(subjects)
            .bind(ids)
            .bind(revisions)
            .bind(ciphertexts)
            .bind(versions)
            .execute(&mut *conn)
            .await?;
        }
        Op::DestroyRetiredKeys { tenant, subjects } => {
            let t = tenant.as_bytes().as_slice();
            for s in &subjects {
                sqlx::query(
                    "DELETE FROM retired_subject_keys rk \
                     WHERE rk.tenant = $1 AND rk.subject = $2 AND NOT EXISTS \
                     (SELECT 1 FROM records r WHERE r.tenant = $1 AND r.subject = $2 \
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
                "UPDATE key_jobs SET cursor = COALESCE($1, cursor), \
                 subjects_done = subjects_done + $2, records_done = records_done + $3, \
                 updated_at = $4, lease_owner = $5, lease_until = $6 \
                 WHERE id = $7 AND status = 'running' \
                 AND (lease_owner IS NULL OR lease_owner = $5 OR lease_until < $4)",
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
                return Err(StoreError::Conflict(Conflict::KeyJobHeld));
            }
        }
        Op::FinishKeyJob {
            id,
            status,
            at,
            error,
        } => {
            let done = sqlx::query(
                "UPDATE key_jobs SET status = $1, finished_at = $2, updated_at = $2, error = $3, \
                 lease_owner = NULL, lease_until = NULL WHERE id = $4 AND status = 'running'",
            )
            .bind(&status)
            .bind(to_micros(at))
            .bind(&error)
            .bind(id.as_bytes().as_slice())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(Conflict::KeyJobNotRunning));
            }
        }
        Op::SaveCheckpoint(cp) => {
            sqlx::query(
                "INSERT INTO audit_checkpoints (tree_size, checkpoint, frontier, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO UPDATE SET \
                 checkpoint = EXCLUDED.checkpoint, frontier = EXCLUDED.frontier, \
                 created_at = EXCLUDED.created_at",
            )
            .bind(cp.tree_size as i64)
            .bind(&cp.checkpoint)
            .bind(&cp.frontier)
            .bind(to_micros(cp.created_at))
            .execute(&mut *conn)
            .await?;
        }
        Op::InsertInvitation(inv) => {
            if inv.role.is_none() {
                sqlx::query(
                    "DELETE FROM invitations WHERE tenant = $1 AND used_at IS NULL \
                     AND role IS NULL",
                )
                .bind(inv.tenant.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
            }
            sqlx::query(
                "INSERT INTO invitations (id, tenant, token_hash, created_at, expires_at, \
                 used_at, role, purposes, membership_expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(inv.id.as_bytes().as_slice())
            .bind(inv.tenant.as_bytes().as_slice())
            .bind(inv.token_hash.as_slice())
            .bind(to_micros(inv.created_at))
            .bind(to_micros(inv.expires_at))
            .bind(inv.used_at.map(to_micros))
            .bind(inv.role.clone())
            .bind(inv.purposes.clone())
            .bind(inv.membership_expires_at.map(to_micros))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("invitation"))?;
        }
        Op::ClaimInvitation { tenant, id, at } => {
            // A concurrent claim waits for this row lock and then finds `used_at` set.
            let done = sqlx::query(
                "UPDATE invitations SET used_at = $1 WHERE id = $2 AND tenant = $3 \
                 AND used_at IS NULL AND expires_at > $1",
            )
            .bind(to_micros(at))
            .bind(id.as_bytes().as_slice())
            .bind(tenant.as_bytes().as_slice())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("invitation"));
            }
        }
        Op::AssertOwnerRemains { tenant } => {
            // The tenant row lock serializes revocations of one tenant; the count, a new
            // statement, then sees every revocation committed before the lock was granted.
            sqlx::query("SELECT id FROM tenants WHERE id = $1 FOR NO KEY UPDATE")
                .bind(tenant.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
            let owners: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM api_keys WHERE tenant = $1 AND role = 'owner' \
                 AND revoked_at IS NULL AND expires_at IS NULL) + (SELECT count(*) FROM memberships \
                 WHERE tenant = $1 AND role = 'owner' AND expires_at IS NULL)",
            )
            .bind(tenant.as_bytes().as_slice())
            .fetch_one(&mut *conn)
            .await?;
            if owners == 0 {
                return Err(StoreError::Conflict(Conflict::LastOwner));
            }
        }
        Op::People(op) => people::apply(conn, op).await?,
        Op::Alert(op) => alerts::apply(conn, &op).await?,
        Op::Webhook(op) => webhooks::apply(conn, &op).await?,
        Op::Incident(op) => incidents::apply(conn, &op).await?,
    }
    Ok(())
}

/// A record may only be written under its subject's current key version: a rotation that
/// replaced the key meanwhile may already have destroyed the old one. The share lock makes a
/// concurrent rotation of this subject wait for this transaction (and see its record).
async fn assert_subject_key(
    conn: &mut PgConnection,
    tenant: Uuid,
    subject: Uuid,
    version: u32,
) -> Result<()> {
    let current: Option<i64> = sqlx::query_scalar(
        "SELECT version FROM subject_keys WHERE tenant = $1 AND subject = $2 FOR SHARE",
    )
    .bind(tenant.as_bytes().as_slice())
    .bind(subject.as_bytes().as_slice())
    .fetch_optional(&mut *conn)
    .await?;
    match current {
        None => Err(StoreError::NotFound("subject")),
        Some(v) if v == i64::from(version) => Ok(()),
        Some(_) => Err(StoreError::Conflict(Conflict::SubjectKeyRotated)),
    }
}

/// A key wrapped under tenant key `version` may only be stored while that is the tenant's
/// current version, or a rotation committed meanwhile would strand it. The share lock makes a
/// concurrent rotation wait for this transaction (and then rewrap what it wrote).
async fn assert_tenant_key(conn: &mut PgConnection, tenant: Uuid, version: u32) -> Result<()> {
    let current: Option<i64> =
        sqlx::query_scalar("SELECT key_version FROM tenants WHERE id = $1 FOR SHARE")
            .bind(tenant.as_bytes().as_slice())
            .fetch_optional(&mut *conn)
            .await?;
    if current != Some(i64::from(version)) {
        return Err(StoreError::Conflict(Conflict::KeyRotated));
    }
    Ok(())
}

/// Tenant key rotation inside the rotating commit (after `RewrapTenant` locked the tenant
/// row, so no key can be added under the old version until this commits): every key not yet
/// under `key_version` is rewrapped, a table at a time in one statement.
async fn rewrap_tenant_keys(
    conn: &mut PgConnection,
    tenant: Uuid,
    key_version: u32,
    rewrap: &Rewrapper,
) -> Result<KeysRewrapped> {
    let t = tenant.as_bytes().as_slice();
    let v = i64::from(key_version);
    let subjects = rewrap_owned_keys(
        conn,
        tenant,
        v,
        KeyOwner::Subject,
        rewrap,
        [
            "SELECT s.id, sk.version, sk.wrapped_key, s.key_version FROM subjects s \
             JOIN subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id \
             WHERE s.tenant = $1 AND s.key_version <> $2",
            "UPDATE subject_keys sk SET wrapped_key = v.wrapped_key \
             FROM UNNEST($2::bytea[], $3::bytea[]) AS v(subject, wrapped_key) \
             WHERE sk.tenant = $1 AND sk.subject = v.subject",
            "UPDATE subjects SET key_version = $2 WHERE tenant = $1 AND id = ANY($3)",
        ],
    )
    .await?;
    let retired = rewrapped_keys(
        conn,
        "SELECT subject, version, wrapped_key, key_version FROM retired_subject_keys \
         WHERE tenant = $1 AND key_version <> $2",
        tenant,
        v,
        KeyOwner::RetiredSubjectKey,
        rewrap,
    )
    .await?;
    sqlx::query(
        "UPDATE retired_subject_keys r SET wrapped_key = v.wrapped_key, key_version = $2 \
         FROM UNNEST($3::bytea[], $4::bigint[], $5::bytea[]) AS v(subject, version, wrapped_key) \
         WHERE r.tenant = $1 AND r.subject = v.subject AND r.version = v.version",
    )
    .bind(t)
    .bind(v)
    .bind(&retired.ids)
    .bind(&retired.versions)
    .bind(&retired.keys)
    .execute(&mut *conn)
    .await?;
    let holds = rewrap_owned_keys(
        conn,
        tenant,
        v,
        KeyOwner::Hold,
        rewrap,
        [
            "SELECT h.id, 0::bigint, hk.wrapped_key, h.key_version FROM holds h \
             JOIN hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id \
             WHERE h.tenant = $1 AND h.key_version <> $2",
            "UPDATE hold_keys hk SET wrapped_key = v.wrapped_key \
             FROM UNNEST($2::bytea[], $3::bytea[]) AS v(hold, wrapped_key) \
             WHERE hk.tenant = $1 AND hk.hold = v.hold",
            "UPDATE holds SET key_version = $2 WHERE tenant = $1 AND id = ANY($3)",
        ],
    )
    .await?;
    Ok(KeysRewrapped {
        subjects: subjects as u64,
        retired_subject_keys: retired.ids.len() as u64,
        holds: holds as u64,
    })
}

/// Rewraps the keys of owners that record their tenant key version themselves (subjects,
/// holds): `[select, update_keys, update_owners]` find the stale keys, store the rewrapped
/// ones from `UNNEST($2 ids, $3 keys)`, and move the owners (`$3` ids) to version `$2`.
/// Returns how many were rewrapped.
async fn rewrap_owned_keys(
    conn: &mut PgConnection,
    tenant: Uuid,
    key_version: i64,
    owner: fn(Uuid) -> KeyOwner,
    rewrap: &Rewrapper,
    [select, update_keys, update_owners]: [&'static str; 3],
) -> Result<usize> {
    let t = tenant.as_bytes().as_slice();
    let stale = rewrapped_keys(conn, select, tenant, key_version, owner, rewrap).await?;
    sqlx::query(update_keys)
        .bind(t)
        .bind(&stale.ids)
        .bind(&stale.keys)
        .execute(&mut *conn)
        .await?;
    sqlx::query(update_owners)
        .bind(t)
        .bind(key_version)
        .bind(&stale.ids)
        .execute(&mut *conn)
        .await?;
    Ok(stale.ids.len())
}

/// One table's keys, rewrapped, as columns for `UNNEST`.
struct RewrappedKeys {
    ids: Vec<Vec<u8>>,
    versions: Vec<i64>,
    keys: Vec<Vec<u8>>,
}

/// Runs `select` (owner id, subject key version, wrapped key, tenant key version) and
/// rewraps every key it finds.
async fn rewrapped_keys(
    conn: &mut PgConnection,
    select: &'static str,
    tenant: Uuid,
    key_version: i64,
    owner: fn(Uuid) -> KeyOwner,
    rewrap: &Rewrapper,
) -> Result<RewrappedKeys> {
    let rows = sqlx::query(select)
        .bind(tenant.as_bytes().as_slice())
        .bind(key_version)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = RewrappedKeys {
        ids: Vec::with_capacity(rows.len()),
        versions: Vec::with_capacity(rows.len()),
        keys: Vec::with_capacity(rows.len()),
    };
    for r in &rows {
        let id = uuid_at(r, 0)?;
        let wrapped: Vec<u8> = r.try_get(2)?;
        out.keys.push(rewrap.rewrap(WrappedKey {
            owner: owner(id),
            key_version: u32_at(r, 3)?,
            wrapped: &wrapped,
        })?);
        out.ids.push(id.as_bytes().to_vec());
        out.versions.push(r.try_get(1)?);
    }
    Ok(out)
}

async fn rotate_subject_keys(
    conn: &mut PgConnection,
    tenant: Uuid,
    tenant_key_version: u32,
    keys: &[crate::SubjectKeyChange],
) -> Result<()> {
    let t = tenant.as_bytes().as_slice();
    assert_tenant_key(conn, tenant, tenant_key_version).await?;
    for k in keys {
        let s = k.subject.as_bytes().as_slice();
        let retired = sqlx::query(
            "INSERT INTO retired_subject_keys (tenant, subject, version, wrapped_key, key_version) \
             SELECT sk.tenant, sk.subject, sk.version, sk.wrapped_key, s.key_version \
             FROM subject_keys sk JOIN subjects s ON s.tenant = sk.tenant AND s.id = sk.subject \
             WHERE sk.tenant = $1 AND sk.subject = $2 AND sk.version = $3",
        )
        .bind(t)
        .bind(s)
        .bind(i64::from(k.expected_version))
        .execute(&mut *conn)
        .await
        .map_err(unique_to_conflict("retired subject key"))?;
        if retired.rows_affected() == 0 {
            return Err(StoreError::Conflict(Conflict::SubjectKeyRotated));
        }
        sqlx::query(
            "UPDATE subject_keys SET wrapped_key = $1, version = $2 WHERE tenant = $3 AND subject = $4",
        )
        .bind(&k.wrapped_key)
        .bind(i64::from(k.expected_version) + 1)
        .bind(t)
        .bind(s)
        .execute(&mut *conn)
        .await?;
        sqlx::query("UPDATE subjects SET key_version = $1 WHERE tenant = $2 AND id = $3")
            .bind(i64::from(tenant_key_version))
            .bind(t)
            .bind(s)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Inserts a record's blind-index entries in one statement.
async fn insert_index(conn: &mut PgConnection, r: &RecordRow, index: &[IndexEntry]) -> Result<()> {
    if index.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO blind_index (tenant, collection, field, hash, subject, record) \
         SELECT $1, $2, e.field, e.hash, $3, $4 FROM UNNEST($5::TEXT[], $6::BYTEA[]) AS e(field, hash) \
         ON CONFLICT DO NOTHING",
    )
    .bind(r.tenant.as_bytes().as_slice())
    .bind(&r.collection)
    .bind(r.subject.as_bytes().as_slice())
    .bind(r.id.as_bytes().as_slice())
    .bind(index.iter().map(|e| e.field.as_str()).collect::<Vec<_>>())
    .bind(index.iter().map(|e| e.hash.as_slice()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn delete_index(
    conn: &mut PgConnection,
    tenant: Uuid,
    subject: Uuid,
    id: Uuid,
) -> Result<()> {
    sqlx::query("DELETE FROM blind_index WHERE tenant = $1 AND subject = $2 AND record = $3")
        .bind(tenant.as_bytes().as_slice())
        .bind(subject.as_bytes().as_slice())
        .bind(id.as_bytes().as_slice())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// ---- decoding -------------------------------------------------------------------------------

fn uuid_at(row: &PgRow, i: usize) -> Result<Uuid> {
    let bytes: Vec<u8> = row.try_get(i)?;
    Uuid::from_slice(&bytes).map_err(|_| StoreError::Corrupt("uuid column".into()))
}

fn opt_uuid_at(row: &PgRow, i: usize) -> Result<Option<Uuid>> {
    let bytes: Option<Vec<u8>> = row.try_get(i)?;
    bytes
        .map(|b| Uuid::from_slice(&b).map_err(|_| StoreError::Corrupt("uuid column".into())))
        .transpose()
}

fn u32_at(row: &PgRow, i: usize) -> Result<u32> {
    let v: i64 = row.try_get(i)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt("key version".into()))
}

fn u64_at(row: &PgRow, i: usize) -> Result<u64> {
    let v: i64 = row.try_get(i)?;
    u64::try_from(v).map_err(|_| StoreError::Corrupt("negative index".into()))
}

fn hash_at(row: &PgRow, i: usize) -> Result<[u8; 32]> {
    let v: Vec<u8> = row.try_get(i)?;
    v.try_into()
        .map_err(|_| StoreError::Corrupt("hash column".into()))
}

fn opt_time_at(row: &PgRow, i: usize) -> Result<Option<time::OffsetDateTime>> {
    Ok(row.try_get::<Option<i64>, _>(i)?.map(from_micros))
}

const TENANT_COLUMNS: &str = "t.id, t.name, t.status, t.region, tk.wrapped_key, \
    t.root_key_version, t.key_version, t.settings, t.created_at, t.status_changed_at, \
    t.destroy_after";

/// Tenants with their wrapped key from the key store.
const TENANT_FROM: &str = "tenants t LEFT JOIN tenant_keys tk ON tk.tenant = t.id";

fn tenant_from(row: &PgRow) -> Result<TenantRow> {
    Ok(TenantRow {
        id: uuid_at(row, 0)?,
        name: row.try_get(1)?,
        status: TenantStatus::decode(row.try_get(2)?)?,
        region: row.try_get(3)?,
        wrapped_key: row.try_get(4)?,
        root_key_version: u32_at(row, 5)?,
        key_version: u32_at(row, 6)?,
        settings: row.try_get(7)?,
        created_at: from_micros(row.try_get(8)?),
        status_changed_at: from_micros(row.try_get(9)?),
        destroy_after: opt_time_at(row, 10)?,
    })
}

const KEY_COLUMNS: &str =
    "id, tenant, token_hash, name, role, purposes, created_at, revoked_at, expires_at";

fn key_from(row: &PgRow) -> Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: uuid_at(row, 0)?,
        tenant: opt_uuid_at(row, 1)?,
        token_hash: hash_at(row, 2)?,
        name: row.try_get(3)?,
        role: row.try_get(4)?,
        purposes: row.try_get(5)?,
        created_at: from_micros(row.try_get(6)?),
        revoked_at: opt_time_at(row, 7)?,
        expires_at: opt_time_at(row, 8)?,
    })
}

/// Subjects with their wrapped key from the key store.
const SUBJECT_KEY_JOIN: &str =
    "LEFT JOIN subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id";

const SUBJECT_COLUMNS: &str = "s.tenant, s.id, s.external_ref, sk.wrapped_key, s.key_version, \
    s.restrictions, s.hold_until, s.created_at, COALESCE(sk.version, 1)";

/// How many columns [`SUBJECT_COLUMNS`] has (record columns follow them in joins).
const SUBJECT_WIDTH: usize = 9;

/// Decodes subject columns starting at `at`.
fn subject_from(row: &PgRow, at: usize) -> Result<SubjectRow> {
    Ok(SubjectRow {
        tenant: uuid_at(row, at)?,
        id: uuid_at(row, at + 1)?,
        external_ref: row.try_get(at + 2)?,
        wrapped_key: row.try_get(at + 3)?,
        key_version: u32_at(row, at + 4)?,
        restrictions: row.try_get(at + 5)?,
        hold_until: opt_time_at(row, at + 6)?,
        created_at: from_micros(row.try_get(at + 7)?),
        record_key_version: u32_at(row, at + 8)?,
    })
}

const RECORD_COLUMNS: &str = "r.id, r.collection, r.ciphertext, r.key_version, r.revision, \
    r.created_at, r.updated_at, r.expires_at";

/// Decodes record columns starting at `at`; `None` when the LEFT JOIN found no record.
fn record_from(row: &PgRow, at: usize, tenant: Uuid, subject: Uuid) -> Result<Option<RecordRow>> {
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
        expires_at: opt_time_at(row, at + 7)?,
    }))
}

const REQUEST_COLUMNS: &str =
    "tenant, id, kind, subject, status, verified_by, detail, created_at, due_at, closed_at";

fn request_from(row: &PgRow) -> Result<RequestRow> {
    Ok(RequestRow {
        tenant: uuid_at(row, 0)?,
        id: uuid_at(row, 1)?,
        kind: row.try_get(2)?,
        subject: uuid_at(row, 3)?,
        status: row.try_get(4)?,
        verified_by: row.try_get(5)?,
        detail: row.try_get(6)?,
        created_at: from_micros(row.try_get(7)?),
        due_at: from_micros(row.try_get(8)?),
        closed_at: opt_time_at(row, 9)?,
    })
}

const HOLD_COLUMNS: &str = "h.tenant, h.id, h.subject, hk.wrapped_key, h.key_version, h.created_at";

/// Decodes hold columns starting at `at`.
fn hold_from(row: &PgRow, at: usize) -> Result<HoldRow> {
    Ok(HoldRow {
        tenant: uuid_at(row, at)?,
        id: uuid_at(row, at + 1)?,
        subject: uuid_at(row, at + 2)?,
        wrapped_key: row.try_get(at + 3)?,
        key_version: u32_at(row, at + 4)?,
        created_at: from_micros(row.try_get(at + 5)?),
    })
}

const HELD_COLUMNS: &str = "r.tenant, r.hold, r.id, r.collection, r.ciphertext, r.key_version, \
    r.created_at, r.hold_until, r.reason";

/// Decodes held-record columns starting at `at`.
fn held_from(row: &PgRow, at: usize) -> Result<HeldRecordRow> {
    Ok(HeldRecordRow {
        tenant: uuid_at(row, at)?,
        hold: uuid_at(row, at + 1)?,
        id: uuid_at(row, at + 2)?,
        collection: row.try_get(at + 3)?,
        ciphertext: row.try_get(at + 4)?,
        key_version: u32_at(row, at + 5)?,
        created_at: from_micros(row.try_get(at + 6)?),
        hold_until: from_micros(row.try_get(at + 7)?),
        reason: row.try_get(at + 8)?,
    })
}

const AUDIT_COLUMNS: &str = "idx, event, chain, at, tenant, subject, actor, action, outcome";

fn audit_row_from(row: &PgRow) -> Result<AuditRow> {
    Ok(AuditRow {
        idx: u64_at(row, 0)?,
        event: row.try_get(1)?,
        chain: hash_at(row, 2)?,
        columns: AuditColumns {
            at: row.try_get(3)?,
            tenant: opt_uuid_at(row, 4)?,
            subject: opt_uuid_at(row, 5)?,
            actor: row.try_get(6)?,
            action: row.try_get(7)?,
            outcome: row.try_get(8)?,
        },
    })
}

// ---- the trait ------------------------------------------------------------------------------

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
        let sql = format!("SELECT {TENANT_COLUMNS} FROM {TENANT_FROM} WHERE t.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tenant_from).transpose()
    }

    async fn tenants(&self) -> Result<Vec<TenantRow>> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM {TENANT_FROM} ORDER BY t.created_at");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tenant_from).collect()
    }

    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRow>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE token_hash = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(hash.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_from).transpose()
    }

    async fn invitation_by_hash(&self, hash: &[u8; 32]) -> Result<Option<InvitationRow>> {
        let row = sqlx::query(
            "SELECT id, tenant, token_hash, created_at, expires_at, used_at, role, purposes, \
             membership_expires_at FROM invitations WHERE token_hash = $1",
        )
        .bind(hash.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(InvitationRow {
                id: uuid_at(&row, 0)?,
                tenant: uuid_at(&row, 1)?,
                token_hash: hash_at(&row, 2)?,
                created_at: from_micros(row.try_get(3)?),
                expires_at: from_micros(row.try_get(4)?),
                used_at: opt_time_at(&row, 5)?,
                role: row.try_get(6)?,
                purposes: row.try_get(7)?,
                membership_expires_at: opt_time_at(&row, 8)?,
            })
        })
        .transpose()
    }

    async fn api_keys(&self, tenant: Option<Uuid>) -> Result<Vec<ApiKeyRow>> {
        // Two spellings rather than `IS NOT DISTINCT FROM`, which cannot use the index.
        let rows = match tenant {
            Some(t) => {
                let sql =
                    format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant = $1 ORDER BY id");
                sqlx::query(AssertSqlSafe(sql))
                    .bind(t.as_bytes().as_slice())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql =
                    format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant IS NULL ORDER BY id");
                sqlx::query(AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(key_from).collect()
    }

    async fn subject_view(
        &self,
        tenant: Uuid,
        subject: Uuid,
        records: RecordFilter<'_>,
    ) -> Result<Option<SubjectView>> {
        let join = match records {
            RecordFilter::None => "AND FALSE",
            RecordFilter::One(_) => "AND r.id = $3",
            RecordFilter::All(None) => "",
            RecordFilter::All(Some(_)) => "AND r.collection = $3",
        };
        let sql = format!(
            "SELECT t.status, {SUBJECT_COLUMNS}, {RECORD_COLUMNS} FROM subjects s \
             JOIN tenants t ON t.id = s.tenant {SUBJECT_KEY_JOIN} \
             LEFT JOIN records r ON r.tenant = s.tenant AND r.subject = s.id {join} \
             WHERE s.tenant = $1 AND s.id = $2 ORDER BY r.id"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_bytes().as_slice())
            .bind(subject.as_bytes().as_slice());
        match records {
            RecordFilter::One(id) => query = query.bind(id.as_bytes().to_vec()),
            RecordFilter::All(Some(c)) => query = query.bind(c),
            RecordFilter::None | RecordFilter::All(None) => {}
        }
        let rows = query.fetch_all(&self.pool).await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut view = SubjectView {
            tenant_status: TenantStatus::decode(first.try_get(0)?)?,
            subject: subject_from(first, 1)?,
            records: Vec::with_capacity(rows.len()),
        };
        for row in &rows {
            if let Some(r) = record_from(row, 1 + SUBJECT_WIDTH, tenant, subject)? {
                view.records.push(r);
            }
        }
        Ok(Some(view))
    }

    async fn subject_by_ref(&self, tenant: Uuid, ref_hash: &[u8]) -> Result<Option<SubjectRow>> {
        let sql = format!(
            "SELECT {SUBJECT_COLUMNS} FROM subjects s {SUBJECT_KEY_JOIN} \
             WHERE s.tenant = $1 AND s.external_ref = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_bytes().as_slice())
            .bind(ref_hash)
            .fetch_optional(&self.pool)
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
             WHERE b.tenant = $1 AND b.collection = $2 AND b.field = $3 AND b.hash = $4 \
             ORDER BY r.id LIMIT 1000"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_bytes().as_slice())
            .bind(collection)
            .bind(field)
            .bind(hash)
            .fetch_all(&self.pool)
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
        // The row, not a cached copy: other servers append too, and every commit that was
        // acknowledged has updated it.
        let sql = format!("SELECT {} FROM audit_head WHERE id = 1", AuditTail::COLUMNS);
        let row = sqlx::query(AssertSqlSafe(sql))
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::Corrupt("audit_head row is missing".into()))?;
        Ok(AuditTail::from_row(&row)?.head())
    }

    async fn audit_rows(&self, from: u64, limit: u32) -> Result<Vec<AuditRow>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE idx >= $1 ORDER BY idx LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(i64::try_from(from).unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_row_from).collect()
    }

    async fn audit_query(&self, q: &AuditQuery) -> Result<Vec<AuditRow>> {
        let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE tenant = "
        ));
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
            b.push(" AND idx > ")
                .push_bind(i64::try_from(after).unwrap_or(i64::MAX));
        }
        b.push(" ORDER BY idx LIMIT ").push_bind(i64::from(q.limit));
        let rows = b.build().fetch_all(&self.pool).await?;
        rows.iter().map(audit_row_from).collect()
    }

    async fn last_system_event(&self, action: &str) -> Result<Option<AuditRow>> {
        // Only the constant column list is formatted in; the action is bound.
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE tenant IS NULL AND action = $1 \
             ORDER BY idx DESC LIMIT 1"
        )))
        .bind(action)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(audit_row_from).transpose()
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>> {
        let rows = sqlx::query(
            "SELECT tree_size, checkpoint, frontier, created_at FROM audit_checkpoints \
             ORDER BY tree_size",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CheckpointRow {
                    tree_size: u64_at(row, 0)?,
                    checkpoint: row.try_get(1)?,
                    frontier: row.try_get(2)?,
                    created_at: from_micros(row.try_get(3)?),
                })
            })
            .collect()
    }

    async fn audit_leaves(&self, size: u64) -> Result<Vec<Hash>> {
        let rows = sqlx::query("SELECT event FROM audit_events WHERE idx < $1 ORDER BY idx")
            .bind(i64::try_from(size).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok(leaf_hash(&row.try_get::<Vec<u8>, _>(0)?)))
            .collect()
    }

    async fn audit_index_at(&self, at: time::OffsetDateTime) -> Result<Option<u64>> {
        // The first event in log order at or after `at`: a walk of the primary key that reads
        // only the events before it (the ones a prune is about to delete).
        let v: Option<i64> =
            sqlx::query_scalar("SELECT idx FROM audit_events WHERE at >= $1 ORDER BY idx LIMIT 1")
                .bind(to_micros(at))
                .fetch_optional(&self.pool)
                .await?;
        v.map(|v| u64::try_from(v).map_err(|_| StoreError::Corrupt("negative index".into())))
            .transpose()
    }

    async fn expired_records(
        &self,
        now: time::OffsetDateTime,
        after: Option<(time::OffsetDateTime, Uuid)>,
        tenant: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ExpiredRecord>> {
        let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {SUBJECT_COLUMNS}, {RECORD_COLUMNS} FROM records r \
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
        let rows = b.build().fetch_all(&self.pool).await?;
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
        let sql = format!(
            "SELECT {HELD_COLUMNS} FROM held_records r WHERE r.hold_until <= $1 \
             ORDER BY r.hold_until LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(to_micros(now))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| held_from(r, 0)).collect()
    }

    async fn empty_holds(&self) -> Result<Vec<HoldRow>> {
        let sql = format!(
            "SELECT {HOLD_COLUMNS} FROM holds h \
             JOIN hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id WHERE NOT EXISTS \
             (SELECT 1 FROM held_records r WHERE r.tenant = h.tenant AND r.hold = h.id)"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| hold_from(r, 0)).collect()
    }

    async fn held_records(
        &self,
        tenant: Uuid,
        subject: Uuid,
    ) -> Result<Vec<(HoldRow, HeldRecordRow)>> {
        let sql = format!(
            "SELECT {HOLD_COLUMNS}, {HELD_COLUMNS} \
             FROM holds h JOIN held_records r ON r.tenant = h.tenant AND r.hold = h.id \
             LEFT JOIN hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id \
             WHERE h.tenant = $1 AND h.subject = $2 ORDER BY r.id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_bytes().as_slice())
            .bind(subject.as_bytes().as_slice())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((hold_from(r, 0)?, held_from(r, 6)?)))
            .collect()
    }

    async fn ledger_entry(&self, tenant: Uuid, subject: Uuid) -> Result<Option<LedgerRow>> {
        let row = sqlx::query(
            "SELECT id, tenant, subject, requested_by, erased_at, detail FROM erasure_ledger \
             WHERE tenant = $1 AND subject = $2 ORDER BY erased_at LIMIT 1",
        )
        .bind(tenant.as_bytes().as_slice())
        .bind(subject.as_bytes().as_slice())
        .fetch_optional(&self.pool)
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
            "SELECT s.id FROM subjects s \
             JOIN subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id \
             WHERE s.tenant = $1 AND s.id > $2 ORDER BY s.id LIMIT $3",
        )
        .bind(tenant.as_bytes().as_slice())
        .bind(after.unwrap_or(Uuid::nil()).as_bytes().to_vec())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
             JOIN subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id \
             WHERE s.tenant = $1 AND s.id > $2 ORDER BY s.id LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_bytes().as_slice())
            .bind(after.unwrap_or(Uuid::nil()).as_bytes().to_vec())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| subject_from(r, 0)).collect()
    }

    async fn live_holds(&self, tenant: Uuid) -> Result<Vec<HoldRow>> {
        let rows = sqlx::query(
            "SELECT h.tenant, h.id, h.subject, hk.wrapped_key, h.key_version, h.created_at FROM holds h \
             JOIN hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id WHERE h.tenant = $1 ORDER BY h.id",
        )
        .bind(tenant.as_bytes().as_slice())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| hold_from(r, 0)).collect()
    }

    async fn retired_keys(&self, tenant: Uuid, subject: Uuid) -> Result<Vec<RetiredKeyRow>> {
        let rows = sqlx::query(
            "SELECT version, wrapped_key, key_version FROM retired_subject_keys \
             WHERE tenant = $1 AND subject = $2 ORDER BY version",
        )
        .bind(tenant.as_bytes().as_slice())
        .bind(subject.as_bytes().as_slice())
        .fetch_all(&self.pool)
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
            "SELECT DISTINCT subject FROM retired_subject_keys WHERE tenant = $1 \
             ORDER BY subject LIMIT $2",
        )
        .bind(tenant.as_bytes().as_slice())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| uuid_at(r, 0)).collect()
    }

    async fn retired_key_count(&self, tenant: Option<Uuid>) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM retired_subject_keys WHERE $1::bytea IS NULL OR tenant = $1",
        )
        .bind(tenant.map(|t| t.as_bytes().to_vec()))
        .fetch_one(&self.pool)
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
             WHERE r.tenant = $1 AND r.subject > $2 AND r.subject <= $3 ORDER BY r.subject, r.id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_bytes().as_slice())
            .bind(after.unwrap_or(Uuid::nil()).as_bytes().to_vec())
            .bind(through.as_bytes().as_slice())
            .fetch_all(&self.pool)
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
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records WHERE tenant = $1")
            .bind(tenant.as_bytes().as_slice())
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn stats(&self) -> Result<crate::StoreStats> {
        let rows = sqlx::query(
            "SELECT t.id, (SELECT COUNT(*) FROM subjects s WHERE s.tenant = t.id), \
             (SELECT COUNT(*) FROM records r WHERE r.tenant = t.id) FROM tenants t ORDER BY t.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let tenants = rows
            .iter()
            .map(|row| {
                Ok(crate::TenantSize {
                    tenant: uuid_at(row, 0)?,
                    subjects: u64_at(row, 1)?,
                    records: u64_at(row, 2)?,
                })
            })
            .collect::<Result<_>>()?;
        let last = sqlx::query(
            "SELECT tree_size, created_at FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        let last_checkpoint = match last {
            Some(row) => Some((u64_at(&row, 0)?, from_micros(row.try_get(1)?))),
            None => None,
        };
        Ok(crate::StoreStats {
            tenants,
            last_checkpoint,
        })
    }

    async fn key_jobs(&self, status: Option<&str>) -> Result<Vec<KeyJobRow>> {
        let rows = sqlx::query(
            "SELECT id, tenant, status, cursor, subjects_done, records_done, records_total, \
             started_at, updated_at, finished_at, lease_owner, lease_until, error FROM key_jobs \
             WHERE $1::text IS NULL OR status = $1 ORDER BY started_at DESC, id DESC LIMIT 1000",
        )
        .bind(status)
        .fetch_all(&self.pool)
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
                    finished_at: opt_time_at(r, 9)?,
                    lease_owner: r.try_get(10)?,
                    lease_until: opt_time_at(r, 11)?,
                    error: r.try_get(12)?,
                })
            })
            .collect()
    }

    async fn request(&self, tenant: Uuid, id: Uuid) -> Result<Option<RequestRow>> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE tenant = $1 AND id = $2");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_bytes().as_slice())
            .bind(id.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(request_from).transpose()
    }

    async fn requests(&self, tenant: Uuid, status: Option<&str>) -> Result<Vec<RequestRow>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE tenant = $1 \
             AND ($2::TEXT IS NULL OR status = $2) ORDER BY due_at, id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_bytes().as_slice())
            .bind(status)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(request_from).collect()
    }

    async fn requests_in_clear(&self, sealed_prefix: &str) -> Result<Vec<RequestRow>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE left(verified_by, length($1)) <> $1 \
             OR left(detail, length($1)) <> $1 ORDER BY tenant, id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(sealed_prefix)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(request_from).collect()
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

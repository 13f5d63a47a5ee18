//! The writer tasks and their group commit.
//!
//! A writer drains whatever requests are waiting and commits them in one transaction. The
//! log's tail lives in the single-row `audit_head` table: a batch stages the audit events of
//! its successful requests and, last thing before it commits, locks that row, numbers the
//! events from the size it finds, and writes them all with the new tail in one statement. The
//! row lock serializes appends across servers and across the two writers of one store, and
//! keeps indices gap-free. **The per-request atomicity invariant** (see the module doc of
//! `postgres`): a request either takes effect whole, with its audit events, or leaves no trace
//! and no event; the set-based pass keeps it without savepoints, everything else is applied
//! one request at a time under its own savepoint.

use super::*;

/// Most requests one group commit takes; bounds the latency a batch adds to its first member.
pub(super) const MAX_BATCH: usize = 512;

/// Writer tasks per store. While one batch waits for its commit (the WAL flush), the next
/// batch is already being gathered and written by the other writer; the `audit_head` row lock
/// orders their final appends exactly as it orders those of several servers.
pub(super) const WRITERS: usize = 2;

/// The audit log's tail: what the `audit_head` row holds and the next append needs.
pub(super) struct AuditTail {
    pub(super) frontier: Frontier,
    pub(super) chain: Hash,
    /// Tree nodes the appends completed, stored with the events.
    pub(super) nodes: Vec<ward_audit::TreeNode>,
}

impl AuditTail {
    pub(super) const COLUMNS: &'static str = "size, chain, frontier";

    pub(super) fn from_row(row: &PgRow) -> Result<Self> {
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
        Ok(Self {
            frontier,
            chain,
            nodes: Vec::new(),
        })
    }

    /// Locks the head row until the transaction ends and reads it.
    pub(super) async fn lock(conn: &mut PgConnection) -> Result<Self> {
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

    /// Appends the event whose leaf hash is `leaf`.
    pub(super) fn append(&mut self, leaf: Hash) -> (u64, Hash) {
        let idx = self.frontier.size();
        self.frontier.push_recording(leaf, &mut self.nodes);
        self.chain = chain_hash(&self.chain, &leaf);
        (idx, self.chain)
    }

    pub(super) fn head(&self) -> AuditHead {
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
pub(super) struct StagedEvent {
    /// Position of its request in the batch.
    pub(super) request: usize,
    pub(super) at: i64,
    pub(super) tenant: Option<Uuid>,
    pub(super) subject: Option<Uuid>,
    pub(super) actor: String,
    pub(super) action: &'static str,
    pub(super) outcome: &'static str,
    /// The leaf hash of the event's canonical bytes.
    pub(super) leaf: Hash,
    /// The event as stored ([`crate::audit_codec`]).
    pub(super) stored: Vec<u8>,
}

/// One writer: takes whatever requests are waiting (the receiver is shared by the store's
/// writers, and held only while gathering) and commits them as one batch.
pub(super) async fn run_writer(
    pool: PgPool,
    rx: std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
) {
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
pub(super) struct SetRequest {
    /// Position of the request in the batch.
    pub(super) request: usize,
    pub(super) writes: Vec<RecordWrite>,
    pub(super) events: Vec<StagedEvent>,
}

/// A request of a batch, sorted by how the writer applies it.
pub(super) enum Planned {
    /// Only record writes of pairwise different records, and audit events.
    Set(SetRequest),
    /// Anything else, applied op by op.
    Ops(usize, Vec<Op>),
}

/// Sorts request `request` for the writer: as record writes and staged audit events when it
/// has nothing else and touches no record twice, else as it is.
pub(super) fn plan(request: usize, ops: Vec<Op>) -> Planned {
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
pub(super) fn stage(request: usize, event: Box<ward_audit::AuditEvent>) -> StagedEvent {
    let event = *event;
    let bytes = event.to_bytes();
    StagedEvent {
        request,
        at: to_micros(event.at),
        tenant: event.tenant,
        subject: event.subject,
        action: event.action.as_str(),
        outcome: event.outcome.as_str(),
        leaf: leaf_hash(&bytes),
        stored: crate::audit_codec::pack(&bytes),
        actor: event.actor.id,
    }
}

/// A statement error of a record write, as the one-row path reports it.
pub(super) fn record_error(e: StoreError) -> StoreError {
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
///
/// Long on purpose: its phases (begin, plan, lock tenants, the set-based pass, the requests
/// alone, the audit append, commit) share the transaction, the outcomes and the error that
/// broke the transaction, and the per-request atomicity invariant is checked by reading them
/// in order in one place; split up, each phase would take all of that state by `&mut`.
pub(super) async fn group_commit(pool: &PgPool, jobs: Vec<Job>) {
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
pub(super) async fn apply_together(
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
pub(super) async fn apply_alone(
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
pub(super) async fn append_audit(
    tx: &mut Transaction<'static, Postgres>,
    events: &[StagedEvent],
    results: &mut [(oneshot::Sender<Result<Committed>>, Result<Committed>)],
) -> Result<()> {
    if !events.is_empty() {
        let mut tail = AuditTail::lock(tx).await?;
        let mut chains = Vec::with_capacity(events.len());
        let mut indices = Vec::with_capacity(events.len());
        for event in events {
            let (idx, chain) = tail.append(event.leaf);
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

/// Inserts `events` (numbered `indices`, chained `chains`) and the tree nodes they complete,
/// and moves `audit_head` to `tail`, in one statement.
pub(super) async fn append_events(
    conn: &mut PgConnection,
    tail: &AuditTail,
    events: &[StagedEvent],
    indices: &[i64],
    chains: &[Hash],
) -> Result<()> {
    let size = i64::try_from(tail.frontier.size())
        .map_err(|_| StoreError::Corrupt("audit log size exceeds BIGINT".into()))?;
    let (heights, node_indices, hashes) = super::tree::node_arrays(&tail.nodes);
    let done = sqlx::query(
        "WITH appended AS ( \
             INSERT INTO audit_events (idx, at, tenant, subject, actor, action, outcome, event, \
             chain) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BYTEA[], $4::BYTEA[], \
             $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::BYTEA[], $9::BYTEA[]) \
         ), \
         nodes AS ( \
             INSERT INTO audit_tree (height, idx, hash) \
             SELECT * FROM UNNEST($13::SMALLINT[], $14::BIGINT[], $15::BYTEA[]) \
             ON CONFLICT (height, idx) DO UPDATE SET hash = excluded.hash \
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
            .map(|e| e.stored.as_slice())
            .collect::<Vec<_>>(),
    )
    .bind(chains.iter().map(|c| c.as_slice()).collect::<Vec<_>>())
    .bind(size)
    .bind(tail.chain.as_slice())
    .bind(tail.frontier.to_bytes())
    .bind(heights)
    .bind(node_indices)
    .bind(hashes)
    .execute(conn)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Corrupt("audit_head row is missing".into()));
    }
    Ok(())
}

pub(super) fn uuid_bytes(u: &Uuid) -> &[u8] {
    u.as_bytes()
}

/// Applies one request. The outer error means the transaction itself is unusable; the inner
/// result is the request's own outcome, which on failure has left no trace in `events`.
pub(super) async fn apply_request(
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

//! The writer thread and its group commit.
//!
//! SQLite has one writer at a time, so Ward gives it exactly one: an OS thread that owns the
//! write connection, drains whatever requests are waiting, and commits them in one transaction
//! (group commit). A failing request is replayed under its own savepoint and fails alone. The
//! audit frontier and hash chain live in the writer, so appends cost one row and no reads;
//! each group commit also stores them (`audit_tail`, one row), so opening a store with a long
//! log does not re-hash it, as long as the stored tail matches the newest event.

use super::*;

/// Most requests one group commit takes; bounds the latency a batch adds to its first member.
pub(super) const MAX_BATCH: usize = 512;

/// The in-memory tail of the audit log: what the next append needs.
#[derive(Clone)]
pub(super) struct AuditState {
    pub(super) frontier: Frontier,
    pub(super) chain: Hash,
    /// Tree nodes completed by appends and not stored yet (see [`super::tree`]).
    pub(super) nodes: Vec<TreeNode>,
}

/// Where [`AuditState::rebuild`] starts hashing the stored log.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Replay {
    /// At the newest checkpoint: the least work that yields the tail.
    FromNewest,
    /// At the genesis, or the oldest checkpoint of a pruned log: every tree node that can
    /// be recomputed is.
    FromOldest,
}

impl AuditState {
    /// The tail as the last group commit stored it (`audit_tail`), when it still describes
    /// the log: its size is one past the newest event's index and its chain value is that
    /// event's. Else (a store written before the table existed, an import, another
    /// process's commit that did not store it) rebuilt from the newest checkpoint's frontier
    /// plus the events after it, which reads every event since that checkpoint.
    pub(super) fn load(conn: &Connection) -> Result<Self> {
        super::read::audit::in_snapshot(conn, |conn| {
            if let Some(stored) = Self::stored(conn)? {
                return Ok(stored);
            }
            Self::rebuild(conn, Replay::FromNewest)
        })
    }

    pub(super) fn stored(conn: &Connection) -> Result<Option<Self>> {
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
        let Some((idx, newest_chain)) = super::audit_bundles::newest(conn)? else {
            return Ok(None);
        };
        let (Ok(chain), Ok(frontier)) = (
            Hash::try_from(chain.as_slice()),
            Frontier::from_bytes(&frontier),
        ) else {
            return Ok(None);
        };
        let fits = u64::try_from(size).ok() == Some(idx + 1)
            && frontier.size() == size as u64
            && newest_chain.as_slice() == chain.as_slice();
        Ok(fits.then_some(Self {
            frontier,
            chain,
            nodes: Vec::new(),
        }))
    }

    /// Stores the tail in the current transaction, for the next [`AuditState::load`].
    pub(super) fn store(&self, conn: &Connection) -> Result<()> {
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

    /// Rebuilds the tail from a checkpoint's frontier (or the genesis) plus the events after
    /// it, collecting the tree nodes those events complete.
    pub(super) fn rebuild(conn: &Connection, replay: Replay) -> Result<Self> {
        Self::rebuild_flushing(conn, replay, |_| Ok(()))
    }

    /// [`AuditState::rebuild`], handing the collected nodes to `flush` whenever a few
    /// thousand have gathered (it may store and drain them), so that replaying a long log
    /// holds a bounded number in memory.
    pub(super) fn rebuild_flushing(
        conn: &Connection,
        replay: Replay,
        mut flush: impl FnMut(&mut Vec<TreeNode>) -> Result<()>,
    ) -> Result<Self> {
        let (min_idx, max_idx) = super::audit_bundles::index_range(conn)?;
        let mut state = Self {
            frontier: Frontier::new(),
            chain: [0; 32],
            nodes: Vec::new(),
        };
        let order = match replay {
            Replay::FromNewest => "DESC",
            Replay::FromOldest => "ASC",
        };
        let first = min_idx.unwrap_or(0).max(0) as u64;
        let mut from = 0u64;
        if first > 0 || (min_idx.is_some() && replay == Replay::FromNewest) {
            // After pruning, resume from the checkpoint at the prune boundary.
            let cp: Option<(i64, Vec<u8>, String)> = conn
                .query_row(
                    &format!(
                        "SELECT tree_size, frontier, checkpoint FROM audit_checkpoints \
                         WHERE tree_size <= ?2 AND tree_size >= ?1 \
                         ORDER BY tree_size {order} LIMIT 1"
                    ),
                    [first as i64, max_idx.map_or(0, |i| i + 1)],
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
        super::read::audit::each_event(conn, from, u64::MAX, |_, event, _, _| {
            state.append_leaf(leaf_hash(event));
            if state.nodes.len() >= 4096 {
                flush(&mut state.nodes)?;
            }
            Ok(())
        })?;
        flush(&mut state.nodes)?;
        Ok(state)
    }

    pub(super) fn append_leaf(&mut self, leaf: Hash) -> (u64, Hash) {
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

// ---- the writer -----------------------------------------------------------------------------

/// The writer thread: takes the first waiting job, drains what else is waiting, commits it all,
/// then does one step of sealing the audit subject index if a segment awaits it (and keeps
/// stepping while nothing else waits). Ends when every store handle is dropped.
pub(super) fn run_writer(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    mut audit: AuditState,
    mut sealer: Sealer,
) {
    let mut seen = data_version(&conn).unwrap_or(0);
    loop {
        let first = if sealer.owed(audit.frontier.size()) {
            match rx.try_recv() {
                Ok(job) => job,
                Err(mpsc::error::TryRecvError::Empty) => {
                    sealer.step(&mut conn, audit.frontier.size());
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        } else {
            match rx.blocking_recv() {
                Some(job) => job,
                None => break,
            }
        };
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
                Job::Seal(reply) => {
                    if !batch.is_empty() {
                        group_commit(&mut conn, &mut audit, &mut seen, std::mem::take(&mut batch));
                    }
                    let _ = reply.send(sealer.finish(&mut conn, audit.frontier.size()));
                }
                job => batch.push(job),
            }
        }
        if !batch.is_empty() {
            group_commit(&mut conn, &mut audit, &mut seen, batch);
        }
        sealer.step(&mut conn, audit.frontier.size());
    }
}

pub(super) type Reply = oneshot::Sender<Result<Committed>>;

/// A request waiting in a group commit.
pub(super) type Request = (Vec<Op>, Vec<Encoded>, Reply);

/// SQLite's count of commits made by *other* connections to the main database (this
/// connection's own commits leave it unchanged).
pub(super) fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("PRAGMA main.data_version")?
        .query_row([], |r| r.get(0))
}

/// Makes the in-memory audit tail current when another process committed since this writer
/// last held the lock: an admin command (`ward user add`, `ward backup run`, `ward retention
/// run`) run beside `ward serve` on the same file appends audit events too, and an append on
/// a stale frontier would collide with them. Called with the write lock held (`BEGIN
/// IMMEDIATE`), so nobody can commit between the check and the append; costs one pragma,
/// no I/O, when nothing changed.
pub(super) fn catch_up(conn: &Connection, audit: &mut AuditState, seen: &mut i64) -> Result<()> {
    let now = data_version(conn)?;
    if now != *seen {
        *audit = AuditState::load(conn)?;
        *seen = now;
    }
    Ok(())
}

/// Commits a batch of jobs in one transaction.
///
/// Long on purpose: the fast path, the replay of failed requests under savepoints and the
/// commit share the transaction and the answers owed, and whether every request is answered
/// exactly once is checked by reading them in order in one place.
pub(super) fn group_commit(
    conn: &mut Connection,
    audit: &mut AuditState,
    seen: &mut i64,
    jobs: Vec<Job>,
) {
    let mut commits = Vec::with_capacity(jobs.len());
    let mut heads = Vec::new();
    for job in jobs {
        match job {
            Job::Commit(ops, events, reply) => commits.push((ops, events, reply)),
            Job::Head(reply) => heads.push(reply),
            // `run_writer` hands these over on their own; one that gets here runs first.
            Job::Exclusive(work) => work(conn, audit),
            Job::Seal(reply) => {
                let _ = reply.send(Err(StoreError::Corrupt(
                    "a seal request reached a group commit".into(),
                )));
            }
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
    if !audit.nodes.is_empty()
        && let Err(e) = super::tree::insert_nodes(conn, &audit.nodes)
    {
        // Harmless too: proofs compute a missing node from the level below, and the next
        // open stores what is missing.
        tracing::warn!(error = %e, "storing audit tree nodes");
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
        audit.nodes.clear();
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
pub(super) struct Encoded {
    pub(super) at: i64,
    pub(super) tenant: Option<Uuid>,
    pub(super) subject: Option<Uuid>,
    pub(super) actor: String,
    pub(super) action: &'static str,
    pub(super) outcome: &'static str,
    pub(super) event: Vec<u8>,
    pub(super) leaf: Hash,
}

impl Encoded {
    /// Encodes the audit events among `ops`, in order.
    pub(super) fn all(ops: &[Op]) -> Vec<Self> {
        ops.iter()
            .filter_map(|op| match op {
                Op::Audit(event) => Some(Self::new(event)),
                _ => None,
            })
            .collect()
    }

    pub(super) fn new(event: &ward_audit::AuditEvent) -> Self {
        let bytes = event.to_bytes();
        Self {
            at: to_micros(event.at),
            tenant: event.tenant,
            subject: event.subject,
            actor: event.actor.id.clone(),
            action: event.action.as_str(),
            outcome: event.outcome.as_str(),
            leaf: leaf_hash(&bytes),
            event: crate::audit_codec::pack(&bytes),
        }
    }
}

/// An audit row ready to insert: an encoded event with its place in the log.
pub(super) struct PendingAudit<'a> {
    pub(super) idx: i64,
    pub(super) chain: Hash,
    pub(super) event: &'a Encoded,
}

impl<'a> PendingAudit<'a> {
    /// Appends `event` to the log tail `audit`.
    pub(super) fn append(event: &'a Encoded, audit: &mut AuditState) -> Self {
        let (idx, chain) = audit.append_leaf(event.leaf);
        Self {
            idx: idx as i64,
            chain,
            event,
        }
    }

    pub(super) fn params(&self) -> [&dyn ToSql; 9] {
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

pub(super) const AUDIT_INSERT: &str = "INSERT INTO audit_events (idx, at, tenant, subject, actor, action, \
    outcome, event, chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// Rows per multi-row audit insert (9 parameters each, well under SQLite's limit).
pub(super) const AUDIT_ROWS_PER_INSERT: usize = 64;

/// The multi-row audit insert, built once.
pub(super) fn audit_insert_many() -> &'static str {
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
pub(super) fn insert_audit(conn: &Connection, pending: &[PendingAudit<'_>]) -> Result<()> {
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

pub(super) fn fast_path(
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

pub(super) fn apply_in_savepoint(
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

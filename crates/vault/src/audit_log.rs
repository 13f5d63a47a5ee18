//! The tenant's view of the audit log, signed checkpoints, proofs and full verification.

use base64::Engine as _;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{
    Action, AuditEvent, Checkpoint, Frontier, Hash, PublicKey, Verifier, VerifyError, leaf_hash,
};
use ward_store::{AuditQuery, CheckpointRow, Op, Store};

use crate::access::{Access, Operation};
use crate::{RequestContext, Result, Vault, VaultError};
use ward_store::TenantStatus;
use ward_store::audit_columns as columns;

#[cfg(test)]
mod column_checks;
mod stored_tree;
mod subject_index;

pub use stored_tree::{
    ConsistencyProof, InclusionProof, consistency_from_store, inclusion_from_store,
};

/// Largest page of the tenant audit view.
pub const MAX_AUDIT_PAGE: u32 = 1000;

/// Largest audit cursor: log indices are stored as signed 64-bit integers, so a larger
/// cursor could only wrap to a negative index (and restart the listing) when cast.
pub const MAX_AUDIT_CURSOR: u64 = i64::MAX as u64;

/// Filters of `GET /v1/tenants/{tenant}/audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Events at or after.
    pub since: Option<OffsetDateTime>,
    /// Events before.
    pub until: Option<OffsetDateTime>,
    /// Actor id (`key:<id>`, `operator:<id>`, `system:<job>`).
    pub actor: Option<String>,
    /// Subject id.
    pub subject: Option<Uuid>,
    /// Action name.
    pub action: Option<String>,
    /// `allowed` or `denied`.
    pub outcome: Option<String>,
    /// Cursor from a previous page.
    pub cursor: Option<u64>,
    /// Page size (default 100).
    pub limit: Option<u32>,
}

/// One page of a tenant's audit events.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Events with their log index.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// What `verify_log` found on a clean log.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Events verified (including pruned ones covered by the first checkpoint).
    pub tree_size: u64,
    /// First index present in storage (non-zero after pruning).
    pub first_index: u64,
    /// Checkpoints whose signature, root and chain matched.
    pub checkpoints_verified: usize,
    /// Merkle root of the whole log.
    pub root: String,
}

/// Why a log failed verification.
#[derive(Debug, thiserror::Error)]
pub enum LogVerifyError {
    /// The log or a checkpoint is inconsistent.
    #[error(transparent)]
    Tampered(#[from] VerifyError),
    /// A checkpoint row could not be read.
    #[error("checkpoint at size {0} is unreadable")]
    BadCheckpointRow(u64),
    /// A filter column stored beside an event does not match the event (an edit that would
    /// hide the event from, or move it into, a tenant's view).
    #[error("event {index}: stored column `{column}` does not match the signed event")]
    ColumnMismatch {
        /// The event's index.
        index: u64,
        /// Which column.
        column: &'static str,
    },
    /// A stored Merkle tree node differs from the one the events give: proofs served from
    /// it would not verify against the signed checkpoints.
    #[error(
        "stored Merkle tree node {index} of height {height} (events {first} to {last}) does not \
         match the events"
    )]
    TreeNodeMismatch {
        /// The node's height.
        height: u8,
        /// Its index among the nodes of that height.
        index: u64,
        /// Its first event.
        first: u64,
        /// Its last event.
        last: u64,
    },
    /// The store's subject index of a sealed segment does not list exactly the events of
    /// each subject in it: a subject's access log read through it would miss events.
    #[error("the subject index of events {first} to {last} does not match the events")]
    SubjectIndexMismatch {
        /// The segment's first event (still stored).
        first: u64,
        /// Its last event.
        last: u64,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] ward_store::StoreError),
}

impl LogVerifyError {
    /// The first index found bad, when the failure is tied to one.
    pub fn first_bad_index(&self) -> Option<u64> {
        match self {
            Self::Tampered(e) => e.first_bad_index(),
            Self::ColumnMismatch { index, .. } => Some(*index),
            _ => None,
        }
    }
}

/// Checks the stored filter columns of `row` against its event.
///
/// Runs once per event in `ward audit verify`, after the event's bytes were authenticated by
/// the hash check; it guards the plain filter columns against edits. The event's values are
/// read by [`columns::Columns::of`]: a strict scanner of the canonical layout, falling back
/// to serde for anything else, so the verdicts are serde's (see that module).
fn check_columns(row: &ward_store::AuditRowRef<'_>) -> Result<(), LogVerifyError> {
    let bad = |column| LogVerifyError::ColumnMismatch {
        index: row.idx,
        column,
    };
    let c = columns::Columns::of(row.event).ok_or_else(|| bad("event"))?;
    if c.at != row.at {
        return Err(bad("at"));
    }
    if c.tenant != row.tenant {
        return Err(bad("tenant"));
    }
    if c.subject != row.subject {
        return Err(bad("subject"));
    }
    if c.actor != row.actor {
        return Err(bad("actor"));
    }
    if c.action != row.action {
        return Err(bad("action"));
    }
    if c.outcome != row.outcome {
        return Err(bad("outcome"));
    }
    Ok(())
}

impl Vault {
    /// The public key that verifies this deployment's checkpoints.
    pub fn audit_public_key(&self) -> PublicKey {
        self.inner.signer.public_key()
    }

    /// Signs a checkpoint of the log as it is now (or returns the one already at this size).
    pub async fn checkpoint(&self) -> Result<Checkpoint> {
        let head = self.inner.store.audit_head().await?;
        let existing = self.inner.store.checkpoints().await?;
        if let Some(last) = existing.last().filter(|c| c.tree_size == head.size) {
            return parse_checkpoint(last);
        }
        let (cp, row) = self.signed_checkpoint(head, self.now())?;
        self.commit(vec![Op::SaveCheckpoint(row)]).await?;
        Ok(cp)
    }

    /// Signs the log head as of `now`: the checkpoint and the row that stores it.
    fn signed_checkpoint(
        &self,
        head: ward_store::AuditHead,
        now: OffsetDateTime,
    ) -> Result<(Checkpoint, CheckpointRow)> {
        let cp = self.inner.signer.sign(
            &self.inner.origin,
            head.size,
            head.root,
            head.chain,
            now.unix_timestamp(),
        );
        let row = CheckpointRow {
            tree_size: head.size,
            checkpoint: serde_json::to_string(&cp).map_err(|_| VaultError::Integrity)?,
            frontier: head.frontier,
            created_at: now,
        };
        Ok((cp, row))
    }

    /// Signs a checkpoint because a caller asked (operators and auditors only), at most once
    /// per `Limits::checkpoint_interval` per deployment: the newest stored checkpoint's time
    /// decides, so every server of a deployment counts alike and a restart resets nothing.
    /// A refusal for the rate writes nothing.
    pub async fn sign_checkpoint(&self, ctx: &RequestContext) -> Result<Checkpoint> {
        let mut event = self.event(ctx, Action::CheckpointSign, ctx.principal.tenant);
        let status = match ctx.principal.tenant {
            Some(t) => self
                .inner
                .store
                .tenant(t)
                .await?
                .map_or(TenantStatus::Destroyed, |r| r.status),
            None => TenantStatus::Active,
        };
        let access = Access {
            principal: &ctx.principal,
            tenant: ctx.principal.tenant.unwrap_or_default(),
            tenant_status: status,
            operation: Operation::SignCheckpoint,
            collection: None,
            purpose: None,
            restrictions: &[],
            expires_at: None,
            now: self.now(),
            tenant_requires_totp: self
                .totp_fact(ctx, ctx.principal.tenant.unwrap_or_default())
                .await?,
        };
        self.check(&access, &event).await?;
        let head = self.inner.store.audit_head().await?;
        let existing = self.inner.store.checkpoints().await?;
        let now = self.now();
        if let Some(last) = existing.last() {
            let interval = time::Duration::try_from(self.inner.limits.checkpoint_interval)
                .unwrap_or(time::Duration::MAX);
            let next = last.created_at.saturating_add(interval);
            if next > now {
                let wait = (next - now).as_seconds_f64().ceil().max(1.0);
                return Err(VaultError::RateLimited {
                    retry_after: wait as u64,
                });
            }
        }
        let size = head.size;
        let (cp, row) = self.signed_checkpoint(head, now)?;
        event.at = now;
        event.detail = Some(serde_json::json!({ "tree_size": size }));
        self.commit(vec![Op::SaveCheckpoint(row), Op::Audit(Box::new(event))])
            .await?;
        Ok(cp)
    }

    /// Audits a proof request that was answered (in the caller's tenant log when it has
    /// one).
    async fn audit_proof(&self, ctx: &RequestContext, detail: serde_json::Value) -> Result<()> {
        let mut event = self.event(ctx, Action::AuditProof, ctx.principal.tenant);
        event.detail = Some(detail);
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(())
    }

    /// The newest signed checkpoint, making one if there is none yet.
    pub async fn latest_checkpoint(&self) -> Result<Checkpoint> {
        match self.inner.store.checkpoints().await?.last() {
            Some(row) => parse_checkpoint(row),
            None => self.checkpoint().await,
        }
    }

    /// RFC 9162 inclusion proof of event `index` in the tree of size `tree_size`.
    pub async fn inclusion_proof(
        &self,
        ctx: &RequestContext,
        index: u64,
        tree_size: u64,
    ) -> Result<serde_json::Value> {
        let p = inclusion_from_store(self.inner.store.as_ref(), index, tree_size).await?;
        self.audit_proof(
            ctx,
            serde_json::json!({ "proof": "inclusion", "index": index, "tree_size": tree_size }),
        )
        .await?;
        Ok(serde_json::json!({
            "index": index,
            "tree_size": tree_size,
            "leaf_hash": b64(&p.leaf),
            "root": b64(&p.root),
            "proof": p.proof.iter().map(b64).collect::<Vec<_>>(),
        }))
    }

    /// RFC 9162 consistency proof between tree sizes `from` and `to`.
    pub async fn consistency_proof(
        &self,
        ctx: &RequestContext,
        from: u64,
        to: u64,
    ) -> Result<serde_json::Value> {
        let p = consistency_from_store(self.inner.store.as_ref(), from, to).await?;
        self.audit_proof(
            ctx,
            serde_json::json!({ "proof": "consistency", "from": from, "to": to }),
        )
        .await?;
        Ok(serde_json::json!({
            "from": from,
            "to": to,
            "from_root": b64(&p.from_root),
            "to_root": b64(&p.to_root),
            "proof": p.proof.iter().map(b64).collect::<Vec<_>>(),
        }))
    }

    /// The tenant's own audit events: every access to its organization, by anyone.
    pub async fn tenant_audit(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        filter: AuditFilter,
    ) -> Result<AuditPage> {
        let event = self.event(ctx, Action::AuditRead, Some(tenant));
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        // Open on a cancelled tenant too (`Operation::open_on`): it is how its owner checks
        // what happened.
        let access = self.tenant_access(ctx, &trow, Operation::ReadAudit);
        self.check(&access, &event).await?;
        if let Some(a) = &filter.action
            && Action::parse(a).is_none()
        {
            return Err(VaultError::invalid(
                "invalid_action",
                format!("unknown action {a:?}"),
                Some("action"),
            ));
        }
        if let Some(o) = &filter.outcome
            && o != "allowed"
            && o != "denied"
        {
            return Err(VaultError::invalid(
                "invalid_outcome",
                "outcome is allowed or denied",
                Some("outcome"),
            ));
        }
        if filter.cursor.is_some_and(|c| c > MAX_AUDIT_CURSOR) {
            return Err(VaultError::invalid(
                "invalid_cursor",
                format!("cursor must be 0 to {MAX_AUDIT_CURSOR}"),
                Some("cursor"),
            ));
        }
        let limit = filter.limit.unwrap_or(100);
        if limit == 0 || limit > MAX_AUDIT_PAGE {
            return Err(VaultError::invalid(
                "invalid_limit",
                format!("limit must be 1 to {MAX_AUDIT_PAGE}"),
                Some("limit"),
            ));
        }
        let rows = self
            .inner
            .store
            .audit_query(&AuditQuery {
                tenant,
                since: filter.since,
                until: filter.until,
                actor: filter.actor,
                subject: filter.subject,
                action: filter.action,
                outcome: filter.outcome,
                after: filter.cursor,
                limit: limit + 1,
            })
            .await?;
        let more = rows.len() > limit as usize;
        let mut events = Vec::with_capacity(rows.len().min(limit as usize));
        for row in rows.iter().take(limit as usize) {
            let mut v: serde_json::Value =
                serde_json::from_slice(&row.event).map_err(|_| VaultError::Integrity)?;
            // The row was selected by its tenant column; the signed event is what counts. A
            // mismatch means someone edited the column: never show another tenant's event.
            if v.get("tenant").and_then(|t| t.as_str()) != Some(tenant.to_string().as_str()) {
                tracing::error!(
                    index = row.idx,
                    "audit row's tenant column does not match its event; run `ward audit verify`"
                );
                continue;
            }
            if let Some(o) = v.as_object_mut() {
                o.insert("index".into(), row.idx.into());
            }
            events.push(v);
        }
        let next_cursor = if more {
            rows.get(limit as usize - 1).map(|r| r.idx.to_string())
        } else {
            None
        };
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(AuditPage {
            events,
            next_cursor,
        })
    }

    /// Events of one subject, for the subject's export.
    pub(crate) async fn subject_audit(
        &self,
        tenant: Uuid,
        subject: Uuid,
        before: u64,
    ) -> Result<Vec<AuditEvent>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .subject_audit_page(tenant, subject, after, before)
                .await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(*last);
            out.extend(page.into_iter().map(|(_, e)| e));
        }
        Ok(out)
    }

    /// One page of a subject's events after log index `after` and before `before`, with their
    /// indices.
    pub(crate) async fn subject_audit_page(
        &self,
        tenant: Uuid,
        subject: Uuid,
        after: Option<u64>,
        before: u64,
    ) -> Result<Vec<(u64, AuditEvent)>> {
        let rows = self
            .inner
            .store
            .audit_query(&AuditQuery {
                tenant,
                subject: Some(subject),
                after,
                limit: SUBJECT_AUDIT_PAGE,
                ..Default::default()
            })
            .await?;
        rows.iter()
            .take_while(|row| row.idx < before)
            .map(|row| {
                serde_json::from_slice(&row.event)
                    .map(|e| (row.idx, e))
                    .map_err(|_| VaultError::Integrity)
            })
            .collect()
    }
}

/// A subject's audit events read per page by exports.
const SUBJECT_AUDIT_PAGE: u32 = 1000;

/// Audit rows read per page by [`verify_log`].
const VERIFY_PAGE: u32 = 10_000;

/// Recomputes the whole log from storage and checks every signed checkpoint.
/// `progress` is called with (events verified, total) as it goes.
pub async fn verify_log(
    store: &dyn Store,
    key: &PublicKey,
    mut progress: impl FnMut(u64, u64),
) -> Result<VerifyReport, LogVerifyError> {
    let head_rows = store.audit_rows(0, 1).await?;
    let first_index = head_rows.first().map_or(0, |r| r.idx);
    let checkpoints = store.checkpoints().await?;
    let mut parsed = Vec::with_capacity(checkpoints.len());
    for row in &checkpoints {
        let cp: Checkpoint = serde_json::from_str(&row.checkpoint)
            .map_err(|_| LogVerifyError::BadCheckpointRow(row.tree_size))?;
        parsed.push((cp, row));
    }
    let mut verifier = if first_index > 0 {
        // Pruned: resume from the checkpoint at the prune boundary.
        let (cp, row) = parsed
            .iter()
            .find(|(cp, _)| cp.tree_size == first_index)
            .ok_or(VerifyError::Gap {
                expected: 0,
                found: first_index,
            })?;
        let frontier = Frontier::from_bytes(&row.frontier)
            .map_err(|_| LogVerifyError::BadCheckpointRow(row.tree_size))?;
        Verifier::resume_from_checkpoint(cp, key, frontier)?
    } else {
        Verifier::new()
    };
    let total = store.audit_head().await.map(|h| h.size).unwrap_or(0);
    let mut pending = parsed
        .iter()
        .filter(|(cp, _)| cp.tree_size > first_index || (first_index == 0 && cp.tree_size == 0))
        .peekable();
    let mut verified = usize::from(first_index > 0);
    // The next page is read (on one of the store's blocking threads) while this one is
    // verified here: reading and hashing overlap.
    let mut rows = store.audit_page(first_index, VERIFY_PAGE).await?;
    // The tree nodes the previous page completed, checked while this page is verified; the
    // subject index segments completed, checked across the next pages (`Checking`).
    let mut nodes = Vec::new();
    let mut gather = subject_index::Gather::new(first_index);
    let mut checking = subject_index::Checking::new(store);
    loop {
        while let Some((cp, _)) = pending.peek() {
            if cp.tree_size == verifier.size() {
                verifier.check_checkpoint(cp, key)?;
                verified += 1;
                pending.next();
            } else {
                break;
            }
        }
        let Some(last) = rows.last_idx() else { break };
        let mut segments = Vec::new();
        let (next, nodes_checked, checked) = tokio::join!(
            store.audit_page(last + 1, VERIFY_PAGE),
            check_tree_nodes(store, std::mem::take(&mut nodes)),
            async {
                for row in rows.iter() {
                    verifier.feed(row.idx, row.event, row.chain)?;
                    check_columns(&row)?;
                    segments.extend(gather.feed(row.idx, row.tenant, row.subject));
                    if let Some((cp, _)) = pending.peek()
                        && cp.tree_size == verifier.size()
                    {
                        verifier.check_checkpoint(cp, key)?;
                        verified += 1;
                        pending.next();
                    }
                }
                Ok::<_, LogVerifyError>(())
            }
        );
        // The earlier page's nodes first: the first problem in log order is the one named.
        nodes_checked?;
        checking.advance(segments)?;
        checked?;
        nodes = verifier.take_nodes();
        rows = next?;
        progress(verifier.size(), total.max(verifier.size()));
    }
    check_tree_nodes(store, nodes).await?;
    checking.finish(gather.finish()).await?;
    let latest = parsed.last().map(|(cp, _)| cp.tree_size);
    if let Some((cp, _)) = pending.next() {
        // A checkpoint beyond the stored log: the newest events were removed.
        verifier.check_checkpoint(cp, key)?;
    }
    verifier.finish(latest)?;
    Ok(VerifyReport {
        tree_size: verifier.size(),
        first_index,
        checkpoints_verified: verified,
        root: b64(&verifier.root()),
    })
}

/// Checks the stored tree nodes that `recomputed` (from the events just verified) names.
/// A node the store lacks is no error: proofs compute it from the level below.
async fn check_tree_nodes(
    store: &dyn Store,
    recomputed: Vec<ward_audit::TreeNode>,
) -> Result<(), LogVerifyError> {
    if recomputed.is_empty() {
        return Ok(());
    }
    // One span per height: the nodes a page of events completes are consecutive.
    let mut spans: Vec<(u8, std::ops::Range<u64>)> = Vec::new();
    for n in &recomputed {
        let (height, index) = (n.subtree.height, n.subtree.index);
        match spans.iter_mut().find(|(h, _)| *h == height) {
            Some((_, range)) => {
                range.start = range.start.min(index);
                range.end = range.end.max(index + 1);
            }
            None => spans.push((height, index..index + 1)),
        }
    }
    let stored: std::collections::HashMap<_, _> = store
        .audit_tree_nodes(spans)
        .await?
        .into_iter()
        .map(|n| (n.subtree, n.hash))
        .collect();
    for node in recomputed {
        if stored.get(&node.subtree).is_some_and(|h| *h != node.hash) {
            let leaves = node.subtree.leaves();
            return Err(LogVerifyError::TreeNodeMismatch {
                height: node.subtree.height,
                index: node.subtree.index,
                first: leaves.start,
                last: leaves.end - 1,
            });
        }
    }
    Ok(())
}

/// Verifies the events after the newest signed checkpoint: the checkpoint's signature, then
/// every later event's hash chain and filter columns from the checkpoint's frontier, and the tree
/// nodes those events complete. Costs what the unsigned tail costs, whatever the log's length,
/// so health checks can run it often; [`verify_log`] checks the whole log. Without a
/// checkpoint, the whole log is read.
pub async fn verify_tail(
    store: &dyn Store,
    key: &PublicKey,
) -> Result<VerifyReport, LogVerifyError> {
    let checkpoints = store.checkpoints().await?;
    let (mut verifier, from) = match checkpoints.last() {
        Some(row) => {
            let cp: Checkpoint = serde_json::from_str(&row.checkpoint)
                .map_err(|_| LogVerifyError::BadCheckpointRow(row.tree_size))?;
            let frontier = Frontier::from_bytes(&row.frontier)
                .map_err(|_| LogVerifyError::BadCheckpointRow(row.tree_size))?;
            (
                Verifier::resume_from_checkpoint(&cp, key, frontier)?,
                cp.tree_size,
            )
        }
        None => (Verifier::new(), 0),
    };
    let mut rows = store.audit_page(from, VERIFY_PAGE).await?;
    while let Some(last) = rows.last_idx() {
        for row in rows.iter() {
            verifier.feed(row.idx, row.event, row.chain)?;
            check_columns(&row)?;
        }
        check_tree_nodes(store, verifier.take_nodes()).await?;
        rows = store.audit_page(last + 1, VERIFY_PAGE).await?;
    }
    verifier.finish(checkpoints.last().map(|row| row.tree_size))?;
    Ok(VerifyReport {
        tree_size: verifier.size(),
        first_index: from,
        checkpoints_verified: usize::from(!checkpoints.is_empty()),
        root: b64(&verifier.root()),
    })
}

fn parse_checkpoint(row: &CheckpointRow) -> Result<Checkpoint> {
    serde_json::from_str(&row.checkpoint).map_err(|_| VaultError::Integrity)
}

fn b64(h: &Hash) -> String {
    base64::engine::general_purpose::STANDARD.encode(h)
}

/// Leaf hash of a stored event, for clients checking an inclusion proof.
pub fn event_leaf_hash(event: &[u8]) -> Hash {
    leaf_hash(event)
}

/// Checks that a checkpoint exported earlier is a prefix of today's log: its signature
/// holds, the root recomputed at its size matches, and an RFC 9162 consistency proof from
/// it to the current head verifies. Returns the reason when it does not.
pub async fn check_exported_checkpoint(
    store: &dyn Store,
    cp: &Checkpoint,
    key: &PublicKey,
) -> Result<(), String> {
    cp.verify(key).map_err(|e| format!("signature: {e}"))?;
    let head = store.audit_head().await.map_err(|e| e.to_string())?;
    if cp.tree_size > head.size {
        return Err(format!(
            "the log has {} events, fewer than the checkpoint's {}: events were removed",
            head.size, cp.tree_size
        ));
    }
    let old_root = cp.root_hash().map_err(|e| e.to_string())?;
    if cp.tree_size == 0 {
        return Ok(());
    }
    let proof = consistency_from_store(store, cp.tree_size, head.size)
        .await
        .map_err(|e| match e {
            VaultError::Invalid { code: "pruned", .. } => {
                "part of the log was pruned by retention; verify against the prune checkpoint"
                    .to_owned()
            }
            other => other.to_string(),
        })?
        .proof;
    ward_audit::verify_consistency(cp.tree_size, head.size, &old_root, &head.root, &proof)
        .map_err(|e| format!("history was rewritten: {e}"))
}

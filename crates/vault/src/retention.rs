//! The retention engine (ARCHITECTURE.md, "Retention"): expired records are deleted or anonymized
//! per the policy, held records outlive their hold, cancelled tenants are destroyed after
//! their grace period, and the audit log is pruned behind a signed checkpoint.
//!
//! Work is done in bounded batches, each one store commit, so API requests interleave between
//! batches instead of waiting for a whole sweep. Reads never depend on the sweep: the access
//! decision already hides anything past `expires_at`.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, Actor, AuditEvent};
use ward_policy::{FieldName, OnExpiry};
use ward_store::{CheckpointRow, ExpiredRecord, Op, RecordRow, StoreError, TenantRow};

use crate::record_seal::record_aad;
use crate::{Result, Vault, VaultError};
use ward_store::TenantStatus;

/// Records handled per commit. Small enough that one batch holds the writer for a few
/// milliseconds, large enough to amortize the commit.
pub const DEFAULT_BATCH: u32 = 250;

/// Expired records read at a time, then expired batch by batch in the records' key order
/// (tenant, subject, id). Records expire roughly in creation order, which visits the subjects
/// in turn: deleted in that order, nearly every record dirtied a page of its own, and the
/// sweep wrote a page per record. In key order a subject's expired records sit together, so
/// a page is written about once per window. 16,384 records take about 11 MB.
pub const DEFAULT_WINDOW: u32 = 16384;

/// Times one window may be read again because records vanished under it (erased, or deleted
/// by their tenant) before the run gives up with the error.
const MAX_REREADS: u32 = 8;

/// How a retention run behaves.
#[derive(Debug, Clone)]
pub struct RetentionOptions {
    /// Report what would happen; change nothing.
    pub dry_run: bool,
    /// Only this tenant.
    pub tenant: Option<Uuid>,
    /// Records per commit.
    pub batch: u32,
    /// Expired records read at a time and expired in key order ([`DEFAULT_WINDOW`]).
    pub window: u32,
}

impl Default for RetentionOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            tenant: None,
            batch: DEFAULT_BATCH,
            window: DEFAULT_WINDOW,
        }
    }
}

/// What a run did (or would do), by tenant and collection.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct RetentionReport {
    /// True when nothing was changed.
    pub dry_run: bool,
    /// Tenant id → collection → counts.
    #[schema(value_type = Object)]
    pub tenants: BTreeMap<Uuid, BTreeMap<String, Counts>>,
    /// Held records deleted because their hold ended.
    pub holds_released: u64,
    /// Tenants destroyed after their grace period.
    pub tenants_destroyed: Vec<Uuid>,
    /// Audit events pruned.
    pub audit_events_pruned: u64,
}

/// Per-collection counts.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct Counts {
    /// Records deleted.
    pub deleted: u64,
    /// Records anonymized.
    pub anonymized: u64,
    /// Expired records kept because of a legal or litigation hold.
    pub held: u64,
}

impl RetentionReport {
    fn count(&mut self, tenant: Uuid, collection: &str) -> &mut Counts {
        self.tenants
            .entry(tenant)
            .or_default()
            .entry(collection.to_owned())
            .or_default()
    }

    /// Adds the counts of `other` to these.
    fn merge(&mut self, other: Self) {
        for (tenant, collections) in other.tenants {
            for (collection, c) in collections {
                let mine = self.count(tenant, &collection);
                mine.deleted += c.deleted;
                mine.anonymized += c.anonymized;
                mine.held += c.held;
            }
        }
    }

    /// Records deleted plus anonymized.
    pub fn total(&self) -> u64 {
        self.tenants
            .values()
            .flat_map(|c| c.values())
            .map(|c| c.deleted + c.anonymized)
            .sum()
    }
}

impl Vault {
    /// Runs retention once. `progress` receives the number of records handled so far.
    pub async fn run_retention(
        &self,
        opts: &RetentionOptions,
        progress: impl FnMut(u64),
    ) -> Result<RetentionReport> {
        let swept = self.sweep(opts, progress).await;
        if opts.tenant.is_none() && !opts.dry_run {
            // A full sweep's outcome; its time is its audit event's (`gauges`).
            metrics::gauge!("ward_retention_last_outcome").set(f64::from(u8::from(swept.is_ok())));
        }
        if let Ok(report) = &swept
            && !opts.dry_run
        {
            metrics::counter!("ward_retention_records_total").increment(report.total());
        }
        swept
    }

    async fn sweep(
        &self,
        opts: &RetentionOptions,
        mut progress: impl FnMut(u64),
    ) -> Result<RetentionReport> {
        let now = self.now();
        let mut report = RetentionReport {
            dry_run: opts.dry_run,
            ..Default::default()
        };
        let mut cursor = None;
        let mut handled = 0u64;
        // Records of this window already expired (or found held), so that a window read
        // again after a record vanished under it is not counted twice.
        let mut done = HashSet::new();
        let mut rereads = 0;
        let window_size = opts.window.max(1);
        loop {
            let mut window = self
                .inner
                .store
                .expired_records(now, cursor, opts.tenant, window_size)
                .await?;
            let Some(last) = window.last() else { break };
            // On a dry run nothing is removed, so the cursor must move past what was seen; on a
            // real run held records stay too, so the same holds.
            let window_end = Some((last.record.expires_at.unwrap_or(now), last.record.id));
            let full = window.len() as u32 == window_size;
            window.retain(|item| !done.contains(&item.record.id));
            window.sort_unstable_by_key(|item| {
                (item.record.tenant, item.record.subject, item.record.id)
            });
            let mut tenants = HashMap::new();
            for item in &window {
                if let std::collections::hash_map::Entry::Vacant(e) =
                    tenants.entry(item.record.tenant)
                {
                    e.insert(self.tenant_row(item.record.tenant).await?);
                }
            }
            let mut vanished = false;
            for batch in window.chunks(opts.batch.max(1) as usize) {
                let mut counted = RetentionReport::default();
                let ops = self
                    .expire_batch(batch, &tenants, now, &mut counted)
                    .await?;
                if !opts.dry_run && !ops.is_empty() {
                    match self.commit(ops).await {
                        Ok(_) => {}
                        // A record was erased or deleted after the window was read: read the
                        // rest of the window again.
                        Err(StoreError::NotFound(_)) if rereads < MAX_REREADS => {
                            vanished = true;
                            break;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                report.merge(counted);
                done.extend(batch.iter().map(|item| item.record.id));
                handled += batch.len() as u64;
                progress(handled);
            }
            if vanished {
                rereads += 1;
                continue;
            }
            (cursor, rereads) = (window_end, 0);
            done.clear();
            if !full {
                break;
            }
        }
        if opts.tenant.is_none() {
            self.release_holds(now, opts, &mut report).await?;
            self.destroy_due_tenants(now, opts, &mut report).await?;
            report.audit_events_pruned = self.prune_audit(now, opts.dry_run).await?;
        }
        if !opts.dry_run {
            let mut ops = Vec::new();
            for (tenant, collections) in &report.tenants {
                let mut e = system_event(now, Action::RetentionRun, Some(*tenant));
                e.detail = Some(serde_json::to_value(collections).unwrap_or(Value::Null));
                ops.push(Op::Audit(Box::new(e)));
            }
            if opts.tenant.is_none() {
                // The sweep itself, done or not: `ward doctor` and auditors see when retention
                // last ran even when nothing had expired.
                let mut e = system_event(now, Action::RetentionRun, None);
                e.detail = Some(serde_json::json!({
                    "tenants": report.tenants.len(),
                    "records_expired": report.total(),
                    "holds_released": report.holds_released,
                    "tenants_destroyed": report.tenants_destroyed.len(),
                    "audit_events_pruned": report.audit_events_pruned,
                }));
                ops.push(Op::Audit(Box::new(e)));
            }
            if !ops.is_empty() {
                self.commit(ops).await?;
            }
        }
        Ok(report)
    }

    /// The ops that expire a batch of records: per record a delete or an anonymization and
    /// its audit event, the deletes gathered into one op.
    async fn expire_batch(
        &self,
        batch: &[ExpiredRecord],
        tenants: &HashMap<Uuid, TenantRow>,
        now: OffsetDateTime,
        report: &mut RetentionReport,
    ) -> Result<Vec<Op>> {
        let mut ops = Vec::with_capacity(batch.len() * 2);
        let mut deletes = Vec::new();
        for item in batch {
            let trow = tenants
                .get(&item.record.tenant)
                .ok_or(VaultError::NotFound("tenant"))?;
            for op in self
                .expire_one(item, trow, now, report)
                .await?
                .into_iter()
                .flatten()
            {
                match op {
                    Op::DeleteRecord {
                        tenant,
                        subject,
                        id,
                    } => deletes.push((tenant, subject, id)),
                    op => ops.push(op),
                }
            }
        }
        // Deletes go out as one op per batch; audit events stay one per record.
        if !deletes.is_empty() {
            ops.push(Op::DeleteRecords { records: deletes });
        }
        Ok(ops)
    }

    /// The ops that expire one record, or `None` when a hold keeps it.
    async fn expire_one(
        &self,
        item: &ExpiredRecord,
        trow: &TenantRow,
        now: OffsetDateTime,
        report: &mut RetentionReport,
    ) -> Result<Option<Vec<Op>>> {
        let r = &item.record;
        let coll = self.inner.policy.collection(&r.collection);
        let legal_hold_until = coll
            .and_then(|c| c.legal_hold.as_ref())
            .map(|h| r.created_at + h.retain_for.as_duration());
        let held = item.subject.hold_until.is_some_and(|u| u > now)
            || legal_hold_until.is_some_and(|u| u > now);
        if held {
            report.count(r.tenant, &r.collection).held += 1;
            return Ok(None);
        }
        let anonymize = coll
            .and_then(|c| c.retention.as_ref())
            .is_some_and(|ret| ret.on_expiry == OnExpiry::Anonymize);
        let mut event = system_event(
            now,
            if anonymize {
                Action::RecordAnonymize
            } else {
                Action::RecordExpire
            },
            Some(r.tenant),
        );
        event.subject = Some(r.subject);
        event.record = Some(r.id);
        event.collection = Some(r.collection.clone());
        let op = match (anonymize, coll) {
            (true, Some(c)) => {
                report.count(r.tenant, &r.collection).anonymized += 1;
                Op::AnonymizeRecord {
                    record: self.anonymized_record(item, trow, c).await?,
                    at: now,
                }
            }
            _ => {
                report.count(r.tenant, &r.collection).deleted += 1;
                Op::DeleteRecord {
                    tenant: r.tenant,
                    subject: r.subject,
                    id: r.id,
                }
            }
        };
        Ok(Some(vec![op, Op::Audit(Box::new(event))]))
    }

    /// Decrypts with the subject key, applies each field's strategy, seals under the tenant's
    /// anonymized-data key. The result no longer needs (or is bound to) the subject key.
    async fn anonymized_record(
        &self,
        item: &ExpiredRecord,
        trow: &TenantRow,
        coll: &ward_policy::Collection,
    ) -> Result<RecordRow> {
        let r = &item.record;
        let values = self
            .record_ciphers(trow, &item.subject, std::slice::from_ref(r))
            .await?
            .open(r)?;
        let tk = self.inner.keys.tenant(trow)?;
        let mut out = Map::new();
        for (name, value) in values {
            let Some(spec) = FieldName::parse(&name)
                .ok()
                .and_then(|f| coll.fields.get(&f).cloned())
            else {
                continue;
            };
            let strategy = spec.anonymize.unwrap_or(ward_policy::Anonymize::Drop);
            let field = name.clone();
            let collection = coll.name.as_str().to_owned();
            if let Some(v) = strategy.apply(spec.ty, &value, |s| {
                hex::encode(
                    tk.anon
                        .keyed(&format!("anonymize/{collection}/{field}"), s.as_bytes()),
                )
            }) {
                out.insert(name, v);
            }
        }
        let plaintext = serde_json::to_vec(&out).map_err(|_| VaultError::Integrity)?;
        let sealed = tk.anonymized.seal(
            &plaintext,
            &record_aad(r.tenant, Uuid::nil(), r.id, &r.collection, 1),
        )?;
        Ok(RecordRow {
            ciphertext: sealed,
            key_version: 1,
            ..r.clone()
        })
    }

    async fn release_holds(
        &self,
        now: OffsetDateTime,
        opts: &RetentionOptions,
        report: &mut RetentionReport,
    ) -> Result<()> {
        loop {
            let held = self
                .inner
                .store
                .expired_held_records(now, opts.batch.max(1))
                .await?;
            if held.is_empty() {
                break;
            }
            report.holds_released += held.len() as u64;
            if opts.dry_run {
                break;
            }
            let mut ops = Vec::new();
            for h in &held {
                ops.push(Op::DeleteHeldRecord {
                    tenant: h.tenant,
                    id: h.id,
                });
                let mut e = system_event(now, Action::RecordExpire, Some(h.tenant));
                e.record = Some(h.id);
                e.collection = Some(h.collection.clone());
                e.detail =
                    Some(serde_json::json!({ "hold": h.hold, "reason": "legal hold ended" }));
                ops.push(Op::Audit(Box::new(e)));
            }
            self.commit(ops).await?;
        }
        if !opts.dry_run {
            // A hold whose records are all gone has nothing left to protect: shred its key.
            let empty = self.inner.store.empty_holds().await?;
            let ops: Vec<Op> = empty
                .iter()
                .map(|h| Op::ShredHold {
                    tenant: h.tenant,
                    id: h.id,
                })
                .collect();
            if !ops.is_empty() {
                self.commit(ops).await?;
            }
        }
        Ok(())
    }

    async fn destroy_due_tenants(
        &self,
        now: OffsetDateTime,
        opts: &RetentionOptions,
        report: &mut RetentionReport,
    ) -> Result<()> {
        for t in self.inner.store.tenants().await? {
            if t.status == TenantStatus::Deactivated && t.destroy_after.is_some_and(|d| d <= now) {
                report.tenants_destroyed.push(t.id);
                if !opts.dry_run {
                    let mut e = system_event(now, Action::TenantDestroy, Some(t.id));
                    e.reason = Some("grace period ended".into());
                    self.commit(vec![
                        Op::DestroyTenant { id: t.id, at: now },
                        Op::Audit(Box::new(e)),
                    ])
                    .await?;
                    self.inner.keys.forget_tenant(t.id);
                    self.forget_tenant_tokens(t.id);
                    self.forget_tenant_row(t.id);
                }
            }
        }
        Ok(())
    }

    /// Prunes audit events older than the policy's audit retention, sealing the boundary with
    /// a signed checkpoint (and its frontier) so what remains still verifies.
    async fn prune_audit(&self, now: OffsetDateTime, dry_run: bool) -> Result<u64> {
        let cutoff = now - self.inner.policy.audit.retain_for.as_duration();
        let head = self.inner.store.audit_head().await?;
        let boundary = self
            .inner
            .store
            .audit_index_at(cutoff)
            .await?
            .unwrap_or(head.size)
            // Always keep the newest event: an empty table would lose where the log stands.
            .min(head.size.saturating_sub(1));
        let first = self
            .inner
            .store
            .audit_rows(0, 1)
            .await?
            .first()
            .map_or(head.size, |r| r.idx);
        if boundary <= first {
            return Ok(0);
        }
        let pruned = boundary - first;
        if dry_run {
            return Ok(pruned);
        }
        // Rebuild the frontier at the boundary: from the previous prune checkpoint if any.
        let checkpoints = self.inner.store.checkpoints().await?;
        let (mut frontier, start) = match checkpoints
            .iter()
            .rev()
            .find(|c| c.tree_size == first && first > 0)
        {
            Some(c) => (
                ward_audit::Frontier::from_bytes(&c.frontier).map_err(|_| VaultError::Integrity)?,
                first,
            ),
            None => (ward_audit::Frontier::new(), 0),
        };
        let mut chain = [0u8; 32];
        let mut at = start;
        while at < boundary {
            let rows = self.inner.store.audit_rows(at, 10_000).await?;
            for row in rows.iter().take_while(|r| r.idx < boundary) {
                frontier.push(ward_audit::leaf_hash(&row.event));
                chain = row.chain;
                at = row.idx + 1;
            }
            if rows.is_empty() {
                break;
            }
        }
        let cp = self.inner.signer.sign(
            &self.inner.origin,
            boundary,
            frontier.root(),
            chain,
            now.unix_timestamp(),
        );
        let row = CheckpointRow {
            tree_size: boundary,
            checkpoint: serde_json::to_string(&cp).map_err(|_| VaultError::Integrity)?,
            frontier: frontier.to_bytes(),
            created_at: now,
        };
        self.commit(vec![
            Op::SaveCheckpoint(row),
            Op::PruneAudit { before: boundary },
        ])
        .await?;
        Ok(pruned)
    }
}

pub(crate) fn system_event(at: OffsetDateTime, action: Action, tenant: Option<Uuid>) -> AuditEvent {
    AuditEvent::allowed(
        at,
        format!("retention-{}", at.unix_timestamp()),
        Actor::system("retention"),
        action,
        tenant,
    )
}

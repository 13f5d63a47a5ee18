//! Record rotation (`ward keys rotate --records`): every subject of a tenant gets a new key
//! and its records are re-encrypted under it, in bounded batches, while the API keeps serving.
//!
//! Each batch of subjects takes three commits, and each touches one kind of storage (SQLite
//! does not commit the key store and the data file atomically, so no step may rely on both):
//!
//! 1. the new subject keys; the old ones become *retired* versions that still open records
//!    (key store);
//! 2. the records, re-sealed under the new keys, with the job's progress (data);
//! 3. the retired keys that no record is sealed under any more, destroyed (key store).
//!
//! From step 1 on, every write seals under the new key: the store refuses a record sealed
//! under a replaced key and the vault seals it again. Reads open any version still alive. A
//! write that raced step 2's read leaves its subject a retired key, which the sweep at the
//! end of the job finishes. A crash anywhere loses nothing: retired keys stay until no record
//! needs them, and the job resumes from its last committed cursor.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, Actor};
use ward_crypto::Cipher;
use ward_store::{
    KeyJobRow, Op, RecordFilter, RecordRow, Reencrypted, SubjectKeyChange, TenantRow,
};

use crate::retention::system_event;
use crate::sealing::SubjectCiphers;
use crate::{Result, Vault, VaultError};
use ward_store::TenantStatus;

/// Records per re-encryption commit: bounds how long one commit holds the writer.
const RECORDS_PER_COMMIT: usize = 1000;
/// Subjects per batch to start with; adapted so a batch carries about `RECORDS_PER_COMMIT`
/// records whatever the records-per-subject ratio.
const FIRST_PAGE: u32 = 256;
const MAX_PAGE: u32 = 4096;
/// How long a job stays with the process running it without progress before another may
/// take it over.
const LEASE: Duration = Duration::from_secs(60);
/// Attempts at a batch that keeps racing concurrent erasures or rotations.
const BATCH_ATTEMPTS: u32 = 8;

/// A record rotation job as operators see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyJob {
    /// Job id.
    pub id: Uuid,
    /// Tenant whose records are re-encrypted.
    pub tenant: Uuid,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// Subjects given a new key so far.
    pub subjects_done: u64,
    /// Records re-encrypted so far.
    pub records_done: u64,
    /// Records the tenant had when the job started.
    pub records_total: u64,
    /// Start time.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// Last progress.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// End time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// Why it failed.
    pub error: Option<String>,
}

impl From<KeyJobRow> for KeyJob {
    fn from(j: KeyJobRow) -> Self {
        Self {
            id: j.id,
            tenant: j.tenant,
            status: j.status,
            subjects_done: j.subjects_done,
            records_done: j.records_done,
            records_total: j.records_total,
            started_at: j.started_at,
            updated_at: j.updated_at,
            finished_at: j.finished_at,
            error: j.error,
        }
    }
}

impl KeyJob {
    /// Share of the records done, 0 to 1 (records written during the job can push the count
    /// past the total; the ratio stops at 1).
    pub fn progress(&self) -> f64 {
        if self.records_total == 0 {
            return if self.status == "running" { 0.0 } else { 1.0 };
        }
        (self.records_done as f64 / self.records_total as f64).min(1.0)
    }
}

impl Vault {
    /// Starts a record rotation for one tenant or, with `None`, for every active tenant. A
    /// tenant whose rotation is already running keeps that job. Returns the jobs. `ctx` names
    /// who asked (the audit event's actor); `None` is an operator at the command line.
    pub async fn start_record_rotation(
        &self,
        ctx: Option<&crate::RequestContext>,
        tenant: Option<Uuid>,
    ) -> Result<Vec<KeyJob>> {
        let tenants = match tenant {
            Some(id) => {
                let t = self
                    .inner
                    .store
                    .tenant(id)
                    .await?
                    .filter(|t| t.status != TenantStatus::Destroyed && t.wrapped_key.is_some())
                    .ok_or(VaultError::NotFound("tenant"))?;
                vec![t]
            }
            None => self
                .inner
                .store
                .tenants()
                .await?
                .into_iter()
                .filter(|t| t.status != TenantStatus::Destroyed && t.wrapped_key.is_some())
                .collect(),
        };
        let running = self.inner.store.key_jobs(Some("running")).await?;
        let mut jobs = Vec::new();
        for t in tenants {
            if let Some(j) = running.iter().find(|j| j.tenant == t.id) {
                jobs.push(KeyJob::from(j.clone()));
                continue;
            }
            let now = self.now();
            let row = KeyJobRow {
                id: Uuid::now_v7(),
                tenant: t.id,
                status: "running".into(),
                cursor: None,
                subjects_done: 0,
                records_done: 0,
                records_total: self.inner.store.record_count(t.id).await?,
                started_at: now,
                updated_at: now,
                finished_at: None,
                lease_owner: None,
                lease_until: None,
                error: None,
            };
            let mut event = match ctx {
                Some(ctx) => self.event(ctx, Action::KeyRotate, Some(t.id)),
                None => {
                    let mut e = system_event(now, Action::KeyRotate, Some(t.id));
                    e.actor = Actor::system("ward-cli");
                    e.request_id = format!("key-job-{}", row.id);
                    e
                }
            };
            event.detail = Some(serde_json::json!({
                "scope": "records", "job": row.id, "phase": "started",
                "records": row.records_total,
            }));
            self.commit(vec![
                Op::InsertKeyJob(row.clone()),
                Op::Audit(Box::new(event)),
            ])
            .await?;
            jobs.push(KeyJob::from(row));
        }
        Ok(jobs)
    }

    /// Every key job, newest first.
    pub async fn key_jobs(&self) -> Result<Vec<KeyJob>> {
        Ok(self
            .inner
            .store
            .key_jobs(None)
            .await?
            .into_iter()
            .map(KeyJob::from)
            .collect())
    }

    /// Runs every running job whose lease is free, one after another; what a server's
    /// background worker calls. Returns how many jobs it finished.
    pub async fn run_pending_key_jobs(&self, owner: &str) -> Result<usize> {
        let mut finished = 0;
        for job in self.inner.store.key_jobs(Some("running")).await? {
            let free = job.lease_owner.as_deref().is_none_or(|o| o == owner)
                || job.lease_until.is_none_or(|u| u < self.now());
            if !free {
                continue;
            }
            let done = self.run_key_job(job.id, owner, &|_| {}).await?;
            if done.status != "running" {
                finished += 1;
            }
        }
        Ok(finished)
    }

    /// Runs a record rotation job until it is done, reporting progress after every batch.
    /// Returns early, with the job still `running`, when another process holds it.
    pub async fn run_key_job(
        &self,
        id: Uuid,
        owner: &str,
        progress: &(dyn Fn(&KeyJob) + Send + Sync),
    ) -> Result<KeyJob> {
        let Some(mut job) = self.job(id).await? else {
            return Err(VaultError::NotFound("key job"));
        };
        if job.status != "running" {
            return Ok(job.into());
        }
        // Claim the job: a conflict means another process holds the lease.
        match self.advance(&job, owner, None, 0, 0).await {
            Ok(()) => {}
            Err(VaultError::Conflict(_)) => return Ok(job.into()),
            Err(e) => return Err(e),
        }
        metrics::gauge!("ward_key_jobs_running").increment(1.0);
        let outcome = self.drive(&mut job, owner, progress).await;
        metrics::gauge!("ward_key_jobs_running").decrement(1.0);
        match outcome {
            Ok(()) => {}
            // Taken over by another process after a stall: it finishes the job.
            Err(e) if e.is_store_conflict(&ward_store::Conflict::KeyJobHeld) => {}
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "record rotation stopped; it resumes on the next run");
                return Err(e);
            }
        }
        Ok(self.job(id).await?.map(KeyJob::from).unwrap_or(job.into()))
    }

    async fn job(&self, id: Uuid) -> Result<Option<KeyJobRow>> {
        Ok(self
            .inner
            .store
            .key_jobs(None)
            .await?
            .into_iter()
            .find(|j| j.id == id))
    }

    async fn drive(
        &self,
        job: &mut KeyJobRow,
        owner: &str,
        progress: &(dyn Fn(&KeyJob) + Send + Sync),
    ) -> Result<()> {
        let tenant = job.tenant;
        let mut page = FIRST_PAGE;
        loop {
            let Some(trow) = self.live_tenant(tenant).await? else {
                return self
                    .finish(job, "failed", Some("the tenant was destroyed"))
                    .await;
            };
            let mut attempt = 0;
            let (subjects, records, last) = loop {
                match self.rotate_batch(&trow, job, owner, page).await {
                    Err(e @ VaultError::Conflict(_))
                        if !e.is_store_conflict(&ward_store::Conflict::KeyJobHeld)
                            && attempt < BATCH_ATTEMPTS =>
                    {
                        attempt += 1;
                        self.forget_tenant_row(tenant);
                    }
                    other => break other?,
                }
            };
            let Some(last) = last else {
                break;
            };
            job.cursor = Some(last);
            job.subjects_done += subjects;
            job.records_done += records;
            job.updated_at = self.now();
            metrics::counter!("ward_key_rotation_records_total").increment(records);
            let view = KeyJob::from(job.clone());
            metrics::gauge!("ward_key_job_progress_ratio", "tenant" => tenant.to_string())
                .set(view.progress());
            progress(&view);
            // Aim for about one commit's worth of records per batch.
            let per_subject = (records / subjects).max(1) as usize;
            page = u32::try_from(RECORDS_PER_COMMIT / per_subject)
                .unwrap_or(MAX_PAGE)
                .clamp(16, MAX_PAGE);
        }
        self.sweep_retired(tenant, job, owner).await?;
        self.finish(job, "done", None).await
    }

    async fn live_tenant(&self, tenant: Uuid) -> Result<Option<TenantRow>> {
        Ok(self
            .inner
            .store
            .tenant(tenant)
            .await?
            .filter(|t| t.status != TenantStatus::Destroyed && t.wrapped_key.is_some()))
    }

    /// One batch: new keys, re-sealed records, destroyed old keys. Returns the subjects and
    /// records done and the last subject (`None`: nothing left).
    async fn rotate_batch(
        &self,
        trow: &TenantRow,
        job: &KeyJobRow,
        owner: &str,
        page: u32,
    ) -> Result<(u64, u64, Option<Uuid>)> {
        let tenant = trow.id;
        let subjects = self
            .inner
            .store
            .keyed_subjects(tenant, job.cursor, page)
            .await?;
        let Some(last) = subjects.last().map(|s| s.id) else {
            return Ok((0, 0, None));
        };
        let mut changes = Vec::with_capacity(subjects.len());
        let mut keys: HashMap<Uuid, NewKey> = HashMap::with_capacity(subjects.len());
        for s in &subjects {
            if s.key_version != trow.key_version {
                // Read across a tenant key rotation: read everything again.
                return Err(VaultError::Conflict(crate::error::Conflict::Store(
                    ward_store::Conflict::KeyRotated,
                )));
            }
            let (wrapped_key, cipher) = self.inner.keys.next_subject_key(trow, s.id)?;
            let version = s
                .record_key_version
                .checked_add(1)
                .ok_or(VaultError::Integrity)?;
            changes.push(SubjectKeyChange {
                subject: s.id,
                expected_version: s.record_key_version,
                wrapped_key,
            });
            keys.insert(
                s.id,
                NewKey {
                    version,
                    cipher,
                    old: self.subject_cipher_now(trow, s)?,
                },
            );
        }
        // Step 1 (key store): the new keys. From here on writes seal under them.
        self.commit(vec![Op::RotateSubjectKeys {
            tenant,
            tenant_key_version: trow.key_version,
            keys: changes,
        }])
        .await?;
        // Step 2 (data): the records, read after step 1 so none sealed under an old key can
        // appear behind this read.
        let records = self
            .inner
            .store
            .records_of_subjects(tenant, job.cursor, last)
            .await?;
        let resealed = self.reseal_all(trow, &records, &mut keys).await?;
        let count = resealed.len() as u64;
        let mut chunks = resealed.chunks(RECORDS_PER_COMMIT).peekable();
        loop {
            let chunk = chunks.next();
            let mut ops = Vec::with_capacity(2);
            if let Some(chunk) = chunk {
                ops.push(Op::ReencryptRecords {
                    tenant,
                    records: chunk.to_vec(),
                });
            }
            let last_commit = chunks.peek().is_none();
            if last_commit {
                ops.push(self.advance_op(job, owner, Some(last), subjects.len() as u64, count));
            }
            self.commit(ops).await?;
            if last_commit {
                break;
            }
        }
        // Step 3 (key store): the old keys, now that no record needs them.
        self.commit(vec![Op::DestroyRetiredKeys {
            tenant,
            subjects: subjects.iter().map(|s| s.id).collect(),
        }])
        .await?;
        // Destroyed keys leave this process's memory too (the new ones are unwrapped again
        // on first use), and so do the subjects as remembered for new records, whose key
        // version is the old one.
        for s in &subjects {
            self.forget_subject(tenant, s.id);
        }
        Ok((subjects.len() as u64, count, Some(last)))
    }

    /// Re-seals every record of the batch that is not under its subject's new key yet.
    async fn reseal_all(
        &self,
        trow: &TenantRow,
        records: &[RecordRow],
        keys: &mut HashMap<Uuid, NewKey>,
    ) -> Result<Vec<Reencrypted>> {
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            // A subject missing here was created after the page was read: the next job's.
            let Some(k) = keys.get_mut(&r.subject) else {
                continue;
            };
            if r.key_version == k.version {
                continue; // written under the new key after step 1
            }
            if !k.old.opens(r.key_version) {
                // Left under an older version by an interrupted job: its retired key opens it.
                for retired in self.inner.store.retired_keys(trow.id, r.subject).await? {
                    let c = self.inner.keys.retired_subject(trow, r.subject, &retired)?;
                    k.old.add_older(retired.version, c);
                }
            }
            out.push(Reencrypted {
                subject: r.subject,
                id: r.id,
                revision: r.revision,
                ciphertext: k.old.reseal(r, &k.cipher, k.version)?,
                key_version: k.version,
            });
        }
        Ok(out)
    }

    /// Finishes subjects that kept a retired key (a write raced their batch, or a job was
    /// interrupted): their remaining old records are re-sealed under the current key and the
    /// retired keys destroyed.
    async fn sweep_retired(&self, tenant: Uuid, job: &mut KeyJobRow, owner: &str) -> Result<()> {
        for _ in 0..BATCH_ATTEMPTS {
            let ids = self
                .inner
                .store
                .subjects_with_retired_keys(tenant, 1000)
                .await?;
            if ids.is_empty() {
                return Ok(());
            }
            let Some(trow) = self.live_tenant(tenant).await? else {
                return Ok(());
            };
            let mut resealed = Vec::new();
            for id in &ids {
                let Some(view) = self
                    .inner
                    .store
                    .subject_view(tenant, *id, RecordFilter::All(None))
                    .await?
                    .filter(|v| v.subject.wrapped_key.is_some())
                else {
                    continue; // erased meanwhile: its keys went with it
                };
                let ciphers = self
                    .record_ciphers(&trow, &view.subject, &view.records)
                    .await?;
                for r in &view.records {
                    if r.key_version == ciphers.version() || !ciphers.opens(r.key_version) {
                        continue;
                    }
                    resealed.push(Reencrypted {
                        subject: r.subject,
                        id: r.id,
                        revision: r.revision,
                        ciphertext: ciphers.reseal_to_current(r)?,
                        key_version: ciphers.version(),
                    });
                }
            }
            let count = resealed.len() as u64;
            for chunk in resealed.chunks(RECORDS_PER_COMMIT) {
                self.commit(vec![Op::ReencryptRecords {
                    tenant,
                    records: chunk.to_vec(),
                }])
                .await?;
            }
            self.commit(vec![self.advance_op(job, owner, None, 0, count)])
                .await?;
            job.records_done += count;
            metrics::counter!("ward_key_rotation_records_total").increment(count);
            self.commit(vec![Op::DestroyRetiredKeys {
                tenant,
                subjects: ids,
            }])
            .await?;
        }
        Err(VaultError::conflict(
            "retired subject keys remain after repeated sweeps; the job resumes on its next run",
        ))
    }

    fn advance_op(
        &self,
        job: &KeyJobRow,
        owner: &str,
        cursor: Option<Uuid>,
        subjects: u64,
        records: u64,
    ) -> Op {
        let now = self.now();
        Op::AdvanceKeyJob {
            id: job.id,
            owner: owner.to_owned(),
            cursor,
            subjects,
            records,
            at: now,
            lease_until: now + LEASE,
        }
    }

    async fn advance(
        &self,
        job: &KeyJobRow,
        owner: &str,
        cursor: Option<Uuid>,
        subjects: u64,
        records: u64,
    ) -> Result<()> {
        let op = self.advance_op(job, owner, cursor, subjects, records);
        self.commit(vec![op]).await?;
        Ok(())
    }

    async fn finish(&self, job: &mut KeyJobRow, status: &str, error: Option<&str>) -> Result<()> {
        let now = self.now();
        let mut event = system_event(now, Action::KeyRotate, Some(job.tenant));
        event.actor = Actor::system("key-rotation");
        event.request_id = format!("key-job-{}", job.id);
        event.detail = Some(serde_json::json!({
            "scope": "records", "job": job.id, "phase": status,
            "subjects": job.subjects_done, "records": job.records_done,
        }));
        self.commit(vec![
            Op::FinishKeyJob {
                id: job.id,
                status: status.to_owned(),
                at: now,
                error: error.map(str::to_owned),
            },
            Op::Audit(Box::new(event)),
        ])
        .await?;
        job.status = status.to_owned();
        job.finished_at = Some(now);
        Ok(())
    }
}

/// A subject's key in the making, and what opens its records until they are re-sealed.
struct NewKey {
    version: u32,
    cipher: Arc<Cipher>,
    old: SubjectCiphers,
}

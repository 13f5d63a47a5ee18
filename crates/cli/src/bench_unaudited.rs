//! A bench-only store that drops audit events from every commit, to measure what the audit
//! write costs the record API: the same vault calls run against it and against the real
//! store. Ward itself has no switch that turns auditing off; this wrapper lives in the bench
//! and nowhere else.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;
use ward_store::{
    ApiKeyRow, AuditHead, AuditQuery, AuditRow, CheckpointRow, Committed, ExpiredRecord,
    HeldRecordRow, HoldRow, KeyJobRow, LedgerRow, Op, RecordFilter, RecordRow, RequestRow, Result,
    RetiredKeyRow, Store, SubjectRow, SubjectView, TenantRow,
};

/// Everything but audit events reaches the wrapped store; a commit of audit events alone
/// (a read's) does not reach it at all.
pub(crate) struct Unaudited(pub(crate) Arc<dyn Store>);

#[async_trait]
impl Store for Unaudited {
    async fn commit(&self, mut ops: Vec<Op>) -> Result<Committed> {
        ops.retain(|op| !matches!(op, Op::Audit(_)));
        if ops.is_empty() {
            return Ok(Committed::default());
        }
        self.0.commit(ops).await
    }

    async fn tenant(&self, id: Uuid) -> Result<Option<TenantRow>> {
        self.0.tenant(id).await
    }

    async fn tenants(&self) -> Result<Vec<TenantRow>> {
        self.0.tenants().await
    }

    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRow>> {
        self.0.api_key_by_hash(hash).await
    }

    async fn api_keys(&self, tenant: Option<Uuid>) -> Result<Vec<ApiKeyRow>> {
        self.0.api_keys(tenant).await
    }

    async fn subject_view(
        &self,
        tenant: Uuid,
        subject: Uuid,
        records: RecordFilter<'_>,
    ) -> Result<Option<SubjectView>> {
        self.0.subject_view(tenant, subject, records).await
    }

    async fn subject_by_ref(&self, tenant: Uuid, ref_hash: &[u8]) -> Result<Option<SubjectRow>> {
        self.0.subject_by_ref(tenant, ref_hash).await
    }

    async fn lookup(
        &self,
        tenant: Uuid,
        collection: &str,
        field: &str,
        hash: &[u8],
    ) -> Result<Vec<(SubjectRow, RecordRow)>> {
        self.0.lookup(tenant, collection, field, hash).await
    }

    async fn audit_head(&self) -> Result<AuditHead> {
        self.0.audit_head().await
    }

    async fn audit_rows(&self, from: u64, limit: u32) -> Result<Vec<AuditRow>> {
        self.0.audit_rows(from, limit).await
    }

    async fn audit_query(&self, query: &AuditQuery) -> Result<Vec<AuditRow>> {
        self.0.audit_query(query).await
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>> {
        self.0.checkpoints().await
    }

    async fn audit_leaves(&self, size: u64) -> Result<Vec<ward_audit::Hash>> {
        self.0.audit_leaves(size).await
    }

    async fn audit_index_at(&self, at: time::OffsetDateTime) -> Result<Option<u64>> {
        self.0.audit_index_at(at).await
    }

    async fn expired_records(
        &self,
        now: time::OffsetDateTime,
        after: Option<(time::OffsetDateTime, Uuid)>,
        tenant: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ExpiredRecord>> {
        self.0.expired_records(now, after, tenant, limit).await
    }

    async fn expired_held_records(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<HeldRecordRow>> {
        self.0.expired_held_records(now, limit).await
    }

    async fn empty_holds(&self) -> Result<Vec<HoldRow>> {
        self.0.empty_holds().await
    }

    async fn held_records(
        &self,
        tenant: Uuid,
        subject: Uuid,
    ) -> Result<Vec<(HoldRow, HeldRecordRow)>> {
        self.0.held_records(tenant, subject).await
    }

    async fn ledger_entry(&self, tenant: Uuid, subject: Uuid) -> Result<Option<LedgerRow>> {
        self.0.ledger_entry(tenant, subject).await
    }

    async fn subject_ids(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Uuid>> {
        self.0.subject_ids(tenant, after, limit).await
    }

    async fn keyed_subjects(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<SubjectRow>> {
        self.0.keyed_subjects(tenant, after, limit).await
    }

    async fn live_holds(&self, tenant: Uuid) -> Result<Vec<HoldRow>> {
        self.0.live_holds(tenant).await
    }

    async fn retired_keys(&self, tenant: Uuid, subject: Uuid) -> Result<Vec<RetiredKeyRow>> {
        self.0.retired_keys(tenant, subject).await
    }

    async fn subjects_with_retired_keys(&self, tenant: Uuid, limit: u32) -> Result<Vec<Uuid>> {
        self.0.subjects_with_retired_keys(tenant, limit).await
    }

    async fn retired_key_count(&self, tenant: Option<Uuid>) -> Result<u64> {
        self.0.retired_key_count(tenant).await
    }

    async fn records_of_subjects(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        through: Uuid,
    ) -> Result<Vec<RecordRow>> {
        self.0.records_of_subjects(tenant, after, through).await
    }

    async fn record_count(&self, tenant: Uuid) -> Result<u64> {
        self.0.record_count(tenant).await
    }

    async fn key_jobs(&self, status: Option<&str>) -> Result<Vec<KeyJobRow>> {
        self.0.key_jobs(status).await
    }

    async fn request(&self, tenant: Uuid, id: Uuid) -> Result<Option<RequestRow>> {
        self.0.request(tenant, id).await
    }

    async fn requests(&self, tenant: Uuid, status: Option<&str>) -> Result<Vec<RequestRow>> {
        self.0.requests(tenant, status).await
    }
}

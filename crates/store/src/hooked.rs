//! A store wrapped so that a test or a bench can see, rewrite or interleave with each commit
//! before it reaches the real store; every read passes through unchanged.
//!
//! Ward never wraps its own store. The bench drops audit events here to measure what the
//! audit write costs the record API; tests make a record vanish between the read and the
//! commit that relies on it.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::{
    AlertQuery, AlertRow, ApiKeyRow, AuditHead, AuditPage, AuditQuery, AuditRow, CheckpointRow,
    Committed, DeliveryQuery, DeliveryRow, ExpiredRecord, HeldRecordRow, HoldRow, InvitationRow,
    KeyJobRow, LedgerRow, MembershipRow, Op, Reconciliation, RecordFilter, RecordRow, RequestRow,
    Result, RetiredKeyRow, SessionRow, SnapshotStream, SnapshotSummary, Store, SubjectPostings,
    SubjectRow, SubjectView, SupportGrantRow, TenantRow, UserRow, WebhookRow,
};

/// What runs before each commit of a [`Hooked`] store.
#[async_trait]
pub trait CommitHook: Send + Sync + 'static {
    /// Gets the ops of a commit and the wrapped store (to act on it first), and returns the
    /// ops to commit. With none left, nothing reaches the store and the commit reports an
    /// empty [`Committed`].
    async fn before_commit(&self, store: &dyn Store, ops: Vec<Op>) -> Result<Vec<Op>>;
}

/// A store whose commits pass through a [`CommitHook`] first.
pub struct Hooked<H> {
    store: Arc<dyn Store>,
    hook: H,
}

impl<H: CommitHook> Hooked<H> {
    /// Wraps `store`.
    pub fn new(store: Arc<dyn Store>, hook: H) -> Self {
        Self { store, hook }
    }
}

#[async_trait]
impl<H: CommitHook> Store for Hooked<H> {
    async fn commit(&self, ops: Vec<Op>) -> Result<Committed> {
        let ops = self.hook.before_commit(&*self.store, ops).await?;
        if ops.is_empty() {
            return Ok(Committed::default());
        }
        self.store.commit(ops).await
    }

    async fn tenant(&self, id: Uuid) -> Result<Option<TenantRow>> {
        self.store.tenant(id).await
    }

    async fn tenants(&self) -> Result<Vec<TenantRow>> {
        self.store.tenants().await
    }

    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRow>> {
        self.store.api_key_by_hash(hash).await
    }

    async fn api_keys(&self, tenant: Option<Uuid>) -> Result<Vec<ApiKeyRow>> {
        self.store.api_keys(tenant).await
    }

    async fn invitation_by_hash(&self, hash: &[u8; 32]) -> Result<Option<InvitationRow>> {
        self.store.invitation_by_hash(hash).await
    }

    async fn subject_view(
        &self,
        tenant: Uuid,
        subject: Uuid,
        records: RecordFilter<'_>,
    ) -> Result<Option<SubjectView>> {
        self.store.subject_view(tenant, subject, records).await
    }

    async fn subject_by_ref(&self, tenant: Uuid, ref_hash: &[u8]) -> Result<Option<SubjectRow>> {
        self.store.subject_by_ref(tenant, ref_hash).await
    }

    async fn lookup(
        &self,
        tenant: Uuid,
        collection: &str,
        field: &str,
        hash: &[u8],
    ) -> Result<Vec<(SubjectRow, RecordRow)>> {
        self.store.lookup(tenant, collection, field, hash).await
    }

    async fn audit_head(&self) -> Result<AuditHead> {
        self.store.audit_head().await
    }

    async fn audit_rows(&self, from: u64, limit: u32) -> Result<Vec<AuditRow>> {
        self.store.audit_rows(from, limit).await
    }

    async fn audit_page(&self, from: u64, limit: u32) -> Result<AuditPage> {
        self.store.audit_page(from, limit).await
    }

    async fn audit_query(&self, query: &AuditQuery) -> Result<Vec<AuditRow>> {
        self.store.audit_query(query).await
    }

    async fn last_system_event(&self, action: &str) -> Result<Option<AuditRow>> {
        self.store.last_system_event(action).await
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>> {
        self.store.checkpoints().await
    }

    async fn audit_leaves(&self, range: std::ops::Range<u64>) -> Result<Vec<ward_audit::Hash>> {
        self.store.audit_leaves(range).await
    }

    async fn audit_tree_nodes(
        &self,
        spans: Vec<(u8, std::ops::Range<u64>)>,
    ) -> Result<Vec<ward_audit::TreeNode>> {
        self.store.audit_tree_nodes(spans).await
    }

    async fn audit_index_at(&self, at: time::OffsetDateTime) -> Result<Option<u64>> {
        self.store.audit_index_at(at).await
    }

    async fn audit_subject_postings(&self, segment: u64) -> Result<Option<Vec<SubjectPostings>>> {
        self.store.audit_subject_postings(segment).await
    }

    async fn audit_subject_numbers(&self, numbers: Vec<u64>) -> Result<Vec<(u64, Uuid, Uuid)>> {
        self.store.audit_subject_numbers(numbers).await
    }

    async fn expired_records(
        &self,
        now: time::OffsetDateTime,
        after: Option<(time::OffsetDateTime, Uuid)>,
        tenant: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ExpiredRecord>> {
        self.store.expired_records(now, after, tenant, limit).await
    }

    async fn expired_held_records(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<HeldRecordRow>> {
        self.store.expired_held_records(now, limit).await
    }

    async fn empty_holds(&self) -> Result<Vec<HoldRow>> {
        self.store.empty_holds().await
    }

    async fn held_records(
        &self,
        tenant: Uuid,
        subject: Uuid,
    ) -> Result<Vec<(HoldRow, HeldRecordRow)>> {
        self.store.held_records(tenant, subject).await
    }

    async fn ledger_entry(&self, tenant: Uuid, subject: Uuid) -> Result<Option<LedgerRow>> {
        self.store.ledger_entry(tenant, subject).await
    }

    async fn subject_ids(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Uuid>> {
        self.store.subject_ids(tenant, after, limit).await
    }

    async fn keyed_subjects(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<SubjectRow>> {
        self.store.keyed_subjects(tenant, after, limit).await
    }

    async fn live_holds(&self, tenant: Uuid) -> Result<Vec<HoldRow>> {
        self.store.live_holds(tenant).await
    }

    async fn retired_keys(&self, tenant: Uuid, subject: Uuid) -> Result<Vec<RetiredKeyRow>> {
        self.store.retired_keys(tenant, subject).await
    }

    async fn subjects_with_retired_keys(&self, tenant: Uuid, limit: u32) -> Result<Vec<Uuid>> {
        self.store.subjects_with_retired_keys(tenant, limit).await
    }

    async fn retired_key_count(&self, tenant: Option<Uuid>) -> Result<u64> {
        self.store.retired_key_count(tenant).await
    }

    async fn records_of_subjects(
        &self,
        tenant: Uuid,
        after: Option<Uuid>,
        through: Uuid,
    ) -> Result<Vec<RecordRow>> {
        self.store.records_of_subjects(tenant, after, through).await
    }

    async fn record_count(&self, tenant: Uuid) -> Result<u64> {
        self.store.record_count(tenant).await
    }

    async fn stats(&self) -> Result<crate::StoreStats> {
        self.store.stats().await
    }

    async fn key_jobs(&self, status: Option<&str>) -> Result<Vec<KeyJobRow>> {
        self.store.key_jobs(status).await
    }

    async fn request(&self, tenant: Uuid, id: Uuid) -> Result<Option<RequestRow>> {
        self.store.request(tenant, id).await
    }

    async fn requests(&self, tenant: Uuid, status: Option<&str>) -> Result<Vec<RequestRow>> {
        self.store.requests(tenant, status).await
    }

    async fn requests_in_clear(&self, sealed_prefix: &str) -> Result<Vec<RequestRow>> {
        self.store.requests_in_clear(sealed_prefix).await
    }

    async fn export_sections(
        &self,
        stream: SnapshotStream,
        reuse: &crate::ReusePlan,
        out: tokio::sync::mpsc::Sender<crate::DumpPiece>,
    ) -> Result<SnapshotSummary> {
        self.store.export_sections(stream, reuse, out).await
    }

    async fn import_snapshot(
        &self,
        stream: SnapshotStream,
        input: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    ) -> Result<SnapshotSummary> {
        self.store.import_snapshot(stream, input).await
    }

    async fn reconcile_restore(&self) -> Result<Reconciliation> {
        self.store.reconcile_restore().await
    }

    async fn user_by_email_hash(&self, hash: &[u8; 32]) -> Result<Option<UserRow>> {
        self.store.user_by_email_hash(hash).await
    }

    async fn user(&self, id: Uuid) -> Result<Option<UserRow>> {
        self.store.user(id).await
    }

    async fn users(&self) -> Result<Vec<UserRow>> {
        self.store.users().await
    }

    async fn unused_recovery_codes(&self, user: Uuid) -> Result<u32> {
        self.store.unused_recovery_codes(user).await
    }

    async fn session_by_hash(&self, hash: &[u8; 32]) -> Result<Option<SessionRow>> {
        self.store.session_by_hash(hash).await
    }

    async fn sessions_of(&self, user: Uuid) -> Result<Vec<SessionRow>> {
        self.store.sessions_of(user).await
    }

    async fn support_grant(&self, tenant: Uuid, id: Uuid) -> Result<Option<SupportGrantRow>> {
        self.store.support_grant(tenant, id).await
    }

    async fn memberships_of(&self, user: Uuid) -> Result<Vec<MembershipRow>> {
        self.store.memberships_of(user).await
    }

    async fn memberships(&self, tenant: Uuid) -> Result<Vec<MembershipRow>> {
        self.store.memberships(tenant).await
    }

    async fn support_grants(&self, tenant: Uuid) -> Result<Vec<SupportGrantRow>> {
        self.store.support_grants(tenant).await
    }

    async fn open_grants_of(&self, user: Uuid) -> Result<Vec<SupportGrantRow>> {
        self.store.open_grants_of(user).await
    }

    async fn alert(&self, id: Uuid) -> Result<Option<AlertRow>> {
        self.store.alert(id).await
    }

    async fn live_alert(&self, rule: &str, scope: &str) -> Result<Option<AlertRow>> {
        self.store.live_alert(rule, scope).await
    }

    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRow>> {
        self.store.alerts(query).await
    }

    async fn open_alert_counts(&self) -> Result<Vec<(String, String, u64)>> {
        self.store.open_alert_counts().await
    }

    async fn webhook(&self, id: Uuid) -> Result<Option<WebhookRow>> {
        self.store.webhook(id).await
    }

    async fn webhooks(&self, tenant: Option<Uuid>) -> Result<Vec<WebhookRow>> {
        self.store.webhooks(tenant).await
    }

    async fn webhook_delivery(&self, id: Uuid) -> Result<Option<DeliveryRow>> {
        self.store.webhook_delivery(id).await
    }

    async fn webhook_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryRow>> {
        self.store.webhook_deliveries(query).await
    }

    async fn due_webhook_deliveries(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>> {
        self.store.due_webhook_deliveries(now, limit).await
    }

    async fn webhook_outbox_pending(&self) -> Result<u64> {
        self.store.webhook_outbox_pending().await
    }

    async fn incident(&self, id: Uuid) -> Result<Option<crate::IncidentView>> {
        self.store.incident(id).await
    }

    async fn incidents(
        &self,
        scope: crate::IncidentScope,
        limit: u32,
    ) -> Result<Vec<crate::IncidentRow>> {
        self.store.incidents(scope, limit).await
    }
}

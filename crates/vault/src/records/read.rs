//! Reading records: one record or a subject's list, disclosed under the caller's purpose.
//! Apart because reads only open and disclose, and retry when they race a record rotation.

use uuid::Uuid;
use ward_audit::Action;
use ward_store::{Op, RecordFilter};

use crate::access::{Access, Operation};
use crate::disclosure::{RecordOut, disclose};
use crate::sealing::SubjectCiphers;
use crate::{RequestContext, Result, Vault, VaultError, parse_list};

use super::ciphers::retry_stale;
use super::known_purpose;

impl Vault {
    /// Reads one record for a stated purpose.
    pub async fn read_record(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        record: Uuid,
        purpose: &str,
    ) -> Result<RecordOut> {
        retry_stale(|last| self.read_record_once(ctx, tenant, subject, record, purpose, last)).await
    }

    async fn read_record_once(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        record: Uuid,
        purpose: &str,
        last_attempt: bool,
    ) -> Result<RecordOut> {
        let mut event = self.event(ctx, Action::RecordRead, Some(tenant));
        event.subject = Some(subject);
        event.record = Some(record);
        event.purpose = known_purpose(purpose);
        let purpose = self.purpose(purpose)?;
        self.isolate(ctx, tenant, &event).await?;
        let view = self
            .subject_view(tenant, subject, RecordFilter::One(record))
            .await?;
        let Some(row) = view.records.into_iter().next() else {
            return Err(VaultError::NotFound("record"));
        };
        event.collection = Some(row.collection.clone());
        let coll = self.collection(&row.collection)?;
        let restrictions = parse_list(&view.subject.restrictions);
        let grant = self
            .check_disclosure(
                &Access {
                    principal: &ctx.principal,
                    tenant,
                    tenant_status: view.tenant_status,
                    operation: Operation::ReadData,
                    collection: Some(coll),
                    purpose: Some(&purpose),
                    restrictions: &restrictions,
                    expires_at: row.expires_at,
                    now: self.now(),
                    tenant_requires_totp: self.totp_fact(ctx, tenant).await?,
                },
                &event,
            )
            .await?;
        let cipher = match self.inner.keys.cached_subject(&view.subject) {
            Some(c) if row.key_version == view.subject.record_key_version => {
                SubjectCiphers::current(view.subject.record_key_version, c)
            }
            _ => {
                let trow = self.tenant_row(tenant).await?;
                self.record_ciphers(&trow, &view.subject, std::slice::from_ref(&row))
                    .await?
            }
        };
        let out = match disclose(&grant, &cipher, &row) {
            Ok(out) => out,
            Err(e @ VaultError::Conflict(_)) if !last_attempt => return Err(e),
            Err(e) => {
                // Detected tampering is itself worth a line in the tenant's log.
                let mut failed = event;
                failed.outcome = ward_audit::Outcome::Denied;
                failed.reason =
                    Some("integrity check failed: stored data was altered or moved".into());
                self.commit(vec![Op::Audit(Box::new(failed))]).await?;
                return Err(e);
            }
        };
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(out)
    }

    /// Lists a subject's records readable for a purpose; records of collections that do not
    /// allow the purpose are left out (and the omission is not an error), expired ones too.
    pub async fn list_records(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        purpose: &str,
        collection: Option<&str>,
    ) -> Result<Vec<RecordOut>> {
        retry_stale(|_| self.list_records_once(ctx, tenant, subject, purpose, collection)).await
    }

    async fn list_records_once(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        purpose: &str,
        collection: Option<&str>,
    ) -> Result<Vec<RecordOut>> {
        let mut event = self.event(ctx, Action::RecordList, Some(tenant));
        event.subject = Some(subject);
        event.purpose = known_purpose(purpose);
        event.collection = collection.and_then(|c| self.known_collection(c));
        let purpose = self.purpose(purpose)?;
        if let Some(c) = collection {
            self.collection(c)?;
        }
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        let view = self
            .subject_view(tenant, subject, RecordFilter::All(collection))
            .await?;
        let restrictions = parse_list(&view.subject.restrictions);
        let now = self.now();
        let base = Access {
            principal: &ctx.principal,
            tenant,
            tenant_status: view.tenant_status,
            operation: Operation::ReadData,
            collection: collection.and_then(|c| self.inner.policy.collection(c)),
            purpose: Some(&purpose),
            restrictions: &restrictions,
            expires_at: None,
            now,
            tenant_requires_totp: self.totp_fact(ctx, tenant).await?,
        };
        // The request as a whole must be allowed (role, tenant, restriction, and the named
        // collection's purposes); then each record is filtered on its own collection.
        self.check(&base, &event).await?;
        let cipher = self
            .record_ciphers(&trow, &view.subject, &view.records)
            .await?;
        let mut out = Vec::new();
        let mut ops = Vec::new();
        for row in &view.records {
            let Some(coll) = self.inner.policy.collection(&row.collection) else {
                continue;
            };
            let access = Access {
                collection: Some(coll),
                expires_at: row.expires_at,
                ..base.clone()
            };
            let Ok(grant) = crate::access::grant_disclosure(&access) else {
                continue;
            };
            out.push(disclose(&grant, &cipher, row)?);
            let mut e = event.clone();
            e.record = Some(row.id);
            e.collection = Some(row.collection.clone());
            ops.push(Op::Audit(Box::new(e)));
        }
        if ops.is_empty() {
            // Even an empty answer is an access worth recording.
            ops.push(Op::Audit(Box::new(event)));
        }
        self.commit(ops).await?;
        Ok(out)
    }
}

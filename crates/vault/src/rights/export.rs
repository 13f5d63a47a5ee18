//! Subject and tenant exports (GDPR Art. 15 and 20): the documents, their schema and the
//! streamed access log. Apart because they read and disclose where the other rights write.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;
use ward_audit::Action;
use ward_store::{Op, RecordFilter};

use crate::access::Operation;
use crate::disclosure::disclose;
use crate::{RequestContext, Result, Vault, VaultError, parse_list};

use super::rfc3339;

impl Vault {
    /// Everything held about a subject, decrypted, with its own schema and the audit trail of
    /// who accessed it (GDPR Art. 15 and 20). Free and immediate.
    pub async fn export_subject(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
    ) -> Result<Value> {
        self.export_subject_as(ctx, tenant, subject, Operation::ManageRights)
            .await
    }

    /// `operation`: `ManageRights` for a subject's own export, `ExportTenant` for each
    /// subject of a tenant export (which a cancelled tenant may still run until it is
    /// destroyed).
    async fn export_subject_as(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        operation: Operation,
    ) -> Result<Value> {
        let (mut doc, before) = self.export_head(ctx, tenant, subject, operation).await?;
        let trail: Vec<Value> = self
            .subject_audit(tenant, subject, before)
            .await?
            .into_iter()
            .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
            .collect();
        if let Value::Object(o) = &mut doc {
            o.insert("access_log".into(), Value::Array(trail));
        }
        Ok(doc)
    }

    /// The same document as [`Self::export_subject`], written in pieces: the document without
    /// its access log, then the log a page of events at a time, so a subject whose data was
    /// read a million times costs the server one page of events. `emit` answers false to stop
    /// (the client went away).
    pub async fn export_subject_streamed<F, Fut>(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        mut emit: F,
    ) -> Result<()>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let (doc, before) = self
            .export_head(ctx, tenant, subject, Operation::ManageRights)
            .await?;
        let mut head = serde_json::to_string(&doc).map_err(|_| VaultError::Integrity)?;
        // The head is a non-empty object: reopen it for the log.
        head.pop();
        head.push_str(",\"access_log\":[");
        if !emit(head).await {
            return Ok(());
        }
        let mut after = None;
        let mut first = true;
        loop {
            let page = self
                .subject_audit_page(tenant, subject, after, before)
                .await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(*last);
            let mut chunk = String::new();
            for (_, e) in &page {
                if !first {
                    chunk.push(',');
                }
                first = false;
                chunk.push_str(&serde_json::to_string(e).map_err(|_| VaultError::Integrity)?);
            }
            if !emit(chunk).await {
                return Ok(());
            }
        }
        emit("]}".into()).await;
        Ok(())
    }

    /// Decides and audits a subject export and builds its document without the access log;
    /// also returns the export event's own log index, which bounds the log it exports (the
    /// log as it was when the export was decided).
    async fn export_head(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        operation: Operation,
    ) -> Result<(Value, u64)> {
        let mut event = self.event(ctx, Action::SubjectExport, Some(tenant));
        event.subject = Some(subject);
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        let access = self.tenant_access(ctx, &trow, operation);
        let grant = self.check_disclosure(&access, &event).await?;
        let view = self
            .subject_view(tenant, subject, RecordFilter::All(None))
            .await?;
        let cipher = self
            .record_ciphers(&trow, &view.subject, &view.records)
            .await?;
        let now = self.now();
        let mut records = Vec::new();
        let mut collections = BTreeMap::new();
        for row in view
            .records
            .iter()
            .filter(|r| r.expires_at.is_none_or(|e| e > now))
        {
            let out = disclose(&grant, &cipher, row)?;
            if let Some(c) = self.inner.policy.collection(&row.collection) {
                collections.insert(row.collection.clone(), self.collection_schema(c));
            }
            records.push(json!({
                "id": out.id,
                "collection": out.collection,
                "fields": out.fields,
                "created_at": rfc3339(out.created_at),
                "updated_at": rfc3339(out.updated_at),
                "expires_at": out.expires_at.map(rfc3339),
            }));
        }
        event.detail = Some(json!({ "records": records.len() }));
        let committed = self.commit(vec![Op::Audit(Box::new(event))]).await?;
        let before = committed
            .audit_indices
            .first()
            .copied()
            .ok_or(VaultError::Integrity)?;
        let org = &self.inner.policy.organization;
        let doc = json!({
            "format": "ward.subject-export.v1",
            "generated_at": rfc3339(now),
            "controller": { "name": org.name, "contact": org.contact },
            "tenant": { "id": trow.id, "name": trow.name },
            "subject": {
                "id": subject,
                "created_at": rfc3339(view.subject.created_at),
                "restrictions": parse_list(&view.subject.restrictions),
                "hold_until": view.subject.hold_until.map(rfc3339),
            },
            "schema": { "collections": collections },
            "records": records,
        });
        Ok((doc, before))
    }

    fn collection_schema(&self, c: &ward_policy::Collection) -> Value {
        let fields: BTreeMap<&str, Value> = c
            .fields
            .iter()
            .map(|(name, f)| {
                (name.as_str(), json!({ "type": f.ty.as_str(), "category": f.category.as_str(), "category_label": f.category.label(), "description": f.description }))
            })
            .collect();
        let recipients: Vec<Value> = c
            .recipients
            .iter()
            .filter_map(|r| self.inner.policy.subprocessor(r))
            .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
            .collect();
        json!({
            "description": c.description,
            "purposes": c.purposes.iter().map(|p| json!({ "key": p.as_str(), "label": p.label() })).collect::<Vec<_>>(),
            "legal_basis": c.legal_basis,
            "retention": c.retention.as_ref().map(|r| json!({ "retain_for": r.retain_for.to_string(), "on_expiry": format!("{:?}", r.on_expiry).to_lowercase() })),
            "legal_hold": c.legal_hold.as_ref().map(|h| json!({ "retain_for": h.retain_for.to_string(), "reason": h.reason })),
            "fields": fields,
            "recipients": recipients,
        })
    }

    /// Exports the whole tenant as JSON Lines: a manifest line, then one subject export per
    /// line. `each` receives every line as it is produced (and the count so far) and answers
    /// whether to go on, so a caller streams with bounded memory: subjects are read a page of
    /// `EXPORT_PAGE` ids at a time and each line is handed over before the next subject is
    /// read. Nothing is produced before the access decision allowed the export.
    ///
    /// Audit: as for a single subject export, each subject's export is its own audited access
    /// (committed before its line is handed over), and the tenant export event closes the run
    /// with the number of subjects; a consumer that stops early (`each` answers false, e.g. the
    /// HTTP client went away) still gets that event, with `complete: false`.
    pub async fn export_tenant<F, Fut>(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        mut each: F,
    ) -> Result<u64>
    where
        F: FnMut(Value, u64) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let event = self.event(ctx, Action::TenantExport, Some(tenant));
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        // Leaving customers take their data with them during the grace period
        // (`Operation::open_on`).
        let access = self.tenant_access(ctx, &trow, Operation::ExportTenant);
        self.check(&access, &event).await?;
        let schema: BTreeMap<&str, Value> = self
            .inner
            .policy
            .collections
            .iter()
            .map(|(n, c)| (n.as_str(), self.collection_schema(c)))
            .collect();
        let mut complete = each(
            json!({ "format": "ward.tenant-export.v1", "tenant": { "id": trow.id, "name": trow.name, "created_at": rfc3339(trow.created_at) }, "generated_at": rfc3339(self.now()), "schema": { "collections": schema } }),
            0,
        )
        .await;
        let mut after = None;
        let mut n = 0;
        'pages: while complete {
            let ids = self
                .inner
                .store
                .subject_ids(tenant, after, EXPORT_PAGE)
                .await?;
            let Some(last) = ids.last() else { break };
            after = Some(*last);
            for id in ids {
                let doc = self
                    .export_subject_as(ctx, tenant, id, Operation::ExportTenant)
                    .await?;
                n += 1;
                if !each(doc, n).await {
                    complete = false;
                    break 'pages;
                }
            }
        }
        let mut event = event;
        event.detail = Some(if complete {
            json!({ "subjects": n })
        } else {
            json!({ "subjects": n, "complete": false })
        });
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(n)
    }
}

/// Subjects read per page by the tenant export: the ids of one page are all it holds at once.
const EXPORT_PAGE: u32 = 200;

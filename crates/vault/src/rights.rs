//! Data-subject rights (access, portability, rectification, erasure, restriction), tracked
//! requests, litigation holds, per-tenant retention overrides and the tenant lifecycle.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use ward_audit::Action;
use ward_crypto::{Cipher, SecretKey, aad};
use ward_policy::{Period, Purpose};
use ward_store::{HeldRecordRow, HoldRow, LedgerRow, Op, RecordFilter, RequestRow, TenantRow};

use crate::access::{ALL_NON_ESSENTIAL, Operation};
use crate::disclosure::disclose;
use crate::records::{record_aad, tenant_retention_override};
use crate::request_state::{RequestKind, RequestStatus};
use crate::sealed_text;
use crate::{RequestContext, Result, Vault, VaultError, parse_list};
use ward_store::TenantStatus;

/// Days GDPR Art. 12(3) allows for answering a request ("one month").
const REQUEST_DUE_DAYS: i64 = 30;

/// What an erasure did.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErasureOut {
    /// The erased subject's pseudonymous id.
    pub subject: Uuid,
    /// When the subject key was destroyed.
    #[serde(with = "time::serde::rfc3339")]
    pub erased_at: OffsetDateTime,
    /// Records deleted with the key.
    pub records_erased: u64,
    /// Collections kept under a legal hold: which, why, until when.
    pub kept: Vec<KeptOut>,
    /// True when the subject had already been erased (erasure is idempotent).
    pub already_erased: bool,
}

/// Records kept under a legal hold.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeptOut {
    /// Collection.
    pub collection: String,
    /// How many records.
    pub records: u64,
    /// The hold's reason from the policy.
    pub reason: String,
    /// When the last of them is deleted.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

/// A restriction (objection) request body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestrictionIn {
    /// Purposes to stop processing for (fideslang data-use keys).
    #[serde(default)]
    pub purposes: Vec<String>,
    /// Stop every purpose that is not essential (service delivery, legal obligations).
    #[serde(default)]
    pub all_non_essential: bool,
}

/// A data-subject request to open.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// access, portability, erasure, rectification or restriction.
    pub kind: String,
    /// The subject concerned.
    pub subject: Uuid,
    /// Who verified the requester's identity, and how (e.g. "support:jane via account login").
    pub verified_by: String,
    /// For restriction requests: the purposes.
    #[serde(default)]
    pub purposes: Vec<String>,
    /// For restriction requests: every non-essential purpose.
    #[serde(default)]
    pub all_non_essential: bool,
}

/// How to complete a request.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// Rectification: the record to correct.
    pub record: Option<Uuid>,
    /// Rectification: the corrected fields.
    #[schema(value_type = Object)]
    pub fields: Option<serde_json::Map<String, Value>>,
}

/// A tracked request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestOut {
    /// Request id.
    pub id: Uuid,
    /// Kind.
    pub kind: String,
    /// Subject.
    pub subject: Uuid,
    /// open, completed or rejected.
    pub status: String,
    /// Who verified identity.
    pub verified_by: String,
    /// Opened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Legal deadline (one month).
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// Closed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    /// Open and past its deadline.
    pub overdue: bool,
    /// Kind-specific detail and outcome.
    #[schema(value_type = Object)]
    pub detail: Value,
    /// The result of completing it (the export document for access/portability).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub result: Option<Value>,
}

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

    /// Crypto-shreds a subject (NIST SP 800-88 cryptographic erase). Records of collections
    /// under a legal hold are re-sealed under a hold key first and reported as kept.
    pub async fn erase_subject(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
    ) -> Result<ErasureOut> {
        // A tenant key rotation between wrapping a hold key and committing it is a conflict
        // the store reports; erase again under the new key.
        crate::retry::retrying(
            crate::retry::lost_to_rotation,
            || self.forget_tenant_row(tenant),
            || self.erase_subject_once(ctx, tenant, subject),
        )
        .await
    }

    async fn erase_subject_once(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
    ) -> Result<ErasureOut> {
        let (mut event, trow) = self
            .rights_gate(ctx, tenant, subject, Action::SubjectErase)
            .await?;
        let Some(view) = self
            .inner
            .store
            .subject_view(tenant, subject, RecordFilter::All(None))
            .await?
        else {
            return Err(VaultError::NotFound("subject"));
        };
        if view.subject.wrapped_key.is_none() {
            // Idempotent: report the original erasure.
            let entry = self.inner.store.ledger_entry(tenant, subject).await?;
            let mut out: ErasureOut = entry
                .and_then(|l| serde_json::from_str(&l.detail).ok())
                .unwrap_or(ErasureOut {
                    subject,
                    erased_at: self.now(),
                    records_erased: 0,
                    kept: vec![],
                    already_erased: true,
                });
            out.already_erased = true;
            self.commit(vec![Op::Audit(Box::new(event))]).await?;
            return Ok(out);
        }
        let now = self.now();
        if let Some(until) = view.subject.hold_until.filter(|u| *u > now) {
            return Err(self
                .deny(
                    event,
                    crate::Denial::Forbidden {
                        code: "subject_on_hold",
                        reason: format!("the subject is under a litigation hold until {}; erasure is deferred (GDPR Art. 17(3)(e))", rfc3339(until)),
                    },
                )
                .await);
        }
        let cipher = self
            .record_ciphers(&trow, &view.subject, &view.records)
            .await?;
        let mut ops = Vec::new();
        let mut kept: BTreeMap<String, KeptOut> = BTreeMap::new();
        let mut hold: Option<(Uuid, Cipher)> = None;
        let mut erased = 0u64;
        for row in &view.records {
            let hold_until = self
                .inner
                .policy
                .collection(&row.collection)
                .and_then(|c| {
                    c.legal_hold.as_ref().map(|h| {
                        (
                            row.created_at + h.retain_for.as_duration(),
                            h.reason.clone(),
                        )
                    })
                })
                .filter(|(until, _)| *until > now);
            let Some((until, reason)) = hold_until else {
                erased += 1;
                continue;
            };
            let (hold_id, hold_cipher) = match &hold {
                Some(h) => (h.0, &h.1),
                None => {
                    let id = Uuid::now_v7();
                    let key = SecretKey::generate()?;
                    let tk = self.inner.keys.tenant(&trow)?;
                    let wrapped = tk.cipher.wrap(
                        &key,
                        &aad::hold_key(tenant.as_bytes(), id.as_bytes(), trow.key_version),
                    )?;
                    ops.push(Op::InsertHold(HoldRow {
                        tenant,
                        id,
                        subject,
                        wrapped_key: Some(wrapped),
                        key_version: trow.key_version,
                        created_at: now,
                    }));
                    let h = hold.insert((id, Cipher::new(&key)?));
                    (h.0, &h.1)
                }
            };
            let fields = cipher.open(row)?;
            let plaintext = zeroize::Zeroizing::new(
                serde_json::to_vec(&fields).map_err(|_| VaultError::Integrity)?,
            );
            let sealed = hold_cipher.seal(
                &plaintext,
                &record_aad(tenant, hold_id, row.id, &row.collection, 1),
            )?;
            ops.push(Op::InsertHeldRecord(HeldRecordRow {
                tenant,
                hold: hold_id,
                id: row.id,
                collection: row.collection.clone(),
                ciphertext: sealed,
                key_version: 1,
                created_at: row.created_at,
                hold_until: until,
                reason: reason.clone(),
            }));
            let k = kept.entry(row.collection.clone()).or_insert(KeptOut {
                collection: row.collection.clone(),
                records: 0,
                reason,
                until,
            });
            k.records += 1;
            k.until = k.until.max(until);
        }
        let out = ErasureOut {
            subject,
            erased_at: now,
            records_erased: erased,
            kept: kept.into_values().collect(),
            already_erased: false,
        };
        ops.push(Op::EraseSubject { tenant, subject });
        ops.push(Op::InsertLedger(LedgerRow {
            id: Uuid::now_v7(),
            tenant,
            subject,
            requested_by: ctx.principal.actor().id,
            erased_at: now,
            detail: serde_json::to_string(&out).unwrap_or_else(|_| "{}".into()),
        }));
        event.detail = Some(
            json!({ "records_erased": erased, "kept": out.kept.iter().map(|k| json!({"collection": k.collection, "records": k.records})).collect::<Vec<_>>() }),
        );
        ops.push(Op::Audit(Box::new(event)));
        self.commit(ops).await?;
        self.inner.keys.forget_subject(tenant, subject);
        Ok(out)
    }

    /// The common start of a right exercised on one subject: its audit event, the tenant
    /// (isolation checked) and the access decision for rights handling.
    async fn rights_gate(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        action: Action,
    ) -> Result<(ward_audit::AuditEvent, TenantRow)> {
        let mut event = self.event(ctx, action, Some(tenant));
        event.subject = Some(subject);
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::ManageRights),
            &event,
        )
        .await?;
        Ok((event, trow))
    }

    /// Adds restrictions (objections) to a subject's processing.
    pub async fn restrict(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        r: RestrictionIn,
    ) -> Result<Vec<String>> {
        let mut add = Vec::new();
        for p in &r.purposes {
            let purpose = Purpose::parse(p).map_err(|e| {
                VaultError::invalid("invalid_purpose", format!("{p:?}: {e}"), Some("purposes"))
            })?;
            if purpose.is_essential() {
                return Err(VaultError::invalid(
                    "essential_purpose",
                    format!(
                        "{p} is essential (service delivery or a legal obligation) and cannot be restricted; erase the subject instead"
                    ),
                    Some("purposes"),
                ));
            }
            add.push(p.clone());
        }
        if r.all_non_essential {
            add.push(ALL_NON_ESSENTIAL.to_owned());
        }
        if add.is_empty() {
            return Err(VaultError::invalid(
                "empty_restriction",
                "name purposes or set all_non_essential",
                Some("purposes"),
            ));
        }
        self.change_restrictions(ctx, tenant, subject, Action::SubjectRestrict, |current| {
            for a in add {
                if !current.contains(&a) {
                    current.push(a);
                }
            }
        })
        .await
    }

    /// Lifts one restriction, or all when `purpose` is `None`.
    pub async fn lift_restriction(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        purpose: Option<String>,
    ) -> Result<Vec<String>> {
        self.change_restrictions(ctx, tenant, subject, Action::SubjectUnrestrict, |current| {
            match &purpose {
                Some(p) => current.retain(|c| c != p),
                None => current.clear(),
            }
        })
        .await
    }

    async fn change_restrictions(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        action: Action,
        change: impl FnOnce(&mut Vec<String>),
    ) -> Result<Vec<String>> {
        let (mut event, _) = self.rights_gate(ctx, tenant, subject, action).await?;
        let view = self
            .subject_view(tenant, subject, RecordFilter::None)
            .await?;
        let mut current = parse_list(&view.subject.restrictions);
        change(&mut current);
        current.sort();
        event.detail = Some(json!({ "restrictions": current }));
        let restrictions = serde_json::to_string(&current).unwrap_or_else(|_| "[]".into());
        self.commit(vec![
            Op::SetRestrictions {
                tenant,
                subject,
                restrictions,
            },
            Op::Audit(Box::new(event)),
        ])
        .await?;
        Ok(current)
    }

    /// Puts a subject under a litigation hold (or lifts it with `None`): retention and erasure
    /// leave the subject's data alone until then.
    pub async fn set_subject_hold(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        until: Option<OffsetDateTime>,
    ) -> Result<()> {
        let mut event = self.event(ctx, Action::SubjectHold, Some(tenant));
        event.subject = Some(subject);
        event.detail = Some(json!({ "hold_until": until.map(rfc3339) }));
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::ManageRights),
            &event,
        )
        .await?;
        if until.is_some_and(|u| u <= self.now()) {
            return Err(VaultError::invalid(
                "invalid_hold",
                "hold_until must be in the future",
                Some("until"),
            ));
        }
        self.commit(vec![
            Op::SetSubjectHold {
                tenant,
                subject,
                hold_until: until,
            },
            Op::Audit(Box::new(event)),
        ])
        .await?;
        Ok(())
    }

    /// Shortens a collection's retention for one tenant (never lengthens it); existing records'
    /// expiry moves earlier by the same amount.
    ///
    /// Two overrides of one collection racing each other: the second finds the first's value
    /// changed under it (`Conflict::Stale`) and is decided again on the new value, so the
    /// expiry shift always matches the override that stands.
    pub async fn set_retention(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        collection: &str,
        period: &str,
    ) -> Result<Value> {
        crate::retry::retrying(
            |e| e.is_store_conflict(&ward_store::Conflict::Stale),
            || self.forget_tenant_row(tenant),
            || self.set_retention_once(ctx, tenant, collection, period),
        )
        .await
    }

    async fn set_retention_once(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        collection: &str,
        period: &str,
    ) -> Result<Value> {
        let event = self.event(ctx, Action::RetentionRun, Some(tenant));
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::ManageRights),
            &event,
        )
        .await?;
        let coll = self.collection(collection)?;
        let Some(policy_retention) = &coll.retention else {
            return Err(VaultError::invalid(
                "no_retention",
                format!(
                    "collection {collection} has no retention in the policy; a tenant cannot add one through an override"
                ),
                Some("collection"),
            ));
        };
        let wanted = Period::parse(period).map_err(|e| {
            VaultError::invalid("invalid_period", e.to_string(), Some("retain_for"))
        })?;
        policy_retention.shortened(wanted).map_err(|_| {
            VaultError::invalid(
                "retention_extension_refused",
                format!("the policy keeps {collection} for {}; a tenant may shorten that, never lengthen it", policy_retention.retain_for),
                Some("retain_for"),
            )
        })?;
        let current = tenant_retention_override(&trow, collection)
            .filter(|p| *p < policy_retention.retain_for)
            .unwrap_or(policy_retention.retain_for);
        if wanted > current {
            return Err(VaultError::invalid(
                "retention_extension_refused",
                format!(
                    "{collection} is already kept for {current} in this tenant; an override may only shorten it"
                ),
                Some("retain_for"),
            ));
        }
        let stored = serde_json::from_str::<Value>(&trow.settings)
            .ok()
            .and_then(|s| s.get("retention")?.get(collection).cloned())
            .unwrap_or(Value::Null);
        let by = (current.as_duration() - wanted.as_duration()).whole_microseconds() as i64;
        let mut event = event;
        event.action = Action::RetentionOverride;
        event.collection = self.known_collection(collection);
        event.detail = Some(json!({ "retention_override": wanted.to_string() }));
        self.commit(vec![
            Op::PatchTenantSettings {
                id: tenant,
                path: vec!["retention".to_owned(), collection.to_owned()],
                value: Value::String(wanted.to_string()),
                expect: Some(stored),
            },
            Op::ShiftExpiry {
                tenant,
                collection: collection.to_owned(),
                by_micros: by,
            },
            Op::Audit(Box::new(event)),
        ])
        .await?;
        self.forget_tenant_row(tenant);
        Ok(json!({ "collection": collection, "retain_for": wanted.to_string() }))
    }

    // ---- requests ---------------------------------------------------------------------------

    /// Opens a data-subject request, due one month later.
    pub async fn open_request(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        new: NewRequest,
    ) -> Result<RequestOut> {
        let mut event = self.event(ctx, Action::RequestCreate, Some(tenant));
        event.subject = Some(new.subject);
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::ManageRights),
            &event,
        )
        .await?;
        let Some(kind) = RequestKind::parse(&new.kind) else {
            return Err(VaultError::invalid(
                "invalid_kind",
                format!("kind must be one of {}", RequestKind::listed()),
                Some("kind"),
            ));
        };
        let verified_by =
            crate::text::parse(&new.verified_by, "verified_by", "invalid_verified_by", 200)?;
        let verified_by = verified_by.as_str();
        self.subject_view(tenant, new.subject, RecordFilter::None)
            .await?;
        let mut detail = json!({});
        if kind == RequestKind::Restriction {
            for p in &new.purposes {
                Purpose::parse(p).map_err(|e| {
                    VaultError::invalid("invalid_purpose", format!("{p:?}: {e}"), Some("purposes"))
                })?;
            }
            if new.purposes.is_empty() && !new.all_non_essential {
                return Err(VaultError::invalid(
                    "empty_restriction",
                    "name purposes or set all_non_essential",
                    Some("purposes"),
                ));
            }
            detail =
                json!({ "purposes": new.purposes, "all_non_essential": new.all_non_essential });
        }
        let now = self.now();
        let row = RequestRow {
            tenant,
            id: Uuid::now_v7(),
            kind: kind.as_str().to_owned(),
            subject: new.subject,
            status: RequestStatus::Open.as_str().to_owned(),
            verified_by: verified_by.to_owned(),
            detail: detail.to_string(),
            created_at: now,
            due_at: now + Duration::days(REQUEST_DUE_DAYS),
            closed_at: None,
        };
        event.detail = Some(json!({ "request": row.id, "kind": row.kind }));
        let out = request_out(&row, now, None);
        let row = self.seal_request_text(&trow, row)?;
        self.commit(vec![Op::InsertRequest(row), Op::Audit(Box::new(event))])
            .await?;
        Ok(out)
    }

    /// Lists requests; `overdue_only` keeps open ones past their deadline.
    pub async fn list_requests(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        status: Option<&str>,
        overdue_only: bool,
    ) -> Result<Vec<RequestOut>> {
        let event = self.event(ctx, Action::RequestRead, Some(tenant));
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::ManageRights),
            &event,
        )
        .await?;
        if let Some(s) = status
            && RequestStatus::parse(s).is_none()
        {
            return Err(VaultError::invalid(
                "invalid_status",
                "status is open, completed or rejected",
                Some("status"),
            ));
        }
        let now = self.now();
        let rows = self
            .inner
            .store
            .requests(
                tenant,
                if overdue_only {
                    Some(RequestStatus::Open.as_str())
                } else {
                    status
                },
            )
            .await?;
        let rows = rows
            .into_iter()
            .map(|r| self.open_request_text(&trow, r))
            .collect::<Result<Vec<_>>>()?;
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(rows
            .iter()
            .map(|r| request_out(r, now, None))
            .filter(|r| !overdue_only || r.overdue)
            .collect())
    }

    /// Completes a request by performing it.
    pub async fn complete_request(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        id: Uuid,
        how: CompleteRequest,
    ) -> Result<RequestOut> {
        let (row, trow) = self.open_request_row(ctx, tenant, id).await?;
        let kind = RequestKind::parse(&row.kind).ok_or_else(|| {
            VaultError::Store(ward_store::StoreError::Corrupt(format!(
                "request {} has kind {:?}",
                row.id, row.kind
            )))
        })?;
        let result = match kind {
            RequestKind::Access | RequestKind::Portability => {
                self.export_subject(ctx, tenant, row.subject).await?
            }
            RequestKind::Erasure => {
                serde_json::to_value(self.erase_subject(ctx, tenant, row.subject).await?)
                    .unwrap_or(Value::Null)
            }
            RequestKind::Restriction => {
                let d: Value = serde_json::from_str(&row.detail).unwrap_or(Value::Null);
                let r = RestrictionIn {
                    purposes: d["purposes"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    all_non_essential: d["all_non_essential"].as_bool().unwrap_or(false),
                };
                json!({ "restrictions": self.restrict(ctx, tenant, row.subject, r).await? })
            }
            RequestKind::Rectification => {
                let (Some(record), Some(fields)) = (how.record, how.fields.as_ref()) else {
                    return Err(VaultError::invalid(
                        "fields_required",
                        "completing a rectification needs record and fields",
                        Some("fields"),
                    ));
                };
                let rec = self
                    .rectify(
                        ctx,
                        tenant,
                        row.subject,
                        record,
                        fields,
                        crate::records::UpdateBasis::SubjectRequest,
                    )
                    .await?;
                json!({ "record": rec.id, "revision": rec.revision })
            }
        };
        let summary = match kind {
            RequestKind::Access | RequestKind::Portability => json!({ "delivered": true }),
            RequestKind::Erasure | RequestKind::Rectification | RequestKind::Restriction => {
                result.clone()
            }
        };
        self.close_request(
            ctx,
            &trow,
            row,
            RequestStatus::Completed,
            summary,
            Some(result),
        )
        .await
    }

    /// Rejects a request with a reason (e.g. identity could not be verified).
    pub async fn reject_request(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        id: Uuid,
        reason: &str,
    ) -> Result<RequestOut> {
        let reason = crate::text::parse(reason, "reason", "invalid_reason", 1000)?;
        let reason = reason.as_str();
        let (row, trow) = self.open_request_row(ctx, tenant, id).await?;
        self.close_request(
            ctx,
            &trow,
            row,
            RequestStatus::Rejected,
            json!({ "reason": reason }),
            None,
        )
        .await
    }

    async fn open_request_row(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        id: Uuid,
    ) -> Result<(RequestRow, TenantRow)> {
        let event = self.event(ctx, Action::RequestUpdate, Some(tenant));
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::ManageRights),
            &event,
        )
        .await?;
        let row = self
            .inner
            .store
            .request(tenant, id)
            .await?
            .ok_or(VaultError::NotFound("request"))?;
        let row = self.open_request_text(&trow, row)?;
        if RequestStatus::parse(&row.status) != Some(RequestStatus::Open) {
            return Err(VaultError::conflict(format!(
                "request is already {}",
                row.status
            )));
        }
        Ok((row, trow))
    }

    async fn close_request(
        &self,
        ctx: &RequestContext,
        trow: &TenantRow,
        row: RequestRow,
        status: RequestStatus,
        detail: Value,
        result: Option<Value>,
    ) -> Result<RequestOut> {
        let now = self.now();
        let mut event = self.event(ctx, Action::RequestUpdate, Some(row.tenant));
        event.subject = Some(row.subject);
        event.detail = Some(json!({ "request": row.id, "status": status.as_str() }));
        let mut merged: Value = serde_json::from_str(&row.detail).unwrap_or_else(|_| json!({}));
        merged["outcome"] = detail;
        let updated = RequestRow {
            status: status.as_str().to_owned(),
            detail: merged.to_string(),
            closed_at: Some(now),
            ..row
        };
        let tk = self.inner.keys.tenant(trow)?;
        self.commit(vec![
            Op::UpdateRequest {
                tenant: updated.tenant,
                id: updated.id,
                status: updated.status.clone(),
                detail: sealed_text::seal(
                    &tk,
                    updated.tenant,
                    updated.id,
                    "detail",
                    &updated.detail,
                )?,
                closed_at: updated.closed_at,
            },
            Op::Audit(Box::new(event)),
        ])
        .await?;
        Ok(request_out(&updated, now, result))
    }

    /// The request as stored: its free text sealed (see [`sealed_text`]).
    fn seal_request_text(&self, trow: &TenantRow, row: RequestRow) -> Result<RequestRow> {
        let tk = self.inner.keys.tenant(trow)?;
        Ok(RequestRow {
            verified_by: sealed_text::seal(
                &tk,
                row.tenant,
                row.id,
                "verified_by",
                &row.verified_by,
            )?,
            detail: sealed_text::seal(&tk, row.tenant, row.id, "detail", &row.detail)?,
            ..row
        })
    }

    /// The request as read: its free text opened.
    fn open_request_text(&self, trow: &TenantRow, row: RequestRow) -> Result<RequestRow> {
        let tk = self.inner.keys.tenant(trow)?;
        Ok(RequestRow {
            verified_by: sealed_text::open(
                &tk,
                row.tenant,
                row.id,
                "verified_by",
                &row.verified_by,
            )?,
            detail: sealed_text::open(&tk, row.tenant, row.id, "detail", &row.detail)?,
            ..row
        })
    }

    /// Seals the request free text that a Ward from before sealing wrote in clear, in every
    /// tenant; returns how many requests it sealed. Run at start-up (idempotent, cheap when
    /// nothing is left). This is a migration in code rather than in SQL because SQL has no
    /// keys; reads also accept clear text, so a row not yet sealed (or written meanwhile by
    /// an older server sharing a PostgreSQL database) is still shown, never an error. Each
    /// row is replaced only if it still holds what was read, so a request closed meanwhile
    /// keeps its newer detail. Not audited: it changes how a value is stored, not who can
    /// see it, like a schema migration.
    pub async fn seal_legacy_free_text(&self) -> Result<u64> {
        let rows = self
            .inner
            .store
            .requests_in_clear(sealed_text::PREFIX)
            .await?;
        let mut sealed = 0u64;
        let mut ops = Vec::new();
        let mut tenant: Option<TenantRow> = None;
        for row in rows {
            // Rows come ordered by tenant: each tenant's key is read once.
            if tenant.as_ref().is_none_or(|t| t.id != row.tenant) {
                tenant = self.inner.store.tenant(row.tenant).await?;
            }
            let Some(trow) = tenant.as_ref().filter(|t| t.wrapped_key.is_some()) else {
                continue; // destroyed: its key is gone, its requests with it
            };
            let plain = self.open_request_text(trow, row.clone())?;
            let new = self.seal_request_text(trow, plain)?;
            ops.push(Op::SealRequestText {
                tenant: row.tenant,
                id: row.id,
                old_verified_by: row.verified_by,
                old_detail: row.detail,
                verified_by: new.verified_by,
                detail: new.detail,
            });
        }
        for chunk in ops.chunks(500) {
            sealed += chunk.len() as u64;
            self.commit(chunk.to_vec()).await?;
        }
        Ok(sealed)
    }

    // ---- tenant lifecycle ----------------------------------------------------------------------

    /// Cancels a tenant: data access stops at once; after the policy's grace period the
    /// retention engine destroys it by shredding its key. Owners and operators may cancel.
    pub async fn cancel_tenant(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
    ) -> Result<crate::TenantOut> {
        let event = self.event(ctx, Action::TenantCancel, Some(tenant));
        let trow = self.lifecycle_tenant(ctx, tenant, &event).await?;
        if trow.status != TenantStatus::Active {
            return Err(VaultError::conflict(format!("tenant is {}", trow.status)));
        }
        let now = self.now();
        let destroy_after = now + self.inner.policy.tenants.grace_period.as_duration();
        self.commit(vec![
            Op::SetTenantStatus {
                id: tenant,
                status: TenantStatus::Deactivated,
                at: now,
                destroy_after: Some(destroy_after),
            },
            Op::Audit(Box::new(event)),
        ])
        .await?;
        self.forget_tenant_row(tenant);
        Ok(crate::TenantOut {
            status: TenantStatus::Deactivated.as_str().to_owned(),
            destroy_after: Some(destroy_after),
            ..crate::tenants::tenant_out(&trow)
        })
    }

    /// Reactivates a cancelled tenant during its grace period.
    pub async fn reactivate_tenant(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
    ) -> Result<crate::TenantOut> {
        let event = self.event(ctx, Action::TenantReactivate, Some(tenant));
        let trow = self.lifecycle_tenant(ctx, tenant, &event).await?;
        let now = self.now();
        if trow.status != TenantStatus::Deactivated || trow.destroy_after.is_some_and(|d| d <= now)
        {
            return Err(VaultError::conflict(format!(
                "tenant is {} and cannot be reactivated",
                trow.status
            )));
        }
        self.commit(vec![
            Op::SetTenantStatus {
                id: tenant,
                status: TenantStatus::Active,
                at: now,
                destroy_after: None,
            },
            Op::Audit(Box::new(event)),
        ])
        .await?;
        self.forget_tenant_row(tenant);
        Ok(crate::TenantOut {
            status: TenantStatus::Active.as_str().to_owned(),
            destroy_after: None,
            ..crate::tenants::tenant_out(&trow)
        })
    }

    async fn lifecycle_tenant(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        event: &ward_audit::AuditEvent,
    ) -> Result<TenantRow> {
        let trow = self.visible_tenant(ctx, tenant, event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::ChangeLifecycle),
            event,
        )
        .await?;
        if trow.status == TenantStatus::Destroyed {
            return Err(VaultError::NotFound("tenant"));
        }
        Ok(trow)
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
pub(crate) const EXPORT_PAGE: u32 = 200;

fn request_out(r: &RequestRow, now: OffsetDateTime, result: Option<Value>) -> RequestOut {
    RequestOut {
        id: r.id,
        kind: r.kind.clone(),
        subject: r.subject,
        status: r.status.clone(),
        verified_by: r.verified_by.clone(),
        created_at: r.created_at,
        due_at: r.due_at,
        closed_at: r.closed_at,
        overdue: RequestStatus::parse(&r.status) == Some(RequestStatus::Open) && r.due_at < now,
        detail: serde_json::from_str(&r.detail).unwrap_or(Value::Null),
        result,
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

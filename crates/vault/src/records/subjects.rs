//! Subjects: creating them and finding them by external reference or by a searchable field.
//! Apart from records because a subject is found and made before any record is written.

use serde_json::Value;
use uuid::Uuid;
use ward_audit::Action;
use ward_policy::{FieldName, index_form};
use ward_store::{Op, SubjectRow};

use crate::access::{Access, Operation};
use crate::disclosure::{RecordOut, disclose};
use crate::keys::FIRST_SUBJECT_KEY_VERSION;
use crate::{RequestContext, Result, Vault, VaultError, parse_list};

use super::ciphers::retry_stale;
use super::{PreparedSubject, SubjectOut, known_purpose};

/// Longest external reference accepted.
const MAX_EXTERNAL_REF: usize = 256;

impl Vault {
    /// Creates a data subject, optionally with the tenant's own reference for it.
    pub async fn create_subject(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        external_ref: Option<String>,
    ) -> Result<SubjectOut> {
        // A tenant key rotation between wrapping the new subject key and committing it is a
        // conflict the store reports; wrap again under the new key.
        crate::retry::retrying(
            crate::retry::lost_to_rotation,
            || self.forget_tenant_row(tenant),
            || async {
                let prepared = self
                    .prepare_subject(ctx, tenant, external_ref.clone())
                    .await?;
                self.commit(prepared.ops).await?;
                Ok(prepared.out)
            },
        )
        .await
    }

    pub(crate) async fn prepare_subject(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        external_ref: Option<String>,
    ) -> Result<PreparedSubject> {
        let id = Uuid::now_v7();
        let mut event = self.event(ctx, Action::SubjectCreate, Some(tenant));
        event.subject = Some(id);
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::WriteData),
            &event,
        )
        .await?;
        let tk = self.inner.keys.tenant(&trow)?;
        let external_ref = match external_ref {
            Some(r) => {
                let r = crate::text::parse(
                    &r,
                    "external_ref",
                    "invalid_external_ref",
                    MAX_EXTERNAL_REF,
                )?
                .into_string();
                if ward_policy::contains_card_number(&r) {
                    return Err(VaultError::invalid(
                        "card_data_refused",
                        "payment card numbers are never stored",
                        Some("external_ref"),
                    ));
                }
                Some(tk.refs.keyed("external_ref", r.as_bytes()).to_vec())
            }
            None => None,
        };
        let (wrapped, cipher) = self.inner.keys.new_subject_key(&trow, id)?;
        let now = self.now();
        let row = SubjectRow {
            tenant,
            id,
            external_ref,
            wrapped_key: Some(wrapped),
            key_version: trow.key_version,
            record_key_version: FIRST_SUBJECT_KEY_VERSION,
            restrictions: "[]".into(),
            hold_until: None,
            created_at: now,
        };
        let out = SubjectOut {
            id,
            created_at: now,
            restrictions: vec![],
        };
        Ok(PreparedSubject {
            out,
            ops: vec![Op::InsertSubject(row), Op::Audit(Box::new(event))],
            tenant: trow,
            cipher,
        })
    }

    /// Finds a subject by the tenant's external reference (keyed-hash lookup).
    pub async fn subject_by_ref(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        external_ref: &str,
    ) -> Result<SubjectOut> {
        let mut event = self.event(ctx, Action::SubjectLookup, Some(tenant));
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::WriteData),
            &event,
        )
        .await?;
        let external_ref = crate::text::parse(
            external_ref,
            "external_ref",
            "invalid_external_ref",
            MAX_EXTERNAL_REF,
        )?;
        let tk = self.inner.keys.tenant(&trow)?;
        let hash = tk
            .refs
            .keyed("external_ref", external_ref.as_str().as_bytes());
        let s = self
            .inner
            .store
            .subject_by_ref(tenant, &hash)
            .await?
            // A subject whose key is gone was erased (e.g. a restored stale backup): not found.
            .filter(|s| s.wrapped_key.is_some());
        let Some(s) = s else {
            // Probing whether a reference belongs to someone is an access too.
            event.detail = Some(serde_json::json!({ "found": false }));
            self.commit(vec![Op::Audit(Box::new(event))]).await?;
            return Err(VaultError::NotFound("subject"));
        };
        event.subject = Some(s.id);
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(SubjectOut {
            id: s.id,
            created_at: s.created_at,
            restrictions: parse_list(&s.restrictions),
        })
    }

    /// Exact-match search on a searchable field through its blind index.
    pub async fn lookup(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        collection: &str,
        field: &str,
        value: &str,
        purpose: &str,
    ) -> Result<Vec<RecordOut>> {
        retry_stale(|_| self.lookup_once(ctx, tenant, collection, field, value, purpose)).await
    }

    async fn lookup_once(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        collection: &str,
        field: &str,
        value: &str,
        purpose: &str,
    ) -> Result<Vec<RecordOut>> {
        let mut event = self.event(ctx, Action::Lookup, Some(tenant));
        event.collection = self.known_collection(collection);
        event.purpose = known_purpose(purpose);
        let purpose = self.purpose(purpose)?;
        let coll = self.collection(collection)?;
        let fname = FieldName::parse(field)
            .map_err(|e| VaultError::invalid("invalid_field", e.to_string(), Some("field")))?;
        let Some(spec) = coll.fields.get(&fname).filter(|f| f.searchable) else {
            return Err(VaultError::invalid(
                "field_not_searchable",
                format!("field {field} of collection {collection} is not declared searchable"),
                Some("field"),
            ));
        };
        let normalized = spec
            .ty
            .validate(&Value::String(value.to_owned()))
            .map_err(|e| VaultError::invalid(e.code, e.message, Some("value")))?;
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        let base = Access {
            collection: Some(coll),
            purpose: Some(&purpose),
            ..self.tenant_access(ctx, &trow, Operation::ReadData)
        };
        self.check(&base, &event).await?;
        let tk = self.inner.keys.tenant(&trow)?;
        let hash = tk
            .index
            .blind_index(collection, field, &index_form(spec.ty, &normalized));
        let hits = self
            .inner
            .store
            .lookup(tenant, collection, field, &hash)
            .await?;
        let mut out = Vec::new();
        let mut ops = Vec::new();
        for (s, row) in hits {
            let restrictions = parse_list(&s.restrictions);
            let access = Access {
                restrictions: &restrictions,
                expires_at: row.expires_at,
                ..base.clone()
            };
            let Ok(grant) = crate::access::grant_disclosure(&access) else {
                continue;
            };
            let cipher = self
                .record_ciphers(&trow, &s, std::slice::from_ref(&row))
                .await?;
            out.push(disclose(&grant, &cipher, &row)?);
            let mut e = event.clone();
            e.subject = Some(s.id);
            e.record = Some(row.id);
            ops.push(Op::Audit(Box::new(e)));
        }
        if ops.is_empty() {
            ops.push(Op::Audit(Box::new(event)));
        }
        self.commit(ops).await?;
        Ok(out)
    }
}

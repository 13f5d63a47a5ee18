//! Subjects and their records: validate, seal, index, audit.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, AuditEvent};
use ward_crypto::{Cipher, aad};
use ward_policy::{Collection, FieldName, Purpose, RetentionStart, ValidationMode, index_form};
use ward_store::{IndexEntry, Op, RecordFilter, RecordRow, SubjectRow, SubjectView, TenantRow};

use crate::access::{Access, Operation};
use crate::disclosure::{RecordOut, disclose};
use crate::keys::FIRST_SUBJECT_KEY_VERSION;
use crate::sealing::{RecordPlace, SubjectCiphers};
use crate::{RequestContext, Result, Vault, VaultError, parse_list};

/// Longest external reference accepted.
const MAX_EXTERNAL_REF: usize = 256;

/// A subject as shown by the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SubjectOut {
    /// Pseudonymous subject id.
    pub id: Uuid,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Purposes the subject objected to.
    pub restrictions: Vec<String>,
}

/// What a write states besides its fields.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Why the record is written: decided like a read's purpose (allowed for the collection,
    /// covered by the key, not restricted by the subject). Required for a rectification.
    pub purpose: Option<String>,
    /// Answer with the record's values after the write. Decided as a read for `purpose`; by
    /// default a write answers with the record's place and revision only.
    pub return_fields: bool,
}

/// A record to create, as the caller sent it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewRecord<'a> {
    pub(crate) collection: &'a str,
    pub(crate) fields: &'a Map<String, Value>,
    pub(crate) options: &'a WriteOptions,
}

/// On what ground a record is rectified.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UpdateBasis<'a> {
    /// The tenant's application processes the record for a purpose.
    Purpose(&'a WriteOptions),
    /// A data subject asked for the rectification (GDPR Art. 16): a right, handled by the
    /// roles that handle rights, for no processing purpose of the tenant's.
    SubjectRequest,
}

/// A subject prepared but not committed, with what a batch needs to add records to it.
pub(crate) struct PreparedSubject {
    pub(crate) out: SubjectOut,
    pub(crate) ops: Vec<Op>,
    pub(crate) tenant: TenantRow,
    pub(crate) cipher: Arc<Cipher>,
}

/// A write prepared (validated, sealed) but not yet committed: what a batch collects.
pub(crate) struct Prepared {
    pub(crate) ops: Vec<Op>,
    pub(crate) out: RecordOut,
}

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

    /// Stores a new record for a subject.
    pub async fn create_record(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        collection: &str,
        fields: &Map<String, Value>,
        options: &WriteOptions,
    ) -> Result<RecordOut> {
        crate::retry::retrying(
            subject_key_rotated,
            || {},
            || async {
                let p = self
                    .prepare_create(
                        ctx,
                        tenant,
                        subject,
                        NewRecord {
                            collection,
                            fields,
                            options,
                        },
                        None,
                    )
                    .await?;
                self.commit(p.ops).await?;
                Ok(p.out)
            },
        )
        .await
    }

    /// Validates, seals and indexes a new record without committing it. `new_subject` carries
    /// a subject created earlier in the same batch (not yet in the store).
    pub(crate) async fn prepare_create(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        new: NewRecord<'_>,
        new_subject: Option<(&TenantRow, Arc<Cipher>)>,
    ) -> Result<Prepared> {
        let NewRecord {
            collection,
            fields,
            options,
        } = new;
        let id = Uuid::now_v7();
        let mut event = self.event(ctx, Action::RecordCreate, Some(tenant));
        event.subject = Some(subject);
        event.record = Some(id);
        event.collection = self.known_collection(collection);
        let (trow, cipher, status, restrictions) = match new_subject {
            Some((t, c)) => (
                t.clone(),
                SubjectCiphers::current(FIRST_SUBJECT_KEY_VERSION, c),
                t.status,
                Vec::new(),
            ),
            None => {
                // One query on the hot path: the subject view carries the tenant's current
                // status; the tenant's key material comes from a short-lived cache.
                self.isolate(ctx, tenant, &event).await?;
                let view = self
                    .subject_view(tenant, subject, RecordFilter::None)
                    .await?;
                let trow = self.tenant_row_cached(tenant).await?;
                let cipher = self.subject_cipher(&trow, &view.subject).await?;
                let restrictions = parse_list(&view.subject.restrictions);
                (trow, cipher, view.tenant_status, restrictions)
            }
        };
        let coll = self.collection(collection)?;
        let decided = Access {
            collection: Some(coll),
            tenant_status: status,
            ..self.tenant_access(ctx, &trow, Operation::WriteData)
        };
        self.check(&decided, &event).await?;
        let purpose;
        let grant = match (&options.purpose, options.return_fields) {
            (None, false) => None,
            (None, true) => {
                return Err(VaultError::invalid(
                    "purpose_required",
                    "return_fields needs a purpose: the values are read for it",
                    Some("purpose"),
                ));
            }
            (Some(p), return_fields) => {
                // A stated purpose is decided like a read's, whether or not values go back.
                event.purpose = known_purpose(p);
                purpose = self.purpose(p)?;
                let read = Access {
                    operation: Operation::ReadData,
                    purpose: Some(&purpose),
                    restrictions: &restrictions,
                    ..decided.clone()
                };
                let grant = self.check_disclosure(&read, &event).await?;
                if return_fields {
                    event.detail = Some(serde_json::json!({ "returned_fields": true }));
                }
                return_fields.then_some(grant)
            }
        };
        let values = validate(coll, fields, ValidationMode::Create)?;
        let now = self.now();
        let expires_at = self.expiry(&trow, coll, now, &values)?;
        let plaintext = Zeroizing(serde_json::to_vec(&values).map_err(|_| VaultError::Integrity)?);
        let row = RecordRow {
            tenant,
            subject,
            id,
            collection: collection.to_owned(),
            ciphertext: cipher.seal(
                RecordPlace {
                    tenant,
                    subject,
                    record: id,
                    collection,
                },
                1,
                &plaintext.0,
            )?,
            key_version: cipher.version(),
            revision: 1,
            created_at: now,
            updated_at: now,
            expires_at,
        };
        let index = self.index_entries(&trow, coll, &values)?;
        // A create answers with the record's place; its values only when a read for the
        // stated purpose was allowed above.
        let out = match &grant {
            Some(grant) => disclose(grant, &cipher, &row)?,
            None => RecordOut::meta(&row),
        };
        Ok(Prepared {
            out,
            ops: vec![
                Op::InsertRecord { record: row, index },
                Op::Audit(Box::new(event)),
            ],
        })
    }

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

    /// Rectifies a record: validated fields replace the old ones (null removes an optional
    /// field); the old values are not kept anywhere. The change states a purpose, decided like
    /// a read's, because it processes the record for that purpose.
    pub async fn update_record(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        record: Uuid,
        fields: &Map<String, Value>,
        options: &WriteOptions,
    ) -> Result<RecordOut> {
        self.rectify(
            ctx,
            tenant,
            subject,
            record,
            fields,
            UpdateBasis::Purpose(options),
        )
        .await
    }

    pub(crate) async fn rectify(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        record: Uuid,
        fields: &Map<String, Value>,
        basis: UpdateBasis<'_>,
    ) -> Result<RecordOut> {
        crate::retry::retrying(
            subject_key_rotated,
            || {},
            || async {
                let p = retry_stale(|_| {
                    self.prepare_update(ctx, tenant, subject, record, fields, basis)
                })
                .await?;
                self.commit(p.ops).await?;
                Ok(p.out)
            },
        )
        .await
    }

    pub(crate) async fn prepare_update(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        record: Uuid,
        fields: &Map<String, Value>,
        basis: UpdateBasis<'_>,
    ) -> Result<Prepared> {
        let (mut event, trow, view, row) = self
            .record_in_place(ctx, tenant, subject, record, Action::RecordUpdate)
            .await?;
        let coll = self.collection(&row.collection)?;
        let restrictions = parse_list(&view.subject.restrictions);
        let mut decided = Access {
            principal: &ctx.principal,
            tenant,
            tenant_status: view.tenant_status,
            operation: Operation::ManageRights,
            collection: Some(coll),
            purpose: None,
            restrictions: &restrictions,
            expires_at: row.expires_at,
            now: self.now(),
            tenant_requires_totp: self.totp_fact(ctx, tenant).await?,
        };
        let purpose;
        let mut return_fields = false;
        if let UpdateBasis::Purpose(options) = basis {
            decided.operation = Operation::UpdateData;
            if let Some(p) = &options.purpose {
                event.purpose = known_purpose(p);
                purpose = self.purpose(p)?;
                decided.purpose = Some(&purpose);
            }
            return_fields = options.return_fields;
        }
        self.check(&decided, &event).await?;
        let grant = if return_fields {
            let read = Access {
                operation: Operation::ReadData,
                ..decided.clone()
            };
            let grant = self.check_disclosure(&read, &event).await?;
            // The values leave with the answer: the update's event says so.
            event.detail = Some(serde_json::json!({ "returned_fields": true }));
            Some(grant)
        } else {
            None
        };
        let patch = validate(coll, fields, ValidationMode::Patch)?;
        let cipher = self
            .record_ciphers(&trow, &view.subject, std::slice::from_ref(&row))
            .await?;
        let mut values = cipher.open(&row)?;
        for (k, v) in patch {
            if v.is_null() {
                values.remove(k.as_str());
            } else {
                values.insert(k.as_str().to_owned(), v);
            }
        }
        let typed: BTreeMap<FieldName, Value> = values
            .iter()
            .filter_map(|(k, v)| FieldName::parse(k).ok().map(|f| (f, v.clone())))
            .collect();
        let now = self.now();
        let expires_at = match coll.retention.as_ref().map(|r| &r.from) {
            Some(RetentionStart::Field(_)) => self.expiry(&trow, coll, row.created_at, &typed)?,
            _ => row.expires_at,
        };
        let plaintext = Zeroizing(serde_json::to_vec(&values).map_err(|_| VaultError::Integrity)?);
        let new = RecordRow {
            ciphertext: cipher.seal(
                RecordPlace {
                    tenant,
                    subject,
                    record,
                    collection: &row.collection,
                },
                row.revision + 1,
                &plaintext.0,
            )?,
            key_version: cipher.version(),
            revision: row.revision + 1,
            updated_at: now,
            expires_at,
            ..row.clone()
        };
        let index = self.index_entries(&trow, coll, &typed)?;
        let out = match &grant {
            Some(grant) => disclose(grant, &cipher, &new)?,
            None => RecordOut::meta(&new),
        };
        Ok(Prepared {
            out,
            ops: vec![
                Op::UpdateRecord {
                    record: new,
                    expected_revision: row.revision,
                    index,
                },
                Op::Audit(Box::new(event)),
            ],
        })
    }

    /// Deletes one record and its index entries.
    pub async fn delete_record(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        record: Uuid,
    ) -> Result<()> {
        let ops = self.prepare_delete(ctx, tenant, subject, record).await?;
        self.commit(ops).await?;
        Ok(())
    }

    pub(crate) async fn prepare_delete(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        record: Uuid,
    ) -> Result<Vec<Op>> {
        let (event, trow, _, row) = self
            .record_in_place(ctx, tenant, subject, record, Action::RecordDelete)
            .await?;
        let coll = self.inner.policy.collection(&row.collection);
        self.check(
            &Access {
                collection: coll,
                ..self.tenant_access(ctx, &trow, Operation::WriteData)
            },
            &event,
        )
        .await?;
        Ok(vec![
            Op::DeleteRecord {
                tenant,
                subject,
                id: record,
            },
            Op::Audit(Box::new(event)),
        ])
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

    // ---- helpers ------------------------------------------------------------------------

    /// The common start of a change to one record: its audit event, the tenant (isolation
    /// checked), the subject and the record row (404 when absent).
    async fn record_in_place(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        record: Uuid,
        action: Action,
    ) -> Result<(AuditEvent, TenantRow, SubjectView, RecordRow)> {
        let mut event = self.event(ctx, action, Some(tenant));
        event.subject = Some(subject);
        event.record = Some(record);
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        let mut view = self
            .subject_view(tenant, subject, RecordFilter::One(record))
            .await?;
        let Some(row) = view.records.pop() else {
            return Err(VaultError::NotFound("record"));
        };
        event.collection = Some(row.collection.clone());
        Ok((event, trow, view, row))
    }

    /// A client-supplied collection name as it may appear in an audit event: only names the
    /// policy declares, so a denied request cannot write arbitrary text into a tenant's log.
    pub(crate) fn known_collection(&self, name: &str) -> Option<String> {
        self.inner
            .policy
            .collection(name)
            .map(|c| c.name.as_str().to_owned())
    }

    pub(crate) fn collection(&self, name: &str) -> Result<&Collection> {
        self.inner.policy.collection(name).ok_or_else(|| {
            VaultError::invalid(
                "unknown_collection",
                format!("collection {name:?} is not declared in the policy"),
                Some("collection"),
            )
        })
    }

    fn purpose(&self, p: &str) -> Result<Purpose> {
        Purpose::parse(p).map_err(|e| {
            VaultError::invalid(
                "invalid_purpose",
                format!("purpose {p:?}: {e}"),
                Some("purpose"),
            )
        })
    }

    pub(crate) async fn subject_view(
        &self,
        tenant: Uuid,
        subject: Uuid,
        filter: RecordFilter<'_>,
    ) -> Result<SubjectView> {
        self.inner
            .store
            .subject_view(tenant, subject, filter)
            .await?
            .filter(|v| v.subject.wrapped_key.is_some())
            .ok_or(VaultError::NotFound("subject"))
    }

    pub(crate) fn subject_cipher_now(
        &self,
        trow: &TenantRow,
        s: &SubjectRow,
    ) -> Result<SubjectCiphers> {
        Ok(SubjectCiphers::current(
            s.record_key_version,
            self.inner.keys.subject(trow, s)?,
        ))
    }

    /// The subject's current record key. When the subject and tenant rows were read on either
    /// side of a tenant key rotation (their key versions differ), both are read again once.
    pub(crate) async fn subject_cipher(
        &self,
        trow: &TenantRow,
        s: &SubjectRow,
    ) -> Result<SubjectCiphers> {
        if s.key_version == trow.key_version || self.inner.keys.cached_subject(s).is_some() {
            return self.subject_cipher_now(trow, s);
        }
        // Read on either side of a tenant key rotation: read both again until they agree
        // (rotations are rare; two in a row is the most a read should ever see).
        for _ in 0..4 {
            self.forget_tenant_row(trow.id);
            let fresh_tenant = self.tenant_row(trow.id).await?;
            let fresh_subject = self
                .subject_view(s.tenant, s.id, RecordFilter::None)
                .await?
                .subject;
            if fresh_subject.key_version == fresh_tenant.key_version {
                return self.subject_cipher_now(&fresh_tenant, &fresh_subject);
            }
        }
        Err(VaultError::conflict(
            "the tenant key is being rotated; retry",
        ))
    }

    /// The subject's keys that open `rows`: the current one, plus the retired versions a
    /// record rotation still has records under (one more query, only while one runs). A
    /// version found nowhere makes [`SubjectCiphers::open`] ask for a fresh read.
    pub(crate) async fn record_ciphers(
        &self,
        trow: &TenantRow,
        s: &SubjectRow,
        rows: &[RecordRow],
    ) -> Result<SubjectCiphers> {
        let mut ciphers = self.subject_cipher(trow, s).await?;
        if rows.iter().all(|r| ciphers.opens(r.key_version)) {
            return Ok(ciphers);
        }
        for retired in self.inner.store.retired_keys(s.tenant, s.id).await? {
            if rows.iter().any(|r| r.key_version == retired.version) {
                let cipher = self.inner.keys.retired_subject(trow, s.id, &retired)?;
                ciphers.add_older(retired.version, cipher);
            }
        }
        Ok(ciphers)
    }

    fn index_entries(
        &self,
        trow: &TenantRow,
        coll: &Collection,
        values: &BTreeMap<FieldName, Value>,
    ) -> Result<Vec<IndexEntry>> {
        let mut out = Vec::new();
        let mut hasher = None;
        for (name, spec) in coll.searchable_fields() {
            let Some(v) = values.get(name).filter(|v| !v.is_null()) else {
                continue;
            };
            let tk = match &hasher {
                Some(tk) => tk,
                None => hasher.insert(self.inner.keys.tenant(trow)?),
            };
            out.push(IndexEntry {
                field: name.as_str().to_owned(),
                hash: tk.index.blind_index(
                    coll.name.as_str(),
                    name.as_str(),
                    &index_form(spec.ty, v),
                ),
            });
        }
        Ok(out)
    }

    /// When retention will expire a record: from creation or from a named date field, never
    /// later than the policy allows (tenant overrides only shorten).
    fn expiry(
        &self,
        trow: &TenantRow,
        coll: &Collection,
        created: OffsetDateTime,
        values: &BTreeMap<FieldName, Value>,
    ) -> Result<Option<OffsetDateTime>> {
        let Some(retention) = &coll.retention else {
            return Ok(None);
        };
        let period = tenant_retention_override(trow, coll.name.as_str())
            .filter(|p| *p < retention.retain_for)
            .unwrap_or(retention.retain_for);
        let (start, field) = match &retention.from {
            RetentionStart::Created => (created, None),
            RetentionStart::Field(f) => match values.get(f).and_then(Value::as_str) {
                Some(s) => (parse_temporal(s).unwrap_or(created), Some(f.as_str())),
                // Without the date the clock cannot start: count from creation, the safe side.
                None => (created, None),
            },
        };
        let expires = start
            .checked_add(period.as_duration())
            .filter(|e| e.year() <= 9999)
            .ok_or_else(|| {
                VaultError::invalid(
                    "retention_out_of_range",
                    format!(
                        "retention counted from this date ends after the year 9999 ({} after it)",
                        period
                    ),
                    field.or(Some("collection")),
                )
            })?;
        if expires <= self.now() {
            return Err(VaultError::invalid(
                "retention_expired",
                format!(
                    "this record's retention ({} from {}) has already ended; Ward will not store it",
                    period,
                    field.unwrap_or("creation")
                ),
                field,
            ));
        }
        Ok(Some(expires))
    }
}

/// A tenant's shortened retention for a collection, from its settings.
pub(crate) fn tenant_retention_override(
    trow: &TenantRow,
    collection: &str,
) -> Option<ward_policy::Period> {
    let settings: Value = serde_json::from_str(&trow.settings).ok()?;
    let s = settings.get("retention")?.get(collection)?.as_str()?;
    ward_policy::Period::parse(s).ok()
}

fn parse_temporal(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let d = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(d.midnight().assume_utc())
}

fn validate(
    coll: &Collection,
    fields: &Map<String, Value>,
    mode: ValidationMode,
) -> Result<BTreeMap<FieldName, Value>> {
    coll.validate(fields, mode).map_err(|v| {
        // A card number used as a field *name* must not be echoed back either.
        let field = if ward_policy::contains_card_number(&v.field) {
            "(withheld: looks like a card number)".to_owned()
        } else {
            v.field
        };
        VaultError::Invalid {
            code: v.value_code.unwrap_or(v.code.as_str()),
            message: v.message,
            field: Some(field),
        }
    })
}

pub(crate) fn record_aad(
    tenant: Uuid,
    subject: Uuid,
    record: Uuid,
    collection: &str,
    v: u32,
) -> Vec<u8> {
    aad::record(
        tenant.as_bytes(),
        subject.as_bytes(),
        record.as_bytes(),
        collection,
        v,
    )
}

pub(crate) fn open_record(cipher: &Cipher, row: &RecordRow) -> Result<Map<String, Value>> {
    let plain = open_record_bytes(cipher, row)?;
    serde_json::from_slice(&plain).map_err(|_| VaultError::Integrity)
}

/// The associated data of a live record at `revision` (see [`aad::record_revision`]).
pub(crate) fn live_record_aad(
    tenant: Uuid,
    subject: Uuid,
    record: Uuid,
    collection: &str,
    v: u32,
    revision: i64,
) -> Vec<u8> {
    aad::record_revision(
        tenant.as_bytes(),
        subject.as_bytes(),
        record.as_bytes(),
        collection,
        v,
        revision,
    )
}

/// A record's plaintext bytes, opened under the key version its row names and bound to the
/// revision its row names.
///
/// Records sealed before revisions were bound open under the older associated data. Such a
/// ciphertext could still be rolled back to an earlier pre-upgrade revision by someone with
/// write access to the database; `ward keys rotate --records` re-seals every record with its
/// revision bound and destroys the keys that opened the old copies, which closes that.
pub(crate) fn open_record_bytes(
    cipher: &Cipher,
    row: &RecordRow,
) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let bound = live_record_aad(
        row.tenant,
        row.subject,
        row.id,
        &row.collection,
        row.key_version,
        row.revision,
    );
    match cipher.open(&row.ciphertext, &bound) {
        Ok(plain) => Ok(plain),
        Err(_) => Ok(cipher.open(
            &row.ciphertext,
            &record_aad(
                row.tenant,
                row.subject,
                row.id,
                &row.collection,
                row.key_version,
            ),
        )?),
    }
}

/// Whether a commit failed because the subject's key was replaced after the request read it.
fn subject_key_rotated(e: &VaultError) -> bool {
    e.is_store_conflict(&ward_store::Conflict::SubjectKeyRotated)
}

/// Runs a read again when it raced a record rotation. A rotation touches each subject once,
/// so a record that still names a key version its subject does not have after several fresh
/// reads was altered: that is an integrity failure, not a race. `f` is told when it runs for
/// the last time.
pub(crate) async fn retry_stale<T, F, Fut>(mut f: F) -> Result<T>
where
    F: FnMut(bool) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    const ATTEMPTS: u32 = 4;
    let mut attempt = 1;
    loop {
        match f(attempt == ATTEMPTS).await {
            Err(VaultError::Conflict(crate::error::Conflict::StaleKeyRead)) => {
                if attempt == ATTEMPTS {
                    return Err(VaultError::Integrity);
                }
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Plaintext that is wiped when dropped.
struct Zeroizing(Vec<u8>);

impl Drop for Zeroizing {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// A client-supplied purpose as it may appear in an audit event: only valid fideslang keys.
fn known_purpose(p: &str) -> Option<String> {
    Purpose::parse(p).ok().map(|p| p.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;
    use ward_crypto::SecretKey;

    use super::*;

    fn row(cipher: &Cipher, revision: i64, sealed_at: Option<i64>) -> RecordRow {
        let (tenant, subject, id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let aad = match sealed_at {
            Some(r) => live_record_aad(tenant, subject, id, "contact", 1, r),
            None => record_aad(tenant, subject, id, "contact", 1),
        };
        RecordRow {
            tenant,
            subject,
            id,
            collection: "contact".into(),
            ciphertext: cipher.seal(br#"{"name":"Ada"}"#, &aad).expect("seal"),
            key_version: 1,
            revision,
            created_at: datetime!(2026-01-01 0:00 UTC),
            updated_at: datetime!(2026-01-01 0:00 UTC),
            expires_at: None,
        }
    }

    #[test]
    fn a_record_opens_only_at_the_revision_it_was_sealed_for() {
        let cipher = Cipher::new(&SecretKey::generate().expect("key")).expect("cipher");
        assert!(open_record(&cipher, &row(&cipher, 3, Some(3))).is_ok());
        for (row_revision, sealed_for) in [(3, 2), (2, 3), (1, 0)] {
            let r = row(&cipher, row_revision, Some(sealed_for));
            assert!(
                matches!(open_record(&cipher, &r), Err(VaultError::Integrity)),
                "sealed for {sealed_for}, row at {row_revision}"
            );
        }
    }

    #[test]
    fn records_sealed_before_revisions_were_bound_still_open() {
        let cipher = Cipher::new(&SecretKey::generate().expect("key")).expect("cipher");
        let legacy = row(&cipher, 7, None);
        assert_eq!(
            open_record(&cipher, &legacy).expect("legacy opens")["name"],
            "Ada"
        );
    }
}

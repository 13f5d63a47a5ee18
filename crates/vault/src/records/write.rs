//! Writing records: create, update (by purpose or by a data-subject request) and delete, with
//! the validation, blind index and expiry every write computes. Apart from reads because a
//! write seals, indexes and may race a key rotation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, AuditEvent};
use ward_crypto::Cipher;
use ward_policy::{Collection, FieldName, RetentionStart, ValidationMode, index_form};
use ward_store::{IndexEntry, Op, RecordFilter, RecordRow, SubjectView, TenantRow, TenantStatus};

use crate::access::{Access, Operation};
use crate::disclosure::{RecordOut, disclose};
use crate::keys::FIRST_SUBJECT_KEY_VERSION;
use crate::sealing::{RecordPlace, SubjectCiphers};
use crate::{RequestContext, Result, Vault, VaultError, parse_list};

use super::ciphers::retry_stale;
use super::remembered::RememberedSubject;
use super::{NewRecord, Prepared, UpdateBasis, WriteOptions, known_purpose, validate};

impl Vault {
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
            crate::retry::lost_to_change,
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
                        SubjectSource::Store,
                    )
                    .await?;
                let remembered = p.remembered;
                self.commit(p.ops)
                    .await
                    .map_err(|e| self.stale_if_remembered(remembered, tenant, e.into()))?;
                Ok(p.out)
            },
        )
        .await
    }

    /// A commit refused a write whose subject was remembered, not read: if the refusal is one
    /// a change since the read explains, it is the cache's loss, not the caller's answer.
    pub(crate) fn stale_if_remembered(
        &self,
        remembered: bool,
        tenant: Uuid,
        e: VaultError,
    ) -> VaultError {
        let stale = matches!(
            &e,
            VaultError::NotFound("subject")
                | VaultError::Conflict(crate::error::Conflict::Store(
                    ward_store::Conflict::SubjectKeyRotated | ward_store::Conflict::TenantInactive
                ))
        );
        if remembered && stale {
            self.inner.subjects.forget_tenant(tenant);
            VaultError::Conflict(crate::error::Conflict::StaleSubject)
        } else {
            e
        }
    }

    /// What a record write needs of an existing subject, in one query on the hot path: the
    /// subject view carries the tenant's current status; the tenant's key material comes from
    /// a short-lived cache. With `may_remember` (a write that states no purpose, so the
    /// subject's restrictions do not count), a subject read in the last seconds under an
    /// active tenant is taken as it was (see `remembered.rs`: the commit checks it again).
    /// `event` is audited if the tenant is not the caller's to see.
    async fn subject_basis(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        event: &AuditEvent,
        may_remember: bool,
    ) -> Result<SubjectBasis> {
        self.isolate(ctx, tenant, event).await?;
        let remembered = if may_remember {
            self.inner
                .subjects
                .get(tenant, subject)
                .filter(|s| s.status == TenantStatus::Active)
        } else {
            None
        };
        let (found, from_memory) = match remembered {
            Some(found) => (found, true),
            None => {
                let view = self
                    .subject_view(tenant, subject, RecordFilter::None)
                    .await?;
                let found = RememberedSubject {
                    subject: view.subject,
                    status: view.tenant_status,
                };
                self.inner.subjects.put(found.clone());
                (found, false)
            }
        };
        let trow = self.tenant_row_cached(tenant).await?;
        let cipher = self.subject_cipher(&trow, &found.subject).await?;
        Ok(SubjectBasis {
            restrictions: parse_list(&found.subject.restrictions),
            status: found.status,
            tenant: trow,
            cipher,
            remembered: from_memory,
        })
    }

    /// Validates, seals and indexes a new record without committing it. `source` says where
    /// the subject comes from: the store, a batch's cache of the subjects it read, or an item
    /// earlier in the same batch that created it (not yet in the store).
    pub(crate) async fn prepare_create(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        new: NewRecord<'_>,
        source: SubjectSource<'_>,
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
        let may_remember = options.purpose.is_none();
        let SubjectBasis {
            tenant: trow,
            cipher,
            status,
            restrictions,
            remembered,
        } = match source {
            SubjectSource::Store => {
                self.subject_basis(ctx, tenant, subject, &event, may_remember)
                    .await?
            }
            SubjectSource::Given(basis) => basis.clone(),
            SubjectSource::Cached(read) => match read.get(&subject) {
                // A remembered subject serves only writes that state no purpose.
                Some(basis) if may_remember || !basis.remembered => basis.clone(),
                _ => {
                    let basis = self
                        .subject_basis(ctx, tenant, subject, &event, may_remember)
                        .await?;
                    read.insert(subject, basis.clone());
                    basis
                }
            },
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
            remembered,
        })
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
            remembered: false,
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

/// Whether a commit failed because the subject's key was replaced after the request read it.
fn subject_key_rotated(e: &VaultError) -> bool {
    e.is_store_conflict(&ward_store::Conflict::SubjectKeyRotated)
}

/// Plaintext that is wiped when dropped.
struct Zeroizing(Vec<u8>);

impl Drop for Zeroizing {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// A subject as a record write sees it: its tenant, keys, the tenant's status and the
/// subject's restrictions.
#[derive(Clone)]
pub(crate) struct SubjectBasis {
    tenant: TenantRow,
    cipher: SubjectCiphers,
    status: TenantStatus,
    restrictions: Vec<String>,
    /// Taken from the vault's remembered subjects rather than read for this request.
    pub(crate) remembered: bool,
}

impl SubjectBasis {
    /// A subject created earlier in the same batch: first key version, no restrictions.
    pub(crate) fn created(tenant: &TenantRow, cipher: Arc<Cipher>) -> Self {
        Self {
            tenant: tenant.clone(),
            cipher: SubjectCiphers::current(FIRST_SUBJECT_KEY_VERSION, cipher),
            status: tenant.status,
            restrictions: Vec::new(),
            remembered: false,
        }
    }
}

/// Where [`Vault::prepare_create`] finds the record's subject.
pub(crate) enum SubjectSource<'a> {
    /// Read from the store (or, for a write without a purpose, remembered from a recent
    /// read: see [`Vault::subject_basis`]).
    Store,
    /// Created by an earlier item of the same batch.
    Given(&'a SubjectBasis),
    /// Read from the store once per batch: a call of a thousand records for a hundred subjects
    /// reads each subject once, not ten times. All items share one caller and one tenant, and
    /// the commit checks every record's subject key, so an erasure or key rotation that lands
    /// between the read and the commit fails the call as it would have without the cache.
    Cached(&'a mut HashMap<Uuid, SubjectBasis>),
}

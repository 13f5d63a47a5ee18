//! Many writes in one request and one transaction: the answer to "one call per value is what
//! makes encryption services slow".
//!
//! Every item is validated, decided and sealed first; only then is the whole batch committed
//! at once. If any item fails, nothing is written and the error names the item.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;
use ward_store::Op;

use crate::records::{SubjectBasis, SubjectSource};
use crate::{RequestContext, Result, Vault, VaultError};

/// Most items in one batch.
pub(crate) const MAX_BATCH_ITEMS: usize = 1000;

/// One write of a batch.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum BatchItem {
    /// Create a subject; later items may refer to it as `"#<item index>"`.
    CreateSubject {
        /// The tenant's own reference for the subject.
        #[serde(default)]
        external_ref: Option<String>,
    },
    /// Create a record.
    CreateRecord {
        /// Subject id, or `"#N"` for the subject created by item N of this batch.
        subject: String,
        /// Collection.
        collection: String,
        /// Field values.
        #[schema(value_type = Object)]
        fields: Map<String, Value>,
        /// Why the record is written; decided like a read's purpose when given.
        #[serde(default)]
        purpose: Option<String>,
        /// Answer with the record's values (needs `purpose`; decided as a read).
        #[serde(default)]
        return_fields: bool,
    },
    /// Rectify a record.
    UpdateRecord {
        /// Subject id.
        subject: Uuid,
        /// Record id.
        record: Uuid,
        /// Fields to change (null removes an optional field).
        #[schema(value_type = Object)]
        fields: Map<String, Value>,
        /// Why the record is changed, decided like a read's purpose.
        purpose: String,
        /// Answer with the record's values after the change (decided as a read for
        /// `purpose`); by default the result carries only the record's place and revision.
        #[serde(default)]
        return_fields: bool,
    },
    /// Delete a record.
    DeleteRecord {
        /// Subject id.
        subject: Uuid,
        /// Record id.
        record: Uuid,
    },
}

/// The results of a committed batch, one per item, in order.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchOutcome {
    /// For creates and updates the record's place and revision (and, for an update that
    /// asked for them, its values); for deletes `{"deleted": id}`.
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<Value>,
}

impl Vault {
    /// Applies every item or none (prepared again if a key rotation raced it).
    pub async fn batch(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        items: Vec<BatchItem>,
    ) -> Result<BatchOutcome> {
        crate::retry::retrying(
            crate::retry::lost_to_change,
            || self.forget_tenant_row(tenant),
            || self.batch_once(ctx, tenant, items.clone()),
        )
        .await
    }

    async fn batch_once(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        items: Vec<BatchItem>,
    ) -> Result<BatchOutcome> {
        if items.is_empty() {
            return Err(VaultError::invalid(
                "empty_batch",
                "a batch needs at least one item",
                Some("items"),
            ));
        }
        if items.len() > MAX_BATCH_ITEMS {
            return Err(VaultError::TooLarge(format!(
                "a batch holds at most {MAX_BATCH_ITEMS} items; this one has {}",
                items.len()
            )));
        }
        let mut ops = Vec::new();
        let mut results = Vec::with_capacity(items.len());
        let mut new_subjects: HashMap<usize, (Uuid, SubjectBasis)> = HashMap::new();
        let mut read_subjects: HashMap<Uuid, SubjectBasis> = HashMap::new();
        let mut touched = std::collections::HashSet::new();
        let mut remembered = false;
        for (i, item) in items.into_iter().enumerate() {
            if let BatchItem::UpdateRecord { record, .. } | BatchItem::DeleteRecord { record, .. } =
                &item
                && !touched.insert(*record)
            {
                return Err(at_item(
                    i,
                    VaultError::invalid(
                        "duplicate_record",
                        "a batch may change or delete a record only once; merge the changes into one item",
                        Some("record"),
                    ),
                ));
            }
            let prepared = self
                .prepare_item(ctx, tenant, i, item, &mut new_subjects, &mut read_subjects)
                .await;
            let (item_ops, result, from_memory) = prepared.map_err(|e| at_item(i, e))?;
            remembered |= from_memory;
            ops.extend(item_ops);
            results.push(result);
        }
        self.commit(ops)
            .await
            .map_err(|e| self.stale_if_remembered(remembered, tenant, e.into()))?;
        Ok(BatchOutcome { results })
    }

    async fn prepare_item(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        i: usize,
        item: BatchItem,
        new_subjects: &mut HashMap<usize, (Uuid, SubjectBasis)>,
        read_subjects: &mut HashMap<Uuid, SubjectBasis>,
    ) -> Result<(Vec<Op>, Value, bool)> {
        match item {
            BatchItem::CreateSubject { external_ref } => {
                let p = self.prepare_subject(ctx, tenant, external_ref).await?;
                let basis = SubjectBasis::created(&p.tenant, p.cipher);
                new_subjects.insert(i, (p.out.id, basis));
                Ok((
                    p.ops,
                    serde_json::to_value(&p.out).unwrap_or(Value::Null),
                    false,
                ))
            }
            BatchItem::CreateRecord {
                subject,
                collection,
                fields,
                purpose,
                return_fields,
            } => {
                let options = crate::records::WriteOptions {
                    purpose,
                    return_fields,
                };
                let new = crate::records::NewRecord {
                    collection: &collection,
                    fields: &fields,
                    options: &options,
                };
                let p = if let Some(n) = subject.strip_prefix('#') {
                    let (id, basis) = n
                        .parse::<usize>()
                        .ok()
                        .and_then(|n| new_subjects.get(&n))
                        .ok_or_else(|| {
                            VaultError::invalid(
                                "invalid_reference",
                                format!("{subject:?} does not name an earlier create_subject item"),
                                Some("subject"),
                            )
                        })?;
                    self.prepare_create(ctx, tenant, *id, new, SubjectSource::Given(basis))
                        .await?
                } else {
                    let id = Uuid::parse_str(&subject).map_err(|_| {
                        VaultError::invalid(
                            "invalid_id",
                            "subject must be a UUID or \"#N\"",
                            Some("subject"),
                        )
                    })?;
                    self.prepare_create(ctx, tenant, id, new, SubjectSource::Cached(read_subjects))
                        .await?
                };
                Ok((
                    p.ops,
                    serde_json::to_value(&p.out).unwrap_or(Value::Null),
                    p.remembered,
                ))
            }
            BatchItem::UpdateRecord {
                subject,
                record,
                fields,
                purpose,
                return_fields,
            } => {
                let options = crate::records::WriteOptions {
                    purpose: Some(purpose),
                    return_fields,
                };
                let p = self
                    .prepare_update(
                        ctx,
                        tenant,
                        subject,
                        record,
                        &fields,
                        crate::records::UpdateBasis::Purpose(&options),
                    )
                    .await?;
                Ok((
                    p.ops,
                    serde_json::to_value(&p.out).unwrap_or(Value::Null),
                    false,
                ))
            }
            BatchItem::DeleteRecord { subject, record } => {
                let ops = self.prepare_delete(ctx, tenant, subject, record).await?;
                Ok((ops, serde_json::json!({ "deleted": record }), false))
            }
        }
    }
}

/// Prefixes an item's error with its position so the caller knows which one failed.
fn at_item(i: usize, e: VaultError) -> VaultError {
    match e {
        VaultError::Invalid {
            code,
            message,
            field,
        } => VaultError::Invalid {
            code,
            message: format!("item {i}: {message}"),
            field: Some(match field {
                Some(f) => format!("items[{i}].{f}"),
                None => format!("items[{i}]"),
            }),
        },
        VaultError::Forbidden { code, reason } => VaultError::Forbidden {
            code,
            reason: format!("item {i}: {reason}"),
        },
        VaultError::Conflict(m) => VaultError::conflict(format!("item {i}: {m}")),
        other => other,
    }
}

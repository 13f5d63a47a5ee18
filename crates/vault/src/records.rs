//! Subjects and their records: validate, seal, index, audit.
//!
//! This file holds the types and policy lookups every operation shares; subjects, writes,
//! reads and the record ciphers live in their own submodules.

mod ciphers;
mod read;
mod remembered;
mod subjects;
mod write;

pub(crate) use remembered::RememberedSubjects;
pub(crate) use write::{SubjectBasis, SubjectSource, tenant_retention_override};

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_crypto::Cipher;
use ward_policy::{Collection, FieldName, Purpose, ValidationMode};
use ward_store::{Op, RecordFilter, SubjectView, TenantRow};

use crate::disclosure::RecordOut;
use crate::{Result, Vault, VaultError};

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
    /// Prepared from a remembered subject: a commit that finds the subject or its tenant
    /// changed is the cache's loss, and the write is prepared again from a fresh read.
    pub(crate) remembered: bool,
}

impl Vault {
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

/// A client-supplied purpose as it may appear in an audit event: only valid fideslang keys.
fn known_purpose(p: &str) -> Option<String> {
    Purpose::parse(p).ok().map(|p| p.as_str().to_owned())
}

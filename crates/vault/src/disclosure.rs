//! The one way a record's field values leave the vault.
//!
//! Every answer that carries field values (a read, a list, a lookup, an export, an update or
//! batch item that asked for its values back) is a [`RecordOut`] with `fields` set, and the
//! only function that sets them is [`disclose`], which needs a [`DisclosureGrant`] from the
//! access decision. Writes answer with [`RecordOut::meta`]: the record's place and revision,
//! never its values. A new endpoint therefore cannot return values without deciding first:
//! the types leave it no other way.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;
use ward_store::RecordRow;

use crate::access::DisclosureGrant;
use crate::sealing::SubjectCiphers;
use crate::{Result, VaultError};

/// A record as shown by the API. `fields` is present only when an access decision allowed
/// them to be read.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
// `#[non_exhaustive]` would stop other crates only; the private field below stops every other
// module of this crate too, which is the point.
#[allow(clippy::manual_non_exhaustive)]
pub struct RecordOut {
    /// Record id.
    pub id: Uuid,
    /// Subject id.
    pub subject: Uuid,
    /// Collection.
    pub collection: String,
    /// Field values, normalized. Absent from write answers unless the write stated a purpose
    /// and asked for them (`return_fields`), which is decided like a read.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<BTreeMap<String, Value>>,
    /// Revision, for optimistic concurrency.
    pub revision: i64,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last update.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When retention removes it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Private, so that no other module can build a `RecordOut` with values in it.
    #[serde(skip)]
    _sealed: (),
}

impl RecordOut {
    /// A record without its values: what a write answers with by default.
    pub(crate) fn meta(row: &RecordRow) -> Self {
        Self {
            id: row.id,
            subject: row.subject,
            collection: row.collection.clone(),
            fields: None,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
            expires_at: row.expires_at,
            _sealed: (),
        }
    }
}

/// Opens `row` and returns it with its values, if `grant` covers the row's collection and the
/// row has not expired by the decision's time.
///
/// A row of another collection than the one decided on means the row is not what the index
/// or the caller said it was (a row moved in the database): an integrity failure, never a
/// disclosure. An expired row is simply gone.
pub(crate) fn disclose(
    grant: &DisclosureGrant,
    ciphers: &SubjectCiphers,
    row: &RecordRow,
) -> Result<RecordOut> {
    if !grant.covers_collection(&row.collection) {
        return Err(VaultError::Integrity);
    }
    if !grant.covers_expiry(row.expires_at) {
        return Err(VaultError::NotFound("record"));
    }
    let values = ciphers.open(row)?;
    Ok(RecordOut {
        fields: Some(values.into_iter().collect()),
        ..RecordOut::meta(row)
    })
}

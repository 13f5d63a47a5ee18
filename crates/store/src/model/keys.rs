//! Key rotation: retired keys, key changes and re-encryptions, key jobs, and the rewrapping the
//! vault does inside a rotating commit (the store finds the keys, the vault does the
//! cryptography, so neither needs the other's secrets or tables).

use super::*;

/// An older version of a subject key, kept while a record rotation still has records sealed
/// under it and destroyed as soon as none are left.
#[derive(Debug, Clone)]
pub struct RetiredKeyRow {
    /// Subject key version.
    pub version: u32,
    /// The key, sealed under the tenant key.
    pub wrapped_key: Vec<u8>,
    /// Tenant key version that wraps it.
    pub key_version: u32,
}

/// A subject key replaced by a record rotation.
#[derive(Debug, Clone)]
pub struct SubjectKeyChange {
    /// Subject id.
    pub subject: Uuid,
    /// The version the caller read as current; anything else makes the commit a conflict.
    pub expected_version: u32,
    /// The new key, sealed under the tenant key.
    pub wrapped_key: Vec<u8>,
}

/// A record re-sealed by a record rotation.
#[derive(Debug, Clone)]
pub struct Reencrypted {
    /// Subject id.
    pub subject: Uuid,
    /// Record id.
    pub id: Uuid,
    /// The revision that was read; a record changed since is skipped (it was re-sealed under
    /// the current key by whoever changed it).
    pub revision: i64,
    /// The new ciphertext.
    pub ciphertext: Vec<u8>,
    /// The subject key version that sealed it.
    pub key_version: u32,
}

/// A background key job (record rotation) and its progress.
#[derive(Debug, Clone)]
pub struct KeyJobRow {
    /// Job id.
    pub id: Uuid,
    /// The tenant whose records are re-encrypted.
    pub tenant: Uuid,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// Last subject whose records are done (subjects are walked in id order).
    pub cursor: Option<Uuid>,
    /// Subjects given a new key so far.
    pub subjects_done: u64,
    /// Records re-encrypted so far.
    pub records_done: u64,
    /// Records of the tenant when the job started.
    pub records_total: u64,
    /// Start time.
    pub started_at: OffsetDateTime,
    /// Last progress.
    pub updated_at: OffsetDateTime,
    /// End time.
    pub finished_at: Option<OffsetDateTime>,
    /// The process that holds the job, and until when.
    pub lease_owner: Option<String>,
    /// Lease expiry; another process may take the job over after it.
    pub lease_until: Option<OffsetDateTime>,
    /// Why a job failed.
    pub error: Option<String>,
}

/// Keys a tenant key rotation rewrapped, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeysRewrapped {
    /// Subjects' current keys.
    pub subjects: u64,
    /// Retired subject keys.
    pub retired_subject_keys: u64,
    /// Hold keys.
    pub holds: u64,
}

/// Whose key a [`WrappedKey`] is; the rewrapper needs it for the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    /// A subject's current key.
    Subject(Uuid),
    /// A subject's retired key (kept until a record rotation re-sealed its records).
    RetiredSubjectKey(Uuid),
    /// A legal hold's key.
    Hold(Uuid),
}

/// A key wrapped under a tenant key, as [`Op::RewrapTenantKeys`] hands it to its rewrapper.
#[derive(Debug)]
pub struct WrappedKey<'a> {
    /// Whose key it is.
    pub owner: KeyOwner,
    /// The tenant key version that wraps it now.
    pub key_version: u32,
    /// The wrapped key.
    pub wrapped: &'a [u8],
}

/// The key did not open under the tenant key it names (tampering or a foreign row).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("a wrapped key did not open under its tenant key")]
pub struct RewrapFailed;

type RewrapFn = dyn Fn(WrappedKey<'_>) -> Result<Vec<u8>, RewrapFailed> + Send + Sync;

/// The vault's half of a tenant key rotation, run by the store inside the rotating commit:
/// the store finds the keys, the vault does the cryptography, so neither needs the other's
/// secrets or tables.
#[derive(Clone)]
pub struct Rewrapper(std::sync::Arc<RewrapFn>);

impl Rewrapper {
    /// Wraps a rewrapping function.
    pub fn new(
        f: impl Fn(WrappedKey<'_>) -> Result<Vec<u8>, RewrapFailed> + Send + Sync + 'static,
    ) -> Self {
        Self(std::sync::Arc::new(f))
    }

    /// Rewraps one key.
    ///
    /// # Errors
    /// [`RewrapFailed`] when the key does not open under the old tenant key.
    pub fn rewrap(&self, key: WrappedKey<'_>) -> Result<Vec<u8>, RewrapFailed> {
        (self.0)(key)
    }
}

impl std::fmt::Debug for Rewrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rewrapper")
    }
}

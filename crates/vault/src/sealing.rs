//! A subject's record keys at one moment: the current version seals, every version still
//! alive opens.
//!
//! A subject normally has one key. While a record rotation runs it has two: the new one,
//! which seals every write from the moment it exists, and the retired one, which still opens
//! the records the rotation has not reached yet.

use std::sync::Arc;

use serde_json::{Map, Value};
use uuid::Uuid;
use ward_crypto::Cipher;
use ward_store::RecordRow;

use crate::record_seal::{live_record_aad, open_record, open_record_bytes};
use crate::{Result, VaultError};

/// Where a live record is: what its ciphertext is bound to besides its revision and key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordPlace<'a> {
    pub(crate) tenant: Uuid,
    pub(crate) subject: Uuid,
    pub(crate) record: Uuid,
    pub(crate) collection: &'a str,
}

/// The keys of one subject.
#[derive(Clone)]
pub(crate) struct SubjectCiphers {
    version: u32,
    current: Arc<Cipher>,
    older: Vec<(u32, Arc<Cipher>)>,
}

impl SubjectCiphers {
    /// Only the current key, version `version`.
    pub(crate) fn current(version: u32, cipher: Arc<Cipher>) -> Self {
        Self {
            version,
            current: cipher,
            older: Vec::new(),
        }
    }

    /// The version new ciphertexts are sealed under.
    pub(crate) fn version(&self) -> u32 {
        self.version
    }

    /// Whether records sealed under `version` can be opened.
    pub(crate) fn opens(&self, version: u32) -> bool {
        version == self.version || self.older.iter().any(|(v, _)| *v == version)
    }

    /// Adds an older (retired) version.
    pub(crate) fn add_older(&mut self, version: u32, cipher: Arc<Cipher>) {
        if !self.opens(version) {
            self.older.push((version, cipher));
        }
    }

    /// Seals a record's fields under the current key, bound to the record's place and the
    /// revision it is written as.
    pub(crate) fn seal(
        &self,
        place: RecordPlace<'_>,
        revision: i64,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        Ok(self.current.seal(
            plaintext,
            &live_record_aad(
                place.tenant,
                place.subject,
                place.record,
                place.collection,
                self.version,
                revision,
            ),
        )?)
    }

    /// Opens a record with the key version it names.
    pub(crate) fn open(&self, row: &RecordRow) -> Result<Map<String, Value>> {
        open_record(self.for_version(row.key_version)?, row)
    }

    /// Re-seals a record under `to` (version `to_version`) without parsing its fields: the
    /// plaintext only passes through, and is wiped when dropped.
    pub(crate) fn reseal(&self, row: &RecordRow, to: &Cipher, to_version: u32) -> Result<Vec<u8>> {
        let plain = open_record_bytes(self.for_version(row.key_version)?, row)?;
        // Re-sealing keeps the revision: a rotation changes the key, not the record.
        Ok(to.seal(
            &plain,
            &live_record_aad(
                row.tenant,
                row.subject,
                row.id,
                &row.collection,
                to_version,
                row.revision,
            ),
        )?)
    }

    /// Re-seals a record sealed under an older version under the current key.
    pub(crate) fn reseal_to_current(&self, row: &RecordRow) -> Result<Vec<u8>> {
        self.reseal(row, &self.current, self.version)
    }

    fn for_version(&self, version: u32) -> Result<&Cipher> {
        if version == self.version {
            return Ok(&self.current);
        }
        self.older
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, c)| c.as_ref())
            .ok_or_else(|| VaultError::Conflict(crate::error::Conflict::StaleKeyRead))
    }
}

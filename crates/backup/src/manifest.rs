//! Snapshot manifests: what a snapshot holds (entries as lists of chunks), signed with the
//! repository's Ed25519 key and encrypted like every object, written last so that a
//! snapshot exists only once all its chunks do.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::codec::{compress, decompress};
use crate::id::{ObjectId, SnapshotId};
use crate::keys::RepoKeys;
use crate::{BackupError, Result, Stream};

/// Rows per table and bytes of one stream's dump, as the store reported them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Rows per table.
    pub tables: BTreeMap<String, u64>,
    /// Bytes of the dump.
    pub bytes: u64,
}

/// One chunk of an entry: its id and plaintext length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// The object.
    pub id: ObjectId,
    /// Plaintext bytes.
    pub len: u32,
}

/// One named byte stream of a snapshot (the store's dump, the audit signing key file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Name: [`crate::DUMP_ENTRY`] or [`crate::SIGNING_KEY_ENTRY`].
    pub name: String,
    /// Total plaintext bytes.
    pub size: u64,
    /// The chunks, in order.
    pub chunks: Vec<ChunkRef>,
    /// The store dump's reusable sections and the chunks each spans (none in snapshots
    /// written before sections existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<EntrySection>,
}

/// A section of the store's dump (a large table, a range of the audit log) as whole chunks
/// of its entry, so that the next snapshot can reference them again while the store says
/// the section is unchanged, instead of reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntrySection {
    /// Its key, mark, digest, rows and bytes.
    #[serde(flatten)]
    pub section: ward_store::SectionInfo,
    /// Index of its first chunk in the entry's chunks.
    pub first_chunk: u64,
    /// How many chunks it spans.
    pub chunks: u64,
}

impl Entry {
    /// The chunks of `section`, if its range lies within the entry.
    #[must_use]
    pub fn section_chunks(&self, section: &EntrySection) -> Option<&[ChunkRef]> {
        let first = usize::try_from(section.first_chunk).ok()?;
        let end = first.checked_add(usize::try_from(section.chunks).ok()?)?;
        self.chunks.get(first..end)
    }
}

/// What a snapshot is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Repository format.
    pub format: u32,
    /// The snapshot's id.
    pub id: SnapshotId,
    /// Data or keys.
    pub stream: Stream,
    /// When the snapshot was taken (the store's read transaction began just after).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The newest earlier snapshot of the same stream when this one was taken.
    pub previous: Option<SnapshotId>,
    /// The byte streams.
    pub entries: Vec<Entry>,
    /// The store's count of rows per table.
    pub summary: Summary,
    /// The Ward version that wrote it.
    pub ward_version: String,
}

impl Manifest {
    /// Every distinct object the snapshot references.
    #[must_use]
    pub fn objects(&self) -> std::collections::BTreeSet<ObjectId> {
        self.entries
            .iter()
            .flat_map(|e| e.chunks.iter().map(|c| c.id))
            .collect()
    }

    /// The entry called `name`.
    #[must_use]
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Serializes, signs, compresses and encrypts the manifest for its path.
    pub(crate) fn seal(&self, keys: &RepoKeys) -> Result<Vec<u8>> {
        let body = serde_json::to_vec(self)
            .map_err(|e| BackupError::Task(format!("serializing a manifest: {e}")))?;
        let signature = keys.sign(&signed_message(&body));
        let mut plain = Vec::with_capacity(body.len() + 68);
        let len = u32::try_from(body.len())
            .map_err(|_| BackupError::Task("manifest larger than 4 GiB".into()))?;
        plain.extend_from_slice(&len.to_be_bytes());
        plain.extend_from_slice(&body);
        plain.extend_from_slice(&signature);
        keys.seal(&compress(&plain)?, &self.id.path())
    }

    /// Opens a sealed manifest stored under `id`'s path and checks its signature and that
    /// it names itself `id`.
    ///
    /// # Errors
    /// [`BackupError::BadManifest`] for any failure.
    pub(crate) fn open(keys: &RepoKeys, id: &SnapshotId, stored: &[u8]) -> Result<Self> {
        let bad = || BackupError::BadManifest(id.to_string());
        let packed = keys.open_sealed(stored, &id.path()).map_err(|_| bad())?;
        let plain = decompress(&packed).ok_or_else(bad)?;
        let len = plain
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(bad)?;
        let body = plain.get(4..4 + len).ok_or_else(bad)?;
        let signature = plain.get(4 + len..).ok_or_else(bad)?;
        if signature.len() != 64 || !keys.verify(&signed_message(body), signature) {
            return Err(bad());
        }
        let manifest: Self = serde_json::from_slice(body).map_err(|_| bad())?;
        if manifest.id != *id {
            return Err(bad());
        }
        Ok(manifest)
    }
}

/// What is signed: a context line, so this signature can never be mistaken for another use
/// of an Ed25519 key, then the manifest's JSON.
pub(crate) fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut m = b"ward backup manifest v1\n".to_vec();
    m.extend_from_slice(body);
    m
}

//! How a chunk becomes an object and back: zstd, then AES-256-GCM bound to the object's
//! path; opening checks the keyed hash of the plaintext against the object's name, so a
//! swapped, truncated or bit-flipped object is always caught.

use crate::id::ObjectId;
use crate::keys::RepoKeys;
use crate::{BackupError, Result};

/// zstd level: 1. A dump is mostly ciphertext and hashes, which no level compresses; on the
/// rest (audit JSON, ids, times) level 3 gained little over 1 and was the largest single
/// cost of a first backup (15 % of its CPU, BENCHMARKS "Backups"), and backups of a live
/// service must not eat its CPU. Any level decompresses the same way.
const ZSTD_LEVEL: i32 = 1;

/// Compresses and encrypts one chunk for storage under `id`'s path.
pub(crate) fn encode_chunk(keys: &RepoKeys, id: &ObjectId, plain: &[u8]) -> Result<Vec<u8>> {
    let packed = compress(plain)?;
    keys.seal(&packed, &id.path())
}

/// Opens an object stored under `id`'s path: decrypts, decompresses and checks the keyed
/// hash. `None` for any integrity failure (the caller names object and location).
pub(crate) fn decode_chunk(keys: &RepoKeys, id: &ObjectId, stored: &[u8]) -> Option<Vec<u8>> {
    let packed = keys.open_sealed(stored, &id.path()).ok()?;
    let plain = zstd::bulk::decompress(&packed, MAX_OBJECT).ok()?;
    (keys.chunk_id(&plain) == *id).then_some(plain)
}

/// The largest plaintext an object may expand to (chunks are at most 1 MiB; manifests of
/// very large snapshots are bigger, so leave room).
pub(crate) const MAX_OBJECT: usize = 256 * 1024 * 1024;

pub(crate) fn compress(plain: &[u8]) -> Result<Vec<u8>> {
    zstd::bulk::compress(plain, ZSTD_LEVEL).map_err(|e| BackupError::io("compressing", e))
}

pub(crate) fn decompress(packed: &[u8]) -> Option<Vec<u8>> {
    zstd::bulk::decompress(packed, MAX_OBJECT).ok()
}

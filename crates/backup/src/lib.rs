//! Ward's backups: encrypted, deduplicated, signed snapshots kept in several locations.
//!
//! A **repository** lives in one or more **locations** (local directories, S3-compatible
//! bucket prefixes), each holding a full copy:
//!
//! ```text
//! config/00000001        repository config (JSON): id, chunking, repository key wrapped
//!                        under each root key version, manifest signing public key
//! objects/ab/ab12…       chunks: AES-256-GCM(zstd(plaintext)), named by keyed BLAKE3 of
//!                        the plaintext, associated data = repository id + path
//! snapshots/<id>         manifests: AES-256-GCM(zstd(json ‖ Ed25519 signature))
//! ```
//!
//! A snapshot is one **stream** of the store ([`Stream::Data`] or [`Stream::Keys`]) cut
//! into content-defined chunks (FastCDC 2020), so an unchanged region of the store is the
//! same chunks as last time and is not stored again. Objects are written create-only and
//! never modified; the manifest is written last. Restores read each chunk from the first
//! location where it decrypts and hashes correctly; `verify` reads every copy; `repair`
//! replaces bad copies from good ones; `prune` deletes whole expired snapshots, then
//! unreferenced objects.
//!
//! Invariants: nothing in a location is in plaintext except the config's public fields;
//! a wrong root key is detected before anything is written; every object opens only at its
//! own path in its own repository; a manifest exists only if all its objects were written
//! to that location.

#![warn(missing_docs)]

mod codec;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod id;
mod keys;
mod location;
mod manifest;
mod prune;
mod reader;
mod repository;
mod retention;
mod store_io;
mod verify;
mod writer;

use serde::{Deserialize, Serialize};

pub use error::{BackupError, Result};
pub use id::{ObjectId, SnapshotId};
pub use keys::{ChunkingParams, FORMAT, RepoConfig, RepoKeys, WRAP_LABEL};
pub use location::{Location, LocationSpec, PutOutcome, S3Options};
pub use manifest::{ChunkRef, Entry, EntrySection, Manifest, Summary};
pub use prune::PruneReport;
pub use repository::{OpenMode, Repository, Unreachable};
pub use retention::Retention;
pub use store_io::{BackupReport, RestoreReport};
pub use verify::{Fault, Problem, RepairReport, VerifyReport};
pub use writer::{EntryInput, LocationReport, ProgressFn, SnapshotReport};

/// Name of the entry holding the store's dump of a stream.
pub const DUMP_ENTRY: &str = "store.dump";
/// Name of the Keys snapshot entry holding the data directory's `audit-signing.key`.
pub const SIGNING_KEY_ENTRY: &str = "audit-signing.key";

/// The two backup streams, kept for different lengths of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Everything that is not key material (ciphertext, audit log, metadata).
    Data,
    /// Wrapped keys, the erasure ledger and the audit signing key.
    Keys,
}

impl Stream {
    /// `data` or `keys`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Keys => "keys",
        }
    }

    /// Parses `data` or `keys`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "data" => Some(Self::Data),
            "keys" => Some(Self::Keys),
            _ => None,
        }
    }
}

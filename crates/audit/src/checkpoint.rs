//! Signed tree heads ("checkpoints") of the audit log.
//!
//! A Merkle root alone proves nothing to an outsider: whoever can rewrite the log can
//! recompute the root. A checkpoint binds the tree size, the root and the event chain value
//! to a moment with an Ed25519 signature by the server's audit key, so an auditor holding
//! the public key can later prove that no event covered by the checkpoint was edited,
//! deleted, inserted or reordered — and, through consistency proofs, that later trees
//! only ever extended earlier ones.
//!
//! # Signed message (format `v1`)
//!
//! The signature is a plain Ed25519 signature (RFC 8032, not pre-hashed) over these UTF-8
//! bytes, each line ended by a single `\n` (0x0A), including the last:
//!
//! ```text
//! ward.audit.checkpoint.v1
//! {origin}
//! {tree_size}
//! {root}
//! {chain}
//! {timestamp}
//! ```
//!
//! * `origin` — the log's name, a single line (it must not contain `\n`);
//! * `tree_size` — number of events covered, unsigned decimal without leading zeros;
//! * `root` — the RFC 9162 Merkle tree hash of events `0..tree_size`, standard base64
//!   (RFC 4648 §4, with padding);
//! * `chain` — the per-event chain value after event `tree_size - 1` (32 zero bytes for an
//!   empty log), standard base64 with padding;
//! * `timestamp` — signing time in Unix seconds, signed decimal.
//!
//! The strings in a [`Checkpoint`]'s JSON are exactly the strings on these lines, so a third
//! party can rebuild the message from the JSON alone and check the base64 `signature` with
//! any Ed25519 implementation. The first line separates this signature from any other use
//! of the key; the line structure is unambiguous because every field but `origin` is
//! newline-free by construction and `origin` is required to be.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::merkle::Hash;

/// The first line of every signed checkpoint message (domain separation).
pub const CHECKPOINT_CONTEXT: &str = "ward.audit.checkpoint.v1";

/// Why a key could not be loaded or a checkpoint could not be trusted.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Reading or creating the key file failed.
    #[error("audit signing key {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The key file can be read by group or others, so the key may already be known to
    /// someone who could forge checkpoints; refusing is safer than signing with it.
    #[error(
        "audit signing key {path} has mode {mode:o}; it must not be readable by group or others (chmod 600)"
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key path exists but is not a regular file.
    #[error("audit signing key {path} is not a regular file")]
    NotAFile {
        /// The key path.
        path: PathBuf,
    },
    /// The key file does not hold an Ed25519 PKCS#8 document.
    #[error("audit signing key {path} is not a valid Ed25519 PKCS#8 key: {reason}")]
    InvalidKey {
        /// The key file.
        path: PathBuf,
        /// What aws-lc rejected.
        reason: String,
    },
    /// The system could not produce a new key.
    #[error("could not generate an audit signing key")]
    KeyGeneration,
    /// A base64 field did not decode to the expected number of bytes.
    #[error("checkpoint field `{field}` is not valid base64 of {expected} bytes")]
    MalformedField {
        /// The JSON field name (or `public_key`).
        field: &'static str,
        /// The byte length it must decode to.
        expected: usize,
    },
    /// The origin contains a newline, which would make the signed message ambiguous.
    #[error("checkpoint origin must be a single line")]
    MalformedOrigin,
    /// The signature does not match the checkpoint's fields under the given key.
    #[error("checkpoint signature for tree size {tree_size} is not valid for this key")]
    BadSignature {
        /// The tree size the checkpoint claims.
        tree_size: u64,
    },
}

/// An Ed25519 public key that verifies checkpoints. Serialized as standard base64.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Wraps raw key bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 key bytes (RFC 8032 encoding).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses the standard-base64 form used in config files and JSON.
    ///
    /// # Errors
    /// [`CheckpointError::MalformedField`] unless the text is base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, CheckpointError> {
        decode_fixed::<32>(text, "public_key").map(Self)
    }

    /// The standard-base64 form.
    #[must_use]
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl FromStr for PublicKey {
    type Err = CheckpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_base64(s)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

/// The server's private audit key. It signs checkpoints and nothing else.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print private material; the public half identifies the key.
        f.debug_struct("SigningKey")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads the PKCS#8 v2 key at `path`, or creates one there if no file exists.
    /// Returns whether the key was created, so the caller can log the new public key
    /// for auditors.
    ///
    /// A new file is created with `create_new` and mode 0600 in one step, so it is never
    /// readable by others, not even briefly, and a concurrent creator cannot be
    /// overwritten (the loser of the race loads the winner's key). An existing file that
    /// group or others can read is refused: its secrecy can no longer be vouched for.
    ///
    /// # Errors
    /// [`CheckpointError::Io`], [`CheckpointError::InsecurePermissions`],
    /// [`CheckpointError::NotAFile`], [`CheckpointError::InvalidKey`] or
    /// [`CheckpointError::KeyGeneration`].
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), CheckpointError> {
        let io_err = |source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        };
        match File::open(path) {
            Ok(file) => return Self::load(path, file).map(|key| (key, false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| CheckpointError::KeyGeneration)?;
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Someone else created the key between our open and create: use theirs.
                let file = File::open(path).map_err(io_err)?;
                return Self::load(path, file).map(|key| (key, false));
            }
            Err(e) => return Err(io_err(e)),
        };
        file.write_all(pkcs8.as_ref()).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        // Make the new directory entry durable too, so a crash cannot lose a key whose
        // public half has already been published. Best effort: some filesystems refuse
        // to open or sync directories.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(dir) = File::open(dir)
        {
            let _ = dir.sync_all();
        }
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| {
            CheckpointError::InvalidKey {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
        Ok((Self { pair }, true))
    }

    fn load(path: &Path, mut file: File) -> Result<Self, CheckpointError> {
        let io_err = |source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        };
        // Check the opened file itself (fstat), not the path, so a swapped-in file
        // cannot slip between the check and the read.
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(CheckpointError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(CheckpointError::InsecurePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let mut der = Vec::with_capacity(128);
        file.read_to_end(&mut der).map_err(io_err)?;
        let parsed = Ed25519KeyPair::from_pkcs8(&der);
        // Best-effort scrub of the private key bytes before the buffer is freed.
        der.fill(0);
        std::hint::black_box(&der);
        let pair = parsed.map_err(|e| CheckpointError::InvalidKey {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Self { pair })
    }

    /// A fresh in-memory key, for tests and benchmarks.
    ///
    /// # Errors
    /// [`CheckpointError::KeyGeneration`] if the system cannot produce a key.
    pub fn generate() -> Result<Self, CheckpointError> {
        let pair = Ed25519KeyPair::generate().map_err(|_| CheckpointError::KeyGeneration)?;
        Ok(Self { pair })
    }

    /// The public half, to hand to auditors.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(bytes)
    }

    /// Signs a checkpoint over the tree of `tree_size` events with the given root and
    /// chain value, at `timestamp` (Unix seconds).
    ///
    /// `origin` must be a single line; a checkpoint whose origin contains `\n` is signed
    /// as given but [`Checkpoint::verify`] always rejects it.
    #[must_use]
    pub fn sign(
        &self,
        origin: &str,
        tree_size: u64,
        root: Hash,
        chain: Hash,
        timestamp: i64,
    ) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            origin: origin.to_owned(),
            tree_size,
            root: STANDARD.encode(root),
            chain: STANDARD.encode(chain),
            timestamp,
            signature: String::new(),
        };
        let signature = self.pair.sign(&checkpoint.signed_message());
        checkpoint.signature = STANDARD.encode(signature.as_ref());
        checkpoint
    }
}

/// A signed tree head: what the log looked like at `tree_size`, vouched for by the key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name (single line), so checkpoints of different logs are not confused.
    pub origin: String,
    /// Number of events covered.
    pub tree_size: u64,
    /// RFC 9162 Merkle root of events `0..tree_size`, standard base64.
    pub root: String,
    /// Chain value after event `tree_size - 1`, standard base64.
    pub chain: String,
    /// Signing time, Unix seconds.
    pub timestamp: i64,
    /// Ed25519 signature over [`Checkpoint::signed_message`], standard base64.
    pub signature: String,
}

impl Checkpoint {
    /// The exact bytes the signature covers (see the module docs for the format).
    #[must_use]
    pub fn signed_message(&self) -> Vec<u8> {
        format!(
            "{CHECKPOINT_CONTEXT}\n{}\n{}\n{}\n{}\n{}\n",
            self.origin, self.tree_size, self.root, self.chain, self.timestamp
        )
        .into_bytes()
    }

    /// Checks that the fields are well formed and that `key` signed exactly them.
    ///
    /// # Errors
    /// [`CheckpointError::MalformedOrigin`] or [`CheckpointError::MalformedField`] for a
    /// checkpoint that could not have been produced by [`SigningKey::sign`];
    /// [`CheckpointError::BadSignature`] if the signature does not match.
    pub fn verify(&self, key: &PublicKey) -> Result<(), CheckpointError> {
        // Well-formedness first: it is what makes the signed message unambiguous.
        if self.origin.contains('\n') {
            return Err(CheckpointError::MalformedOrigin);
        }
        self.root_hash()?;
        self.chain_hash()?;
        let signature = decode_fixed::<64>(&self.signature, "signature")?;
        UnparsedPublicKey::new(&ED25519, key.as_bytes())
            .verify(&self.signed_message(), &signature)
            .map_err(|_| CheckpointError::BadSignature {
                tree_size: self.tree_size,
            })
    }

    /// The decoded Merkle root. Only meaningful after [`Checkpoint::verify`].
    ///
    /// # Errors
    /// [`CheckpointError::MalformedField`] unless `root` is base64 of 32 bytes.
    pub fn root_hash(&self) -> Result<Hash, CheckpointError> {
        decode_fixed::<32>(&self.root, "root")
    }

    /// The decoded chain value. Only meaningful after [`Checkpoint::verify`].
    ///
    /// # Errors
    /// [`CheckpointError::MalformedField`] unless `chain` is base64 of 32 bytes.
    pub fn chain_hash(&self) -> Result<Hash, CheckpointError> {
        decode_fixed::<32>(&self.chain, "chain")
    }
}

fn decode_fixed<const N: usize>(
    text: &str,
    field: &'static str,
) -> Result<[u8; N], CheckpointError> {
    const { assert!(N <= 64, "decode_fixed buffer holds at most 64 bytes") };
    let malformed = CheckpointError::MalformedField { field, expected: N };
    // Canonical standard base64 of N bytes has a known length; checking it first keeps
    // oversized input from being decoded at all.
    if text.len() != N.div_ceil(3) * 4 {
        return Err(malformed);
    }
    // Room for the decoder's conservative size estimate; N is at most 64 here.
    let mut buf = [0u8; 72];
    match STANDARD.decode_slice(text, &mut buf) {
        Ok(len) if len == N => {
            let mut out = [0u8; N];
            out.copy_from_slice(&buf[..N]);
            Ok(out)
        }
        _ => Err(malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_fixed_rejects_wrong_lengths_and_alphabets() {
        let good = STANDARD.encode([7u8; 32]);
        assert_eq!(decode_fixed::<32>(&good, "root").unwrap(), [7u8; 32]);
        assert!(decode_fixed::<32>(&STANDARD.encode([7u8; 31]), "root").is_err());
        assert!(decode_fixed::<32>(&STANDARD.encode([7u8; 33]), "root").is_err());
        assert!(decode_fixed::<32>(&good.replace('=', ""), "root").is_err());
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode([0xfbu8; 32]);
        assert!(decode_fixed::<32>(&url_safe, "root").is_err());
        assert!(decode_fixed::<64>(&STANDARD.encode([1u8; 64]), "signature").is_ok());
    }
}

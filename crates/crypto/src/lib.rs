//! Ward's cryptography: the key hierarchy, envelope encryption, keyed hashes and tokens.
//!
//! The hierarchy is **root key → tenant key → subject key → record**. Every key below the
//! root is random and stored only wrapped (AES-256-GCM) by its parent, so rotating a parent
//! means rewrapping a handful of small blobs, and destroying a subject key makes that
//! subject's records unreadable everywhere at once ("crypto-shredding", NIST SP 800-88).
//!
//! Every ciphertext is bound to its place by associated data built with [`aad`], so a row
//! copied to another record, subject, tenant or key version fails to decrypt instead of
//! silently showing someone else's data.
//!
//! All primitives come from `aws-lc-rs` (a vetted library with a FIPS 140-3 validated
//! mode); this crate only composes them. Key material lives in zeroize-on-drop buffers and
//! no type here prints a key through `Debug` or `Display`.

#![warn(missing_docs)]

pub mod aad;
mod cipher;
mod error;
mod hash;
mod key;
mod keyring;
mod provider;
mod token;
mod webhook;

pub use cipher::{ALGORITHM_AES_256_GCM, Cipher, NONCE_LEN, SEAL_OVERHEAD, TAG_LEN};
pub use error::CryptoError;
pub use hash::Hasher;
pub use key::{KEY_LEN, SecretKey, ct_eq, random_bytes, sha256};
pub use keyring::{KeyVersion, RootKeyring};
pub use provider::{
    CommandKeyProvider, DEFAULT_ROOT_KEY_VAR, EnvKeyProvider, FileKeyProvider, KeyProvider,
};
pub use token::{Token, token_hash};
pub use webhook::{
    WEBHOOK_REPLAY_WINDOW_SECS, WEBHOOK_SECRET_KEY_LABEL, verify_webhook_signature,
    webhook_signature,
};

/// The key-derivation label of the platform key that seals operator incidents' free text
/// (title, notes); a tenant incident's text is sealed under the tenant's free-text key.
pub const INCIDENT_TEXT_KEY_LABEL: &str = "ward/incident-text/v1";

/// Re-exported so callers can hold plaintext from [`Cipher::open`] without naming the
/// `zeroize` crate themselves.
pub use zeroize::Zeroizing;

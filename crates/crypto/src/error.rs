//! The crate's single error type.

use std::path::PathBuf;

use crate::keyring::KeyVersion;

/// Everything that can go wrong in `ward-crypto`.
///
/// No variant ever carries key material, plaintext or a token: messages are safe to log.
/// Integrity failures are deliberately a single bare variant so that callers (and
/// attackers) learn nothing about *why* a ciphertext was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The system random number generator failed. Nothing can be encrypted safely, so
    /// callers should fail the request rather than retry with weaker randomness.
    #[error("the system random number generator failed")]
    Random,

    /// A sealed value did not authenticate: it was tampered with, truncated, opened with
    /// the wrong key or the wrong associated data, or has an unknown algorithm id.
    #[error("ciphertext failed authentication (tampered, misplaced, or wrong key)")]
    Integrity,

    /// An `aws-lc-rs` operation failed for a reason other than authentication (for
    /// example key setup). The field names the operation, never its inputs.
    #[error("cryptographic operation failed: {0}")]
    Primitive(&'static str),

    /// Bytes presented as a 256-bit key had another length (for example an unwrapped
    /// payload that authenticated but was not a key).
    #[error("key material has the wrong length: expected 32 bytes, got {actual}")]
    InvalidKeyLength {
        /// The length actually found.
        actual: usize,
    },

    /// A key-derivation label was empty; labels are what separate derived keys, so an
    /// empty one is always a bug.
    #[error("key derivation label must not be empty")]
    EmptyLabel,

    /// A token prefix was empty or contained characters outside `[A-Za-z0-9_]`, which
    /// would make tokens hard to recognise in logs and secret scanners.
    #[error("token prefix must be non-empty ASCII letters, digits or '_'")]
    InvalidTokenPrefix,

    /// A keyring text could not be parsed. Only the line number and a fixed reason are
    /// reported, never the line itself, because it may contain key material.
    #[error("keyring line {line}: {reason}")]
    KeyringFormat {
        /// 1-based line number in the keyring text.
        line: usize,
        /// What was wrong with it.
        reason: &'static str,
    },

    /// A keyring contained no keys at all.
    #[error("keyring contains no keys")]
    EmptyKeyring,

    /// A keyring listed the same version twice.
    #[error("keyring lists key version {0} more than once")]
    DuplicateKeyVersion(KeyVersion),

    /// A key version was requested that the keyring does not hold.
    #[error("key version {0} is not in the keyring")]
    UnknownKeyVersion(KeyVersion),

    /// Destroying the current root key version was refused: everything written since the
    /// last rotation depends on it.
    #[error("key version {0} is the current version and cannot be destroyed")]
    CurrentKeyVersion(KeyVersion),

    /// Rotation would need a version number above `u32::MAX`.
    #[error("no key version numbers left")]
    KeyVersionExhausted,

    /// A key file is readable or writable by group or other users, so the root key may
    /// already have leaked (or been replaced). Fix with `chmod 600`.
    #[error(
        "key file {} has mode {mode:04o}; it must not be accessible by group or others (chmod 600)",
        path.display()
    )]
    InsecureKeyFile {
        /// The offending file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// An I/O error while reading or writing key material.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. "reading key file ./ward-data/root.key".
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The environment variable holding the keyring was missing or not UTF-8.
    #[error("environment variable {name}: {reason}")]
    EnvVar {
        /// The variable's name.
        name: String,
        /// What was wrong with it.
        reason: &'static str,
    },

    /// An external key command could not be started or exited unsuccessfully.
    #[error("key command {program}: {message}")]
    ProviderCommand {
        /// The program that was run.
        program: String,
        /// The failure: the first line of its stderr, or how it ended.
        message: String,
    },

    /// `store` was called on a provider that cannot persist keys (environment variable,
    /// external command); the operator must install the new keyring there themselves.
    #[error(
        "this key provider is read-only; store the new keyring with the provider's own tooling"
    )]
    ReadOnlyProvider,
}

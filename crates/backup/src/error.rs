//! The one error type of the backup crate.

/// What can go wrong reading or writing a backup repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// A location string is neither a directory path nor an `s3://bucket/prefix` URL.
    #[error("location {location:?}: {reason}")]
    InvalidLocation {
        /// The location as given.
        location: String,
        /// Why it was refused.
        reason: String,
    },
    /// No location was configured.
    #[error("no backup location configured (give --location or a [backup] table)")]
    NoLocation,
    /// The root key does not open the repository key: the repository was made under
    /// another root key. Detected before anything is written or restored.
    #[error(
        "the root key does not open this backup repository (made under another root key, or \
         its config was tampered with); nothing was written"
    )]
    WrongRootKey,
    /// Locations hold different repositories (different repository ids).
    #[error("location {location} holds another backup repository than {first}")]
    MixedRepositories {
        /// The first location's name.
        first: String,
        /// The location that differs.
        location: String,
    },
    /// No location could be read.
    #[error("no backup location is reachable: {0}")]
    NoReachableLocation(String),
    /// The repository does not exist in any location yet.
    #[error("no backup repository in the given location(s): run `ward backup run` first")]
    NoRepository,
    /// A snapshot id that names no snapshot.
    #[error("no snapshot {0} in any location")]
    UnknownSnapshot(String),
    /// An object failed its integrity check (tampered, truncated or corrupt) everywhere.
    #[error("object {object} is missing or corrupt in every location")]
    ObjectUnavailable {
        /// The object's path in the repository.
        object: String,
    },
    /// A manifest's signature, encryption or format is not valid.
    #[error("snapshot manifest {0} is corrupt or its signature does not verify")]
    BadManifest(String),
    /// The repository's format is newer than this Ward understands.
    #[error("backup repository format {0} is not supported by this Ward")]
    UnsupportedFormat(u32),
    /// An object-store operation failed.
    #[error("location {location}: {source}")]
    Location {
        /// The location's name.
        location: String,
        /// The client's error.
        #[source]
        source: object_store::Error,
    },
    /// A key operation failed.
    #[error(transparent)]
    Crypto(#[from] ward_crypto::CryptoError),
    /// The store refused or failed an export or import.
    #[error(transparent)]
    Store(#[from] ward_store::StoreError),
    /// Local I/O (chunking input, compression).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A background task ended abnormally.
    #[error("backup task failed: {0}")]
    Task(String),
    /// A restore target that already holds data.
    #[error("restore target {0} is not empty")]
    TargetNotEmpty(String),
}

impl BackupError {
    pub(crate) fn io(context: &'static str, source: std::io::Error) -> Self {
        Self::Io { context, source }
    }
}

/// Short for results of this crate.
pub type Result<T, E = BackupError> = std::result::Result<T, E>;

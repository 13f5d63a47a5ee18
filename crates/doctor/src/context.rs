//! What the checks look at: the deployment as configured ([`Setup`]) and, once the database
//! check has opened it (or the running server handed it over), its store.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use time::OffsetDateTime;
use ward_audit::{PublicKey, SigningKey};
use ward_crypto::KeyProvider;
use ward_store::Store;

/// Where a deployment keeps things, as its configuration says.
#[derive(Clone, Default)]
pub struct Setup {
    /// The data directory (databases on SQLite, keys, the audit signing key).
    pub data_dir: Option<PathBuf>,
    /// The database.
    pub database: Option<Database>,
    /// The root key provider.
    pub root_key: Option<RootKey>,
    /// The policy file.
    pub policy: Option<PathBuf>,
    /// The TLS certificate chain `ward serve` presents.
    pub tls_cert: Option<PathBuf>,
    /// How often `ward serve` runs retention.
    pub retention_interval: Option<Duration>,
    /// The backup schedule, when the config's `[backup]` table names locations.
    pub backup: Option<crate::BackupSchedule>,
}

/// The database of a deployment.
#[derive(Clone)]
pub enum Database {
    /// The embedded SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (may hold a password: never printed).
    Postgres(String),
}

/// The root key provider, and its file when it is the file provider.
#[derive(Clone)]
pub struct RootKey {
    /// Loads the keyring.
    pub provider: Arc<dyn KeyProvider>,
    /// The key file, for the `file` provider.
    pub file: Option<PathBuf>,
}

/// Everything a check may look at.
pub struct Context {
    /// The configuration.
    pub setup: Setup,
    /// The time the checks compare against (the vault's clock on a server).
    pub now: OffsetDateTime,
    store: OnceLock<Arc<dyn Store>>,
    audit_key: Option<PublicKey>,
}

impl Context {
    /// Checks of `setup` at `now`; the database check opens the store.
    pub fn new(setup: Setup, now: OffsetDateTime) -> Self {
        Self {
            setup,
            now,
            store: OnceLock::new(),
            audit_key: None,
        }
    }

    /// Checks of a running deployment, over its own store.
    #[must_use]
    pub fn with_store(self, store: Arc<dyn Store>) -> Self {
        let _ = self.store.set(store);
        self
    }

    /// The key that verifies the deployment's checkpoints (otherwise read from the data
    /// directory's `audit-signing.key`).
    #[must_use]
    pub fn with_audit_key(mut self, key: PublicKey) -> Self {
        self.audit_key = Some(key);
        self
    }

    /// The store, once open.
    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.store.get()
    }

    pub(crate) fn set_store(&self, store: Arc<dyn Store>) {
        let _ = self.store.set(store);
    }

    /// The checkpoint verification key: given, or from the signing key file (read only if it
    /// exists; a missing one is never created).
    pub(crate) fn audit_key(&self) -> Result<PublicKey, String> {
        if let Some(k) = &self.audit_key {
            return Ok(*k);
        }
        let Some(dir) = &self.setup.data_dir else {
            return Err("no data directory holds the audit signing key".into());
        };
        let path = dir.join(crate::files::SIGNING_KEY);
        if !path.is_file() {
            return Err(format!("no audit signing key at {}", path.display()));
        }
        SigningKey::load_or_create(&path)
            .map(|(k, _)| k.public_key())
            .map_err(|e| format!("reading {}: {e}", path.display()))
    }

    /// The retention interval `ward serve` runs with (one hour by default).
    pub(crate) fn retention_interval(&self) -> Duration {
        self.setup
            .retention_interval
            .unwrap_or(Duration::from_secs(3600))
    }
}

//! Opening a data directory: policy, keys, store, vault. `ward init` and `ward serve` share it.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Args;
use ward_audit::SigningKey;
use ward_crypto::{CommandKeyProvider, EnvKeyProvider, FileKeyProvider, KeyProvider, RootKeyring};
use ward_policy::Policy;
use ward_store::{SqliteStore, Store};
use ward_vault::{SystemClock, Vault, VaultConfig};

use crate::Outcome;
use crate::config::{KeyProviderKind, Settings, StoreArgs};

#[derive(Args)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

/// An opened data directory.
pub(crate) struct Opened {
    pub(crate) vault: Vault,
    pub(crate) store: Arc<dyn Store>,
}

/// `ward init`: everything `serve` does before it listens.
pub(crate) async fn init(args: InitArgs) -> anyhow::Result<Outcome> {
    let (settings, _) = args.store.resolve()?;
    let opened = open(&settings).await?;
    announce_operator_token(&opened.vault).await?;
    println!("data directory ready: {}", settings.data_dir.display());
    Ok(Outcome::Ok)
}

/// Opens (creating on first run) the data directory described by `settings`.
pub(crate) async fn open(settings: &Settings) -> anyhow::Result<Opened> {
    open_with_clock(settings, Arc::new(SystemClock)).await
}

/// Like [`open`], with an explicit clock (benchmarks move time to make records expire).
pub(crate) async fn open_with_clock(
    settings: &Settings,
    clock: Arc<dyn ward_vault::Clock>,
) -> anyhow::Result<Opened> {
    open_wrapped(settings, clock, |store| store).await
}

/// Like [`open_with_clock`], with the store put behind `wrap` (the bench measures the vault
/// over a store that drops audit events this way).
pub(crate) async fn open_wrapped(
    settings: &Settings,
    clock: Arc<dyn ward_vault::Clock>,
    wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
) -> anyhow::Result<Opened> {
    let dir = &settings.data_dir;
    create_private_dir(dir)?;
    let policy = load_policy(settings)?;
    let (root_keys, provider) = load_root_keys(settings)?;
    let store: Arc<dyn Store> = match &settings.database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Arc::new(
                ward_store::PostgresStore::open(url)
                    .await
                    .context("opening PostgreSQL (--database-url)")?,
            )
        }
        Some(_) => {
            bail!("--database-url must be a postgres:// URL (SQLite is the default without it)")
        }
        None => {
            private_sqlite_files(dir)?;
            let store = SqliteStore::open(&dir.join("ward.db"))
                .await
                .with_context(|| format!("opening database in {}", dir.display()))?;
            private_sqlite_files(dir)?;
            Arc::new(store)
        }
    };
    let store = wrap(store);
    let signing_key_path = dir.join("audit-signing.key");
    let (signing_key, _) = SigningKey::load_or_create(&signing_key_path)
        .with_context(|| format!("audit signing key {}", signing_key_path.display()))?;
    let vault = Vault::new(VaultConfig {
        store: store.clone(),
        policy,
        root_keys,
        signing_key,
        clock,
        // A configured name: the data directory's path would tell every verifier about
        // this machine's file system.
        origin: settings.origin.clone(),
        limits: settings.limits,
    })?;
    vault.set_key_provider(provider);
    let sealed = vault
        .seal_legacy_free_text()
        .await
        .context("sealing request text written in clear by an older Ward")?;
    if sealed > 0 {
        tracing::info!(
            requests = sealed,
            "sealed request text an older Ward stored in clear"
        );
    }
    Ok(Opened { vault, store })
}

/// Prints the operator token if this is the first start. It is shown exactly once.
pub(crate) async fn announce_operator_token(vault: &Vault) -> anyhow::Result<()> {
    if let Some(token) = vault.bootstrap_operator().await? {
        println!(
            "Operator token (shown once, store it now): {}",
            token.as_str()
        );
    }
    Ok(())
}

/// The data directory holds the databases and, with the file key provider, the root key:
/// anyone else who can list or read it can copy them. An existing directory that others can
/// reach is refused rather than silently tightened, because whatever made it so (a shared
/// mount, a deployment script) would undo a fix and the operator has to know; a directory
/// Ward creates itself is made private.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if dir.is_dir() {
        return check_private_dir(dir);
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("reading data directory {}", dir.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making data directory {} private", dir.display()))?;
        tracing::warn!(path = %dir.display(), mode = format!("{mode:o}"), "made the new data directory private (mode 700)");
    }
    Ok(())
}

/// Refuses a data directory that group or others may access (the check of
/// [`create_private_dir`] for commands that open an existing directory only).
pub(crate) fn check_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("reading data directory {}", dir.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "data directory {} has mode {mode:o}: group or others can access it, and it holds the \
             databases (and possibly the root key); make it private with `chmod 700 {}`",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Files Ward's databases keep in the data directory. SQLite creates the WAL and shared-memory
/// files with the permissions of the database file, so a database made private before it
/// grows them keeps them private.
const SQLITE_FILES: [&str; 6] = [
    "ward.db",
    "ward.db-wal",
    "ward.db-shm",
    "ward.keys.db",
    "ward.keys.db-wal",
    "ward.keys.db-shm",
];

/// Makes the database files private: new ones are already (umask), files an older Ward left
/// readable by others are tightened.
fn private_sqlite_files(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for name in SQLITE_FILES {
        let path = dir.join(name);
        match std::fs::metadata(&path) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("making {} private", path.display()))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    Ok(())
}

/// Creates (or truncates) a file only its owner can read, whatever the umask; an existing
/// file is made private too.
pub(crate) fn create_private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} private", path.display()))?;
    Ok(file)
}

pub(crate) fn load_policy(settings: &Settings) -> anyhow::Result<Policy> {
    let path = match &settings.policy {
        Some(p) => p.clone(),
        None => {
            let p = settings.data_dir.join("policy.toml");
            if !p.exists() {
                use std::io::Write as _;
                create_private_file(&p)?
                    .write_all(ward_policy::EXAMPLE_POLICY.as_bytes())
                    .with_context(|| format!("writing example policy {}", p.display()))?;
                tracing::warn!(path = %p.display(), "no policy given: wrote the example policy; edit it to declare your own promises");
            }
            p
        }
    };
    match Policy::load(&path) {
        Ok(p) => Ok(p),
        Err(e) => {
            for d in &e.diagnostics {
                eprintln!("{d}");
            }
            bail!(
                "policy {} is invalid ({} error(s))",
                path.display(),
                e.diagnostics.len()
            )
        }
    }
}

fn load_root_keys(settings: &Settings) -> anyhow::Result<(RootKeyring, Arc<dyn KeyProvider>)> {
    match settings.key_provider {
        KeyProviderKind::File => {
            let path = settings.key_file();
            let provider = FileKeyProvider::new(&path);
            let ring = if settings.key_file.is_some() {
                // A configured key file (a systemd credential, a mounted secret) is only read:
                // creating one where the operator expects theirs would hide a mistake.
                provider.load().with_context(|| provider.describe())?
            } else {
                let (ring, created) = provider
                    .load_or_create()
                    .with_context(|| provider.describe())?;
                if created {
                    tracing::warn!(path = %path.display(), "created a new root key file (mode 0600)");
                }
                ring
            };
            if !key_beside_data(&path, &settings.data_dir) {
                return Ok((ring, Arc::new(provider)));
            }
            eprintln!(
                "WARNING: the root key is a file next to the data ({}). Anyone who copies the data \
                 directory can decrypt it. In production use --key-provider env or command \
                 (an HSM or KMS) and keep the key away from the data and its backups.",
                path.display()
            );
            Ok((ring, Arc::new(provider)))
        }
        _ => {
            let provider = key_provider(settings)?;
            let ring = provider.load().with_context(|| provider.describe())?;
            Ok((ring, provider))
        }
    }
}

/// Whether a root key file lies inside the data directory, where every copy of the data
/// (a backup, a stolen disk image) carries the key that decrypts it.
pub(crate) fn key_beside_data(key_file: &Path, data_dir: &Path) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let dir = canonical(data_dir);
    key_file
        .parent()
        .is_some_and(|parent| canonical(parent).starts_with(&dir))
}

/// The configured root key provider.
pub(crate) fn key_provider(settings: &Settings) -> anyhow::Result<Arc<dyn KeyProvider>> {
    Ok(match settings.key_provider {
        KeyProviderKind::File => Arc::new(FileKeyProvider::new(settings.key_file())),
        KeyProviderKind::Env => Arc::new(EnvKeyProvider::default()),
        KeyProviderKind::Command => {
            let Some(cmd) = &settings.key_command else {
                bail!("--key-provider command needs --key-command");
            };
            let mut parts = cmd.split_whitespace();
            let Some(program) = parts.next() else {
                bail!("--key-command is empty")
            };
            Arc::new(CommandKeyProvider::new(
                program,
                parts.map(str::to_owned).collect::<Vec<_>>(),
            ))
        }
    })
}

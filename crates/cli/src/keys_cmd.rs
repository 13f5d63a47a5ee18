//! `ward keys rotate|status`: key rotation without downtime.

use anyhow::Context as _;
use clap::Subcommand;
use uuid::Uuid;
use ward_crypto::{CryptoError, KeyVersion};

use crate::Outcome;
use crate::config::StoreArgs;
use crate::setup;

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Rotate the root key or a tenant key. No record is re-encrypted: rotation rewraps the
    /// keys below the rotated one, and servers keep serving throughout.
    ///
    /// --root adds a new root key version to the key file, reseals every tenant under it and
    /// destroys the old version once nothing is sealed under it. With a read-only provider
    /// (env, command), add the new version in your KMS first, then run with --root: Ward
    /// reseals under the provider's newest version and tells you which old versions are free.
    #[command(group(clap::ArgGroup::new("scope").required(true).args(["root", "tenant"])))]
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
        /// Rotate the root key.
        #[arg(long)]
        root: bool,
        /// Rotate this tenant's key-encryption key.
        #[arg(long)]
        tenant: Option<Uuid>,
    },
    /// Show the root key versions, what each still seals, and every tenant's key version.
    Status {
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub(crate) async fn run(cmd: KeysCommand) -> anyhow::Result<Outcome> {
    match cmd {
        KeysCommand::Rotate {
            store, root: true, ..
        } => {
            let (settings, _) = store.resolve()?;
            let provider = setup::key_provider(&settings)?;
            // Make sure the data directory and the keyring exist (first run).
            let opened = setup::open(&settings).await?;
            let ring = provider.load().with_context(|| provider.describe())?;
            let ring = match provider.store(&ring.with_new_version()?) {
                Ok(()) => provider.load()?,
                Err(CryptoError::ReadOnlyProvider) => {
                    eprintln!(
                        "{} is read-only: resealing under its newest version {}",
                        provider.describe(),
                        ring.current().0
                    );
                    ring
                }
                Err(e) => return Err(e.into()),
            };
            let report = opened.vault.rotate_root(&ring).await?;
            println!(
                "root key version {} is current; {} tenants resealed",
                report.root_version, report.tenants_rewrapped
            );
            let status = opened.vault.key_status().await?;
            let mut ring = ring;
            for v in ring.versions() {
                if v.0 == status.current_root_version
                    || status.root_versions_in_use.contains_key(&v.0)
                {
                    continue;
                }
                match provider.store(&ring.without_version(v)?) {
                    Ok(()) => {
                        ring = provider.load()?;
                        println!("root key version {v} sealed nothing any more and was destroyed");
                    }
                    Err(CryptoError::ReadOnlyProvider) => {
                        println!(
                            "root key version {v} seals nothing any more: remove it from your KMS"
                        );
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(Outcome::Ok)
        }
        KeysCommand::Rotate {
            store,
            tenant: Some(tenant),
            ..
        } => {
            let (settings, _) = store.resolve()?;
            let opened = setup::open(&settings).await?;
            let report = opened.vault.rotate_tenant(tenant).await?;
            println!(
                "tenant {tenant}: key version {} is current; {} subject keys and {} hold keys rewrapped",
                report.tenant_version.unwrap_or_default(),
                report.subjects_rewrapped,
                report.holds_rewrapped
            );
            Ok(Outcome::Ok)
        }
        KeysCommand::Rotate { .. } => unreachable!("clap requires --root or --tenant"),
        KeysCommand::Status { store } => {
            let (settings, _) = store.resolve()?;
            let opened = setup::open(&settings).await?;
            let status = opened.vault.key_status().await?;
            println!(
                "current root key version: {}",
                KeyVersion(status.current_root_version)
            );
            for (v, n) in &status.root_versions_in_use {
                println!("  {} seals {n} tenants", KeyVersion(*v));
            }
            for (t, v) in &status.tenant_key_versions {
                println!("tenant {t}: key version {v}");
            }
            Ok(Outcome::Ok)
        }
    }
}

//! `ward keys rotate|status`: key rotation without downtime.

use anyhow::Context as _;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;
use ward_crypto::{CryptoError, KeyVersion};

use crate::Outcome;
use crate::config::StoreArgs;
use crate::setup;

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Rotate the root key, a tenant key, or the record keys. Servers keep serving throughout.
    ///
    /// --root adds a new root key version to the key file, reseals every tenant under it and
    /// destroys the old version once nothing is sealed under it. With a read-only provider
    /// (env, command), add the new version in your KMS first, then run with --root: Ward
    /// reseals under the provider's newest version and tells you which old versions are free.
    ///
    /// --tenant T alone gives tenant T a new key-encryption key and rewraps its subject and
    /// hold keys in one transaction. No record is touched.
    ///
    /// --records [--tenant T] gives every subject (of T, or of every tenant) a new key and
    /// re-encrypts its records under it (with the current cipher), in bounded batches, with a
    /// progress bar. Reads accept the old keys until the job has moved every record; then the
    /// old keys are destroyed. The job is stored in the database: interrupted, it resumes
    /// where it stopped; with --detach, a running `ward serve` runs it in the background.
    #[command(group(clap::ArgGroup::new("scope").required(true).multiple(true).args(["root", "tenant", "records"])))]
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
        /// Rotate the root key.
        #[arg(long, conflicts_with_all = ["tenant", "records"])]
        root: bool,
        /// Rotate this tenant's key-encryption key (with --records: only this tenant's
        /// record keys).
        #[arg(long)]
        tenant: Option<Uuid>,
        /// Re-encrypt records under new subject keys.
        #[arg(long)]
        records: bool,
        /// With --records: only queue the job for a running `ward serve` and return.
        #[arg(long, requires = "records")]
        detach: bool,
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
            tenant,
            records: true,
            detach,
            ..
        } => rotate_records(store, tenant, detach).await,
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
                println!(
                    "  {} seals {n} (tenants, user accounts, operator webhook secrets and incident texts)",
                    KeyVersion(*v)
                );
            }
            for (t, v) in &status.tenant_key_versions {
                println!("tenant {t}: key version {v}");
            }
            for j in &status.record_jobs {
                println!(
                    "record rotation {} of tenant {}: {}, {} of {} records ({:.0}%), {} subjects, started {}{}",
                    j.id,
                    j.tenant,
                    j.status,
                    j.records_done,
                    j.records_total,
                    j.progress() * 100.0,
                    j.subjects_done,
                    rfc3339(j.started_at),
                    j.finished_at
                        .map(|f| format!(", finished {}", rfc3339(f)))
                        .unwrap_or_default(),
                );
            }
            println!(
                "retired subject keys still alive: {}",
                status.retired_subject_keys
            );
            Ok(Outcome::Ok)
        }
    }
}

async fn rotate_records(
    store: StoreArgs,
    tenant: Option<Uuid>,
    detach: bool,
) -> anyhow::Result<Outcome> {
    let (settings, _) = store.resolve()?;
    let opened = setup::open(&settings).await?;
    let jobs = opened.vault.start_record_rotation(None, tenant).await?;
    if jobs.is_empty() {
        println!("no tenant has records to rotate");
        return Ok(Outcome::Ok);
    }
    if detach {
        for j in &jobs {
            println!(
                "record rotation {} of tenant {} queued ({} records); a running `ward serve` runs it, `ward keys status` shows progress",
                j.id, j.tenant, j.records_total
            );
        }
        return Ok(Outcome::Ok);
    }
    let owner = format!("cli-{}-{}", std::process::id(), Uuid::now_v7());
    let mut failed = false;
    for j in jobs {
        let bar = ProgressBar::new(j.records_total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} tenant {msg} [{bar:40}] {pos}/{len} records ({per_sec}, {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(j.tenant.to_string());
        let progress = |p: &ward_vault::KeyJob| {
            bar.set_length(p.records_total.max(p.records_done));
            bar.set_position(p.records_done);
        };
        match opened.vault.run_key_job(j.id, &owner, &progress).await {
            Ok(done) if done.status == "done" => {
                bar.finish_and_clear();
                println!(
                    "tenant {}: {} records of {} subjects re-encrypted under new subject keys; old keys destroyed",
                    done.tenant, done.records_done, done.subjects_done
                );
            }
            Ok(other) => {
                bar.abandon();
                println!(
                    "tenant {}: record rotation {} is {} ({}); another process holds it, `ward keys status` shows progress",
                    other.tenant,
                    other.id,
                    other.status,
                    other.error.as_deref().unwrap_or("running")
                );
                failed |= other.status == "failed";
            }
            Err(e) => {
                bar.abandon();
                eprintln!(
                    "tenant {}: record rotation {} stopped: {e}; run the command again to resume",
                    j.tenant, j.id
                );
                failed = true;
            }
        }
    }
    if failed {
        anyhow::bail!("a record rotation did not finish");
    }
    Ok(Outcome::Ok)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

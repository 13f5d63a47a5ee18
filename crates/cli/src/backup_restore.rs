//! `ward backup restore` and `ward backup verify`: a snapshot back into a store, and the
//! checks that prove a snapshot restores.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use indicatif::HumanBytes;
use ward_backup::{OpenMode, Repository, RestoreReport};
use ward_store::{SqliteStore, Store};

use crate::Outcome;
use crate::backup_cmd::Context;
use crate::config::{KeyProviderKind, Settings};

/// Records decrypted per tenant by `verify --full`.
const DECRYPT_SAMPLE: u32 = 50;

/// The store a backup reads: the configured PostgreSQL database, or the data directory's
/// SQLite file, which must exist (a mistyped --data-dir must not back up an empty store).
pub(crate) async fn open_source(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &settings.database_url {
        Some(url) => Arc::new(
            ward_store::PostgresStore::open(url)
                .await
                .context("opening PostgreSQL (--database-url)")?,
        ),
        None => {
            let db = settings.data_dir.join("ward.db");
            if !db.is_file() {
                bail!("no Ward database at {} (check --data-dir)", db.display());
            }
            crate::setup::check_private_dir(&settings.data_dir)?;
            Arc::new(SqliteStore::open(&db).await?)
        }
    })
}

/// Where a restore goes.
enum Target {
    /// A new or empty directory, made a SQLite data directory.
    Dir(PathBuf),
    /// An empty PostgreSQL database, with the data directory for its key files.
    Postgres { url: String, data_dir: PathBuf },
}

pub(crate) async fn restore(
    ctx: &Context,
    snapshot: &str,
    to: &str,
    to_data_dir: Option<PathBuf>,
) -> anyhow::Result<Outcome> {
    let target = if to.starts_with("postgres://") || to.starts_with("postgresql://") {
        let Some(data_dir) = to_data_dir else {
            bail!("restoring to PostgreSQL needs --to-data-dir (where the key files go)");
        };
        Target::Postgres {
            url: to.to_owned(),
            data_dir,
        }
    } else {
        Target::Dir(PathBuf::from(to))
    };
    let key_dir = match &target {
        Target::Dir(d) | Target::Postgres { data_dir: d, .. } => d.clone(),
    };
    // Everything that can be checked without writing is checked first: the root key
    // against the repository, the snapshot, the target directory.
    let repo = ctx.open(OpenMode::ReadOnly).await?;
    let id = repo.resolve(snapshot).await?;
    refuse_non_empty(&key_dir)?;
    let created = !key_dir.exists();
    let result = restore_into_target(ctx, &repo, &id, &target, &key_dir).await;
    if result.is_err() && created {
        // Nothing half-restored is left behind in a directory this command made.
        let _ = std::fs::remove_dir_all(&key_dir);
    }
    let report = result?;
    println!(
        "restored data snapshot {} with key snapshot {}: {} rows, {} key rows",
        report.data,
        report.keys,
        report.data_summary.tables.values().sum::<u64>(),
        report.keys_summary.tables.values().sum::<u64>()
    );
    let r = &report.reconciliation;
    println!(
        "removed after restore: {} erased subject(s), {} destroyed tenant(s), {} record(s)",
        r.erased_subjects, r.destroyed_tenants, r.records_removed
    );
    match &target {
        Target::Dir(d) => println!("ready: ward serve --data-dir {}", d.display()),
        Target::Postgres { data_dir, .. } => println!(
            "ready: ward serve --data-dir {} --database-url <the target URL>",
            data_dir.display()
        ),
    }
    Ok(Outcome::Ok)
}

async fn restore_into_target(
    ctx: &Context,
    repo: &Repository,
    id: &ward_backup::SnapshotId,
    target: &Target,
    key_dir: &Path,
) -> anyhow::Result<RestoreReport> {
    create_private_dir(key_dir)?;
    let store: Arc<dyn Store> = match target {
        Target::Dir(d) => Arc::new(
            SqliteStore::open(&d.join("ward.db"))
                .await
                .with_context(|| format!("creating the database in {}", d.display()))?,
        ),
        Target::Postgres { url, .. } => Arc::new(
            ward_store::PostgresStore::open(url)
                .await
                .context("opening the target PostgreSQL database")?,
        ),
    };
    let bar = ctx.bar("restoring");
    let progress: ward_backup::ProgressFn = {
        let bar = bar.clone();
        Arc::new(move |n| bar.inc(n))
    };
    let report = repo.restore_into(id, store, Some(progress)).await;
    bar.finish_and_clear();
    let report = report?;
    write_key_files(ctx, &report, key_dir)?;
    Ok(report)
}

/// The restored deployment's key files: the audit signing key from the key snapshot, and
/// with the default key provider, the root key the backup was opened with.
fn write_key_files(ctx: &Context, report: &RestoreReport, dir: &Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(key) = &report.signing_key {
        crate::setup::create_private_file(&dir.join("audit-signing.key"))?.write_all(key)?;
    }
    if ctx.settings.key_provider == KeyProviderKind::File {
        crate::setup::create_private_file(&dir.join("root.key"))?
            .write_all(ctx.root.to_text().as_bytes())?;
    }
    Ok(())
}

fn refuse_non_empty(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "restore target {} is not empty; restore into a new or empty directory",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private", dir.display()))
}

pub(crate) async fn verify(
    ctx: &Context,
    snapshot: &str,
    full: bool,
    json: bool,
) -> anyhow::Result<Outcome> {
    // The deployment's own log records the verification when its database is at hand (a
    // drill on another machine verifies without it).
    let log = open_source(&ctx.settings).await.ok();
    let checked = async {
        let repo = ctx.open(OpenMode::ReadOnly).await?;
        let id = repo.resolve(snapshot).await?;
        let report = repo.verify(&id).await?;
        let full_report = if full && report.ok() {
            Some(full_check(ctx, &repo, &id).await?)
        } else {
            None
        };
        Ok::<_, anyhow::Error>((repo, report, full_report))
    }
    .await;
    let (repo, report, full_report) = match checked {
        Ok(x) => x,
        Err(e) => {
            if let Some(store) = &log {
                let detail = serde_json::json!({ "result": "failed", "error": e.to_string() });
                crate::backup_cmd::record(store, ward_vault::BackupJob::Verify, detail).await;
            }
            return Err(e);
        }
    };
    let failed = !report.ok() || full_report.as_ref().is_some_and(|f| !f.ok());
    if let Some(store) = &log {
        let detail = serde_json::json!({
            "result": if failed { "failed" } else { "ok" },
            "snapshot": report.snapshot,
            "objects_checked": report.objects_checked,
            "problems": report.problems,
            "restore_drill": full_report,
        });
        crate::backup_cmd::record(store, ward_vault::BackupJob::Verify, detail).await;
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "snapshot": report.snapshot,
                "objects_checked": report.objects_checked,
                "locations": report.locations,
                "problems": report.problems,
                "full": full_report,
                "ok": !failed,
            }))?
        );
    } else {
        for p in &report.problems {
            println!("BAD {:?}: {} in {}", p.fault, p.object, p.location);
        }
        println!(
            "snapshot {}: {} objects checked in {} location(s), {} problem(s)",
            report.snapshot,
            report.objects_checked,
            report.locations.len(),
            report.problems.len()
        );
        if let Some(f) = &full_report {
            f.print();
        }
    }
    Ok(if failed {
        Outcome::CheckFailed
    } else if repo.unreachable().is_empty() {
        Outcome::Ok
    } else {
        Outcome::Partial
    })
}

/// The outcome of `verify --full`.
#[derive(Debug, serde::Serialize)]
pub(crate) struct FullCheck {
    pub(crate) restored_bytes: u64,
    /// Tables whose restored row count differs from the manifest's: (table, manifest,
    /// restored).
    pub(crate) count_mismatches: Vec<(String, u64, u64)>,
    pub(crate) records_decrypted: u64,
    pub(crate) decrypt_failures: u64,
    pub(crate) audit_events: u64,
    pub(crate) audit_error: Option<String>,
}

impl FullCheck {
    pub(crate) fn ok(&self) -> bool {
        self.count_mismatches.is_empty() && self.decrypt_failures == 0 && self.audit_error.is_none()
    }

    fn print(&self) {
        println!(
            "restore drill: {} restored; {} row-count mismatch(es); {} record(s) decrypted, {} \
             failed; audit log {}",
            HumanBytes(self.restored_bytes),
            self.count_mismatches.len(),
            self.records_decrypted,
            self.decrypt_failures,
            self.audit_error.as_deref().map_or_else(
                || format!("intact ({} events)", self.audit_events),
                |e| format!("FAILED: {e}")
            )
        );
        for (table, want, got) in &self.count_mismatches {
            println!("  {table}: manifest {want} rows, restored {got}");
        }
    }
}

/// Restores `id` into a scratch SQLite store and checks it: row counts against the
/// manifests, a decrypt sample, and the audit log.
pub(crate) async fn full_check(
    ctx: &Context,
    repo: &Repository,
    id: &ward_backup::SnapshotId,
) -> anyhow::Result<FullCheck> {
    let scratch = tempfile::Builder::new()
        .prefix("ward-restore-drill-")
        .tempdir()
        .context("creating a scratch directory")?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&scratch.path().join("ward.db")).await?);
    let report = repo.restore_into(id, store.clone(), None).await?;
    let data_manifest = repo.manifest(&report.data).await?;
    let keys_manifest = repo.manifest(&report.keys).await?;
    let mut count_mismatches = Vec::new();
    for (manifest, restored) in [
        (&data_manifest, &report.data_summary),
        (&keys_manifest, &report.keys_summary),
    ] {
        for (table, want) in &manifest.summary.tables {
            let got = restored.tables.get(table).copied().unwrap_or(0);
            if got != *want {
                count_mismatches.push((table.clone(), *want, got));
            }
        }
    }
    let signing_path = scratch.path().join("audit-signing.key");
    if let Some(key) = &report.signing_key {
        use std::io::Write as _;
        crate::setup::create_private_file(&signing_path)?.write_all(key)?;
    }
    let (signing_key, _) = ward_audit::SigningKey::load_or_create(&signing_path)
        .context("the restored audit signing key")?;
    let (audit_events, audit_error) =
        match ward_vault::verify_log(store.as_ref(), &signing_key.public_key(), |_, _| {}).await {
            Ok(r) => (r.tree_size, None),
            Err(e) => (0, Some(e.to_string())),
        };
    // The drill only needs a policy to build a vault; it must not write the example policy
    // into a data directory that has none (a restore machine may have no policy yet).
    let configured =
        ctx.settings.policy.is_some() || ctx.settings.data_dir.join("policy.toml").is_file();
    let policy = if configured {
        crate::setup::load_policy(&ctx.settings)?
    } else {
        ward_policy::Policy::parse(ward_policy::EXAMPLE_POLICY, "example policy")
            .map_err(|e| anyhow::anyhow!("the example policy: {} error(s)", e.diagnostics.len()))?
    };
    let vault = ward_vault::Vault::new(ward_vault::VaultConfig {
        store,
        policy,
        root_keys: ctx.root.clone(),
        signing_key,
        clock: Arc::new(ward_vault::SystemClock),
        origin: ctx.settings.origin.clone(),
        limits: ctx.settings.limits,
    })?;
    let sample = vault.verify_decryption(DECRYPT_SAMPLE).await?;
    Ok(FullCheck {
        restored_bytes: report.data_summary.bytes + report.keys_summary.bytes,
        count_mismatches,
        records_decrypted: sample.records,
        decrypt_failures: sample.failures,
        audit_events,
        audit_error,
    })
}

//! `ward backup run|list|verify|restore|prune|repair`.
//!
//! Exit codes (on top of `main`'s): 0 everything done in every location; 1 `verify` found a
//! bad object or a `--full` check failed; 3 nothing done (wrong root key, no location
//! reachable, a failed export or import); 4 done, but some location failed (named in the
//! summary): the snapshot or repair is in the others.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use ward_backup::{OpenMode, Repository};
use ward_crypto::RootKeyring;

use crate::Outcome;
use crate::backup_config::BackupSettings;
use crate::config::{Settings, StoreArgs};

#[derive(Subcommand)]
pub(crate) enum BackupCommand {
    /// Take a backup now: a data snapshot, then a key snapshot, into every location.
    Run {
        #[command(flatten)]
        common: BackupArgs,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the snapshots, oldest first (`latest` names the newest data snapshot).
    List {
        #[command(flatten)]
        common: BackupArgs,
        /// Print a JSON array of {id, time, stream, bytes, chunks, previous, locations}.
        #[arg(long)]
        json: bool,
    },
    /// Read every object of a snapshot in every location and check it (decryption, hash,
    /// manifest signature). Exit 1 naming each bad object and its location.
    Verify {
        #[command(flatten)]
        common: BackupArgs,
        /// Snapshot id, `latest` (newest data snapshot) or `latest-keys`.
        #[arg(default_value = "latest")]
        snapshot: String,
        /// Also restore it (with the newest key snapshot) into a scratch store and check row
        /// counts against the manifest, decrypt a sample of records, and verify the audit log.
        #[arg(long)]
        full: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore a data snapshot and the newest key snapshot into an empty directory or an
    /// empty PostgreSQL database, then remove what was erased or destroyed since.
    Restore {
        #[command(flatten)]
        common: BackupArgs,
        /// Snapshot id or `latest`.
        snapshot: String,
        /// Target: a directory (new or empty; SQLite) or a postgres:// URL (empty database).
        #[arg(long)]
        to: String,
        /// With a postgres:// target: the data directory that receives the audit signing
        /// key (and, with the default key file, the root key) for `ward serve`.
        #[arg(long)]
        to_data_dir: Option<PathBuf>,
    },
    /// Delete snapshots past their retention (data: keep_daily/weekly/monthly, never past
    /// max_age; keys: only the key window), then objects no snapshot references.
    Prune {
        #[command(flatten)]
        common: BackupArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace every missing or corrupt object in a location with a good copy from another.
    Repair {
        #[command(flatten)]
        common: BackupArgs,
    },
}

/// Flags of every backup command.
#[derive(Args, Clone, Debug)]
pub(crate) struct BackupArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// A backup location: a directory, or s3://bucket/prefix (credentials from AWS_*
    /// environment variables). Repeat for several; every location gets every object.
    /// [default: the config's [backup] locations]
    #[arg(long = "location", value_name = "DIR|s3://BUCKET/PREFIX")]
    pub(crate) locations: Vec<String>,
    /// Endpoint of an S3-compatible service (e.g. http://127.0.0.1:8333); plain http only
    /// to loopback.
    #[arg(long, env = "WARD_S3_ENDPOINT")]
    pub(crate) s3_endpoint: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// Settings, backup settings and the root keyring of a backup command.
pub(crate) struct Context {
    pub(crate) settings: Settings,
    pub(crate) backup: BackupSettings,
    pub(crate) root: RootKeyring,
    pub(crate) quiet: bool,
}

impl BackupArgs {
    pub(crate) fn context(&self) -> anyhow::Result<Context> {
        let (settings, file) = self.store.resolve()?;
        let backup = BackupSettings::resolve(
            &self.locations,
            self.s3_endpoint.as_deref(),
            file.backup.as_ref(),
        )?;
        if backup.locations.is_empty() {
            bail!(
                "no backup location: give --location (repeatable) or a [backup] table in --config"
            );
        }
        // Loading only: a backup command never creates a root key.
        let provider = crate::setup::key_provider(&settings)?;
        let root = provider.load().with_context(|| provider.describe())?;
        Ok(Context {
            settings,
            backup,
            root,
            quiet: self.quiet,
        })
    }
}

impl Context {
    pub(crate) async fn open(&self, mode: OpenMode) -> anyhow::Result<Repository> {
        let repo =
            Repository::open(&self.backup.locations, &self.backup.s3, &self.root, mode).await?;
        for u in repo.unreachable() {
            if self.quiet {
                tracing::warn!(location = %u.location, error = %u.error, "backup location unreachable");
            } else {
                eprintln!("location {} unreachable: {}", u.location, u.error);
            }
        }
        Ok(repo)
    }

    /// A byte-counting progress bar (hidden with --quiet).
    pub(crate) fn bar(&self, what: &'static str) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {what} {{bytes}} ({{binary_bytes_per_sec}}) {{elapsed}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar
    }
}

pub(crate) async fn run(cmd: BackupCommand) -> anyhow::Result<Outcome> {
    match cmd {
        BackupCommand::Run { common, json } => run_backup(&common.context()?, json).await,
        BackupCommand::List { common, json } => list(&common.context()?, json).await,
        BackupCommand::Verify {
            common,
            snapshot,
            full,
            json,
        } => crate::backup_restore::verify(&common.context()?, &snapshot, full, json).await,
        BackupCommand::Restore {
            common,
            snapshot,
            to,
            to_data_dir,
        } => crate::backup_restore::restore(&common.context()?, &snapshot, &to, to_data_dir).await,
        BackupCommand::Prune { common, json } => prune(&common.context()?, json).await,
        BackupCommand::Repair { common } => repair(&common.context()?).await,
    }
}

async fn run_backup(ctx: &Context, json: bool) -> anyhow::Result<Outcome> {
    let store = crate::backup_restore::open_source(&ctx.settings).await?;
    let repo = match ctx.open(OpenMode::ReadWrite).await {
        Ok(repo) => repo,
        Err(e) => {
            let detail = serde_json::json!({ "result": "failed", "error": e.to_string() });
            record(&store, ward_vault::BackupJob::Run, detail).await;
            return Err(e);
        }
    };
    let bar = ctx.bar("backing up");
    let progress: ward_backup::ProgressFn = {
        let bar = bar.clone();
        Arc::new(move |n| bar.inc(n))
    };
    let now = time::OffsetDateTime::now_utc();
    let report = backup_now(ctx, &repo, store.clone(), now, Some(progress)).await;
    bar.finish_and_clear();
    let detail = match &report {
        Ok(r) => crate::backup_schedule::run_detail(r),
        Err(e) => serde_json::json!({ "result": "failed", "error": e.to_string() }),
    };
    record(&store, ward_vault::BackupJob::Run, detail).await;
    let report = report?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for snap in [&report.data, &report.keys] {
            print_snapshot(snap);
        }
    }
    let held_anywhere = [&report.data, &report.keys]
        .iter()
        .all(|s| s.locations.iter().any(|l| l.error.is_none()));
    if !held_anywhere {
        bail!("no location took the backup (see above)");
    }
    Ok(if report.complete() {
        Outcome::Ok
    } else {
        eprintln!("some location did not get the backup (see above); the others hold it");
        Outcome::Partial
    })
}

/// Appends a backup job's audit event, as `ward serve`'s schedule does, so that the log and
/// `ward doctor` know of backups taken by hand or by cron. A failure to record is reported,
/// not fatal: the backup itself is what the operator asked for.
pub(crate) async fn record(
    store: &Arc<dyn ward_store::Store>,
    job: ward_vault::BackupJob,
    detail: serde_json::Value,
) {
    let event = ward_vault::backup_event(job, time::OffsetDateTime::now_utc(), detail);
    if let Err(e) = store.commit(vec![event]).await {
        eprintln!("warning: the backup job could not be recorded in the audit log: {e}");
    }
}

/// One backup of `store` into `repo`, now (used by `run` and by `serve`'s schedule).
pub(crate) async fn backup_now(
    ctx: &Context,
    repo: &Repository,
    store: Arc<dyn ward_store::Store>,
    now: time::OffsetDateTime,
    progress: Option<ward_backup::ProgressFn>,
) -> anyhow::Result<ward_backup::BackupReport> {
    let key_path = ctx.settings.data_dir.join("audit-signing.key");
    let signing_key = match std::fs::read(&key_path) {
        Ok(bytes) => Some(bytes::Bytes::from(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", key_path.display())),
    };
    Ok(repo.backup_store(store, signing_key, now, progress).await?)
}

fn print_snapshot(s: &ward_backup::SnapshotReport) {
    println!(
        "snapshot {} ({}): read {}, unchanged since the last snapshot {}, new {}, deduplicated {}, {} chunks, {:.1}s",
        s.id,
        s.stream.as_str(),
        HumanBytes(s.bytes_read),
        HumanBytes(s.bytes_reused),
        HumanBytes(s.bytes_new),
        HumanBytes(s.bytes_deduplicated),
        s.chunks,
        s.elapsed.as_secs_f64()
    );
    for l in &s.locations {
        match &l.error {
            None => println!(
                "  {}: ok, written {} ({} objects)",
                l.location,
                HumanBytes(l.bytes_written),
                l.objects_written
            ),
            Some(e) => println!("  {}: FAILED: {e}", l.location),
        }
    }
}

async fn list(ctx: &Context, json: bool) -> anyhow::Result<Outcome> {
    let repo = ctx.open(OpenMode::ReadOnly).await?;
    let mut rows = Vec::new();
    for m in repo.manifests().await? {
        let mut held_by = Vec::new();
        for l in repo.locations() {
            if repo.holds_manifest(l, &m.id).await {
                held_by.push(l.name().to_owned());
            }
        }
        rows.push(serde_json::json!({
            "id": m.id,
            "time": m.time.format(&time::format_description::well_known::Rfc3339)?,
            "stream": m.stream,
            "bytes": m.entries.iter().map(|e| e.size).sum::<u64>(),
            "chunks": m.entries.iter().map(|e| e.chunks.len()).sum::<usize>(),
            "previous": m.previous,
            "tables": m.summary.tables,
            "locations": held_by,
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(Outcome::Ok);
    }
    if rows.is_empty() {
        println!("no snapshots");
    }
    for r in &rows {
        println!(
            "{}  {:4}  {:>10}  {} location(s)",
            r["id"].as_str().unwrap_or_default(),
            r["stream"].as_str().unwrap_or_default(),
            HumanBytes(r["bytes"].as_u64().unwrap_or(0)).to_string(),
            r["locations"].as_array().map_or(0, Vec::len)
        );
    }
    Ok(Outcome::Ok)
}

async fn prune(ctx: &Context, json: bool) -> anyhow::Result<Outcome> {
    let repo = ctx.open(OpenMode::ReadOnly).await?;
    let report = repo
        .prune(&ctx.backup.retention, time::OffsetDateTime::now_utc())
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for id in &report.snapshots_deleted {
            println!("deleted snapshot {id}");
        }
        println!(
            "kept {} snapshot(s); deleted {} snapshot(s) and {} unreferenced object(s), freed {}",
            report.snapshots_kept,
            report.snapshots_deleted.len(),
            report.objects_deleted,
            HumanBytes(report.bytes_freed)
        );
    }
    Ok(Outcome::Ok)
}

async fn repair(ctx: &Context) -> anyhow::Result<Outcome> {
    let repo = ctx.open(OpenMode::ReadWrite).await?;
    let report = repo.repair().await?;
    for p in &report.repaired {
        println!(
            "repaired {} in {} (was {:?})",
            p.object, p.location, p.fault
        );
    }
    for o in &report.unrepairable {
        println!("LOST: {o} has no good copy in any location");
    }
    println!(
        "{} copies repaired, {} objects lost",
        report.repaired.len(),
        report.unrepairable.len()
    );
    Ok(if !report.unrepairable.is_empty() {
        Outcome::CheckFailed
    } else if repo.unreachable().is_empty() {
        Outcome::Ok
    } else {
        Outcome::Partial
    })
}

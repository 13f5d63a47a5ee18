//! `ward doctor`: checks a deployment (its data directory or database, keys, audit log,
//! retention, TLS certificate, clock and disk) and says how to fix what it finds. Only reads:
//! nothing is created, migrated or repaired.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use ward_doctor::{BackupSchedule, Context, Database, Report, RootKey, Setup, Status};

use crate::Outcome;
use crate::config::{KeyProviderKind, StoreArgs};
use crate::setup;

#[derive(Args)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// The PEM certificate chain `ward serve` presents, to check its dates. [default:
    /// tls_cert of the config file]
    #[arg(long, env = "WARD_TLS_CERT")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// How often `ward serve` runs retention (records overdue by two intervals fail the
    /// retention check). [default: retention_interval of the config file, else 1h]
    #[arg(long, env = "WARD_RETENTION_INTERVAL")]
    pub(crate) retention_interval: Option<String>,
    /// Print the report as JSON (`{"status", "checks": [{"check", "status", "explanation",
    /// "fix"}]}`).
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) async fn run(args: DoctorArgs) -> anyhow::Result<Outcome> {
    let (settings, file) = args.store.resolve()?;
    let retention_interval = match args
        .retention_interval
        .as_deref()
        .or(file.retention_interval.as_deref())
    {
        Some(p) => Some(
            std::time::Duration::try_from(
                ward_policy::Period::parse(p)
                    .map_err(|e| anyhow::anyhow!("retention interval {p:?}: {e}"))?
                    .as_duration(),
            )
            .map_err(|_| anyhow::anyhow!("retention interval {p:?} must be positive"))?,
        ),
        None => None,
    };
    let data_dir = settings.data_dir.clone();
    let setup = Setup {
        database: Some(match &settings.database_url {
            Some(url) => Database::Postgres(url.clone()),
            None => Database::Sqlite(data_dir.join("ward.db")),
        }),
        root_key: Some(RootKey {
            provider: setup::key_provider(&settings)?,
            file: (settings.key_provider == KeyProviderKind::File).then(|| settings.key_file()),
        }),
        policy: Some(
            settings
                .policy
                .clone()
                .unwrap_or_else(|| data_dir.join("policy.toml")),
        ),
        backup: backup_schedule(&file)?,
        tls_cert: args.tls_cert.or(file.tls_cert),
        retention_interval,
        data_dir: Some(data_dir),
    };
    let ctx = Context::new(setup, time::OffsetDateTime::now_utc());
    let report = ward_doctor::examine(&ctx).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.failed() {
        Outcome::CheckFailed
    } else {
        Outcome::Ok
    })
}

/// The report for a terminal: one line per check, its fix indented below, a summary.
fn render(report: &Report) -> String {
    let mut out = String::new();
    let width = report
        .checks
        .iter()
        .map(|f| f.check.len())
        .max()
        .unwrap_or(0);
    for f in &report.checks {
        let status = match f.status {
            Status::Ok => "ok  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        out.push_str(&format!(
            "{status}  {:width$}  {}\n",
            f.check, f.explanation
        ));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("{:pad$}fix: {fix}\n", "", pad = width + 8));
        }
    }
    let count = |s: Status| report.checks.iter().filter(|f| f.status == s).count();
    out.push_str(&format!(
        "{} checks: {} ok, {} warning(s), {} failure(s)\n",
        report.checks.len(),
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail)
    ));
    out
}

/// The doctor's view of a running `ward serve`, for `GET /v1/doctor`: the same files, key
/// provider and certificate, over the server's own store.
pub(crate) fn server_setup(
    settings: &crate::config::Settings,
    tls_cert: Option<PathBuf>,
    retention_interval: std::time::Duration,
    provider: Arc<dyn ward_crypto::KeyProvider>,
    backup: Option<BackupSchedule>,
) -> Setup {
    Setup {
        data_dir: Some(settings.data_dir.clone()),
        database: Some(match &settings.database_url {
            Some(url) => Database::Postgres(url.clone()),
            None => Database::Sqlite(settings.data_dir.join("ward.db")),
        }),
        root_key: Some(RootKey {
            provider,
            file: (settings.key_provider == KeyProviderKind::File).then(|| settings.key_file()),
        }),
        policy: None,
        tls_cert,
        retention_interval: Some(retention_interval),
        backup,
    }
}

/// The backup schedule of the config file's `[backup]` table, when it names locations.
pub(crate) fn backup_schedule(
    file: &crate::config::FileConfig,
) -> anyhow::Result<Option<BackupSchedule>> {
    let backup = crate::backup_config::BackupSettings::resolve(&[], None, file.backup.as_ref())?;
    Ok((!backup.locations.is_empty()).then_some(BackupSchedule {
        every: backup.every,
        verify_every: backup.verify_every,
    }))
}

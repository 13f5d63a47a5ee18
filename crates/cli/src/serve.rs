//! `ward serve`: the HTTP API plus the background jobs (signed audit checkpoints).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use ward_server::{AppState, Limits};
use ward_vault::Vault;

use crate::Outcome;
use crate::config::StoreArgs;
use crate::setup;

#[derive(Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Address to listen on. [default: 127.0.0.1:8470]
    #[arg(long, env = "WARD_LISTEN")]
    pub(crate) listen: Option<SocketAddr>,
    /// PEM certificate chain: serve HTTPS (TLS 1.2 and 1.3 only, HSTS) instead of HTTP.
    #[arg(long, env = "WARD_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "WARD_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<std::path::PathBuf>,
    /// How often the retention engine runs inside the server (e.g. 1h, 15min).
    /// [default: 1h]
    #[arg(long, env = "WARD_RETENTION_INTERVAL")]
    pub(crate) retention_interval: Option<String>,
    /// Longest time a client may take to send a request's headers (and the TLS handshake);
    /// also how long a kept-alive connection may wait for its next request. [default: 10s]
    #[arg(long, env = "WARD_HEADER_TIMEOUT")]
    pub(crate) header_timeout: Option<String>,
    /// Longest pause between two chunks of a request body. [default: 30s]
    #[arg(long, env = "WARD_BODY_TIMEOUT")]
    pub(crate) body_timeout: Option<String>,
    /// A connection on which no byte moves either way for this long, while no request is
    /// being handled on it, is closed. [default: 60s]
    #[arg(long, env = "WARD_IDLE_TIMEOUT")]
    pub(crate) idle_timeout: Option<String>,
    /// Most connections open at once; more wait in the listen backlog. [default: 1024]
    #[arg(long, env = "WARD_MAX_CONNECTIONS")]
    pub(crate) max_connections: Option<usize>,
    /// A reverse proxy (IP address) whose X-Forwarded-For header is believed; repeat for
    /// several. Without it the header is ignored. [default: none]
    #[arg(
        long = "trusted-proxy",
        env = "WARD_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub(crate) trusted_proxies: Vec<std::net::IpAddr>,
    /// Let tenant webhooks reach loopback, private, link-local and unique-local addresses
    /// (refused by default, so a tenant cannot make Ward call internal services). Operator
    /// webhooks may always reach any address.
    #[arg(long, env = "WARD_ALLOW_PRIVATE_WEBHOOK_TARGETS")]
    pub(crate) allow_private_webhook_targets: bool,
    /// Log format on standard error. Logs never contain personal data values. [default: json]
    #[arg(long, env = "WARD_LOG_FORMAT", value_enum)]
    pub(crate) log_format: Option<LogFormat>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// One JSON object per line (for log shippers).
    Json,
    /// Human-readable lines.
    Pretty,
}

/// `arenas_kept` is why bounding malloc's arenas failed, when it did (crate::malloc_arenas).
pub(crate) async fn run(
    args: ServeArgs,
    arenas_kept: Option<std::io::Error>,
) -> anyhow::Result<Outcome> {
    let (settings, file) = args.store.resolve()?;
    let format = args.log_format.or(match file.log_format.as_deref() {
        Some("pretty") => Some(LogFormat::Pretty),
        Some("json") | None => None,
        Some(other) => anyhow::bail!("log_format {other:?} in config: expected json or pretty"),
    });
    init_logging(format.unwrap_or(LogFormat::Json));
    if let Some(e) = arenas_kept {
        tracing::warn!(error = %e, "could not restart with MALLOC_ARENA_MAX=2; memory may grow under load (set it in the service's environment)");
    }
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8470)));
    let opened = setup::open(&settings).await?;
    setup::announce_operator_token(&opened.vault).await?;
    let tls = match tls_files(&args, &file) {
        Some((cert, key)) => Some(ward_server::tls::server_config(&cert, &key)?),
        None => None,
    };
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let interval = opened
        .vault
        .policy()
        .audit
        .checkpoint_interval
        .as_duration();
    let checkpoints = tokio::spawn(checkpoint_loop(opened.vault.clone(), interval));
    let retention_every = match args
        .retention_interval
        .as_deref()
        .or(file.retention_interval.as_deref())
    {
        Some(p) => ward_policy::Period::parse(p)
            .map_err(|e| anyhow::anyhow!("retention interval {p:?}: {e}"))?,
        None => ward_policy::Period::from_seconds(3600)
            .unwrap_or_else(|| unreachable!("one hour is a valid period")),
    };
    let retention = tokio::spawn(retention_loop(
        opened.vault.clone(),
        retention_every.as_duration(),
    ));
    let backups = backup_schedule(&settings, &file, &opened)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%listen, data_dir = %settings.data_dir.display(), scheme, "ward is serving");
    println!("Ward listening on {scheme}://{listen}");
    let limits = limits(&args, &file)?;
    let doctor = crate::doctor_cmd::server_setup(
        &settings,
        tls_files(&args, &file).map(|(cert, _)| cert),
        std::time::Duration::try_from(retention_every.as_duration()).unwrap_or_default(),
        setup::key_provider(&settings)?,
        crate::doctor_cmd::backup_schedule(&file)?,
    );
    let state = AppState::new(opened.vault.clone())
        .with_doctor(doctor)
        .with_webhooks(ward_server::WebhookOptions {
            allow_private_targets: args.allow_private_webhook_targets,
        });
    let self_check = tokio::spawn(ward_server::watch_deployment(
        state.clone(),
        SELF_CHECK_EVERY,
    ));
    match tls {
        Some(config) => {
            ward_server::tls::serve_tls_with(
                listener.into_std()?,
                state,
                config,
                limits,
                shutdown_signal(),
            )
            .await?;
        }
        None => ward_server::serve_with(listener, state, limits, shutdown_signal()).await?,
    }
    checkpoints.abort();
    retention.abort();
    self_check.abort();
    if let Some(stop) = backups {
        let _ = stop.send(());
    }
    // A final checkpoint covers everything written before shutdown.
    opened
        .vault
        .checkpoint()
        .await
        .context("final audit checkpoint")?;
    tracing::info!("ward stopped");
    Ok(Outcome::Ok)
}

/// Starts the backup schedule when the config's `[backup]` table names locations.
fn backup_schedule(
    settings: &crate::config::Settings,
    file: &crate::config::FileConfig,
    opened: &setup::Opened,
) -> anyhow::Result<Option<tokio::sync::oneshot::Sender<()>>> {
    let backup = crate::backup_config::BackupSettings::resolve(&[], None, file.backup.as_ref())?;
    if backup.locations.is_empty() {
        return Ok(None);
    }
    let provider = setup::key_provider(settings)?;
    let root = provider.load().with_context(|| provider.describe())?;
    tracing::info!(
        locations = backup.locations.len(),
        every = ?backup.every,
        verify_every = ?backup.verify_every,
        "backup schedule"
    );
    let ctx = crate::backup_cmd::Context {
        settings: settings.clone(),
        backup,
        root,
        quiet: true,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (vault, store) = (opened.vault.clone(), opened.store.clone());
    let handle = tokio::runtime::Handle::current();
    // Its own thread driving the schedule on the server's runtime: the audit verifier's and
    // the repository's futures are not provably `Send` for every lifetime (a limit of the
    // compiler's reasoning about borrowing closures), so `tokio::spawn` cannot take them.
    std::thread::Builder::new()
        .name("ward-backups".into())
        .spawn(move || {
            handle.block_on(async move {
                tokio::select! {
                    () = crate::backup_schedule::run(ctx, vault, store) => {}
                    _ = stopped => {}
                }
            });
        })
        .context("starting the backup schedule")?;
    Ok(Some(stop))
}

/// The certificate and key to serve HTTPS with: the flags' pair, else the config file's.
pub(crate) fn tls_files(
    args: &ServeArgs,
    file: &crate::config::FileConfig,
) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => file.tls_cert.clone().zip(file.tls_key.clone()),
    }
}

/// Connection limits: flags › environment › config file › defaults.
fn limits(args: &ServeArgs, file: &crate::config::FileConfig) -> anyhow::Result<Limits> {
    let d = Limits::default();
    let dur = |name: &str, flag: &Option<String>, conf: &Option<String>, def: Duration| match flag
        .as_deref()
        .or(conf.as_deref())
    {
        None => Ok(def),
        Some(p) => {
            let period =
                ward_policy::Period::parse(p).map_err(|e| anyhow::anyhow!("{name} {p:?}: {e}"))?;
            let secs = u64::try_from(period.as_duration().whole_seconds())
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| anyhow::anyhow!("{name} {p:?}: must be at least 1s"))?;
            Ok::<_, anyhow::Error>(Duration::from_secs(secs))
        }
    };
    let max_connections = args
        .max_connections
        .or(file.max_connections)
        .unwrap_or(d.max_connections);
    if max_connections == 0 {
        anyhow::bail!("max_connections must be at least 1");
    }
    Ok(Limits {
        header_read_timeout: dur(
            "header_timeout",
            &args.header_timeout,
            &file.header_timeout,
            d.header_read_timeout,
        )?,
        body_read_timeout: dur(
            "body_timeout",
            &args.body_timeout,
            &file.body_timeout,
            d.body_read_timeout,
        )?,
        idle_timeout: dur(
            "idle_timeout",
            &args.idle_timeout,
            &file.idle_timeout,
            d.idle_timeout,
        )?,
        max_connections,
        trusted_proxies: if args.trusted_proxies.is_empty() {
            file.trusted_proxies.clone().unwrap_or_default()
        } else {
            args.trusted_proxies.clone()
        },
    })
}

/// Signs a checkpoint every `interval`, so truncating the newest events is detectable.
async fn checkpoint_loop(vault: Vault, interval: time::Duration) {
    let period = Duration::from_secs(interval.whole_seconds().max(1) as u64);
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tick.tick().await;
        match vault.checkpoint().await {
            Ok(cp) => tracing::info!(tree_size = cp.tree_size, "signed audit checkpoint"),
            Err(e) => tracing::error!(error = %e, "audit checkpoint failed"),
        }
    }
}

/// How often `ward serve` runs `ward doctor`'s checks on itself, so that a failing one (a
/// stale or failed backup, key files readable by others, an altered audit log) becomes an
/// alert of the detection rules without anyone asking.
const SELF_CHECK_EVERY: Duration = Duration::from_secs(15 * 60);

/// Runs the retention engine on schedule; each run is audited.
async fn retention_loop(vault: Vault, every: time::Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(every.whole_seconds().max(1) as u64));
    loop {
        tick.tick().await;
        match vault
            .run_retention(&ward_vault::RetentionOptions::default(), |_| {})
            .await
        {
            Ok(r) => tracing::info!(
                records = r.total(),
                holds_released = r.holds_released,
                tenants_destroyed = r.tenants_destroyed.len(),
                audit_events_pruned = r.audit_events_pruned,
                "retention run"
            ),
            Err(e) => tracing::error!(error = %e, "retention run failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("WARD_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn file(toml: &str) -> crate::config::FileConfig {
        toml::from_str(toml).expect("config")
    }

    #[test]
    fn limits_come_from_flags_then_config_then_defaults() {
        let none = Cli::parse_from(["ward"]).serve;
        assert_eq!(limits(&none, &file("")).unwrap(), Limits::default());
        let conf = file("header_timeout = \"5s\"\nmax_connections = 50\nidle_timeout = \"2min\"");
        let l = limits(&none, &conf).unwrap();
        assert_eq!(l.header_read_timeout, Duration::from_secs(5));
        assert_eq!(l.idle_timeout, Duration::from_secs(120));
        assert_eq!(l.max_connections, 50);
        assert_eq!(l.body_read_timeout, Limits::default().body_read_timeout);
        let flags = Cli::parse_from([
            "ward",
            "--header-timeout",
            "3s",
            "--body-timeout",
            "7s",
            "--max-connections",
            "9",
        ])
        .serve;
        let l = limits(&flags, &conf).unwrap();
        assert_eq!(l.header_read_timeout, Duration::from_secs(3));
        assert_eq!(l.body_read_timeout, Duration::from_secs(7));
        assert_eq!(l.max_connections, 9);
        assert!(l.trusted_proxies.is_empty());
        let conf = file("trusted_proxies = [\"10.0.0.1\"]");
        let l = limits(&none, &conf).unwrap();
        assert_eq!(
            l.trusted_proxies,
            vec!["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        for bad in [
            Cli::parse_from(["ward", "--max-connections", "0"]).serve,
            Cli::parse_from(["ward", "--header-timeout", "soon"]).serve,
        ] {
            assert!(limits(&bad, &file("")).is_err());
        }
    }
}

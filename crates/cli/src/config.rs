//! Settings shared by the commands that open a data directory, from flags, environment
//! variables and an optional TOML file — in that order of precedence, then defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde::Deserialize;

/// Where the root key comes from.
#[derive(Clone, Copy, Debug, Deserialize, ValueEnum, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum KeyProviderKind {
    /// A key file in the data directory, created with mode 0600 (default; fine for trying
    /// Ward, not for production).
    File,
    /// The WARD_ROOT_KEY environment variable ("v1:<base64>" lines).
    Env,
    /// An external command that prints the keyring (HSM/KMS integration).
    Command,
}

/// Flags of every command that opens a data directory.
#[derive(Args, Clone, Debug)]
pub(crate) struct StoreArgs {
    /// Data directory: SQLite database, root key file, audit signing key, default policy.
    /// [default: ./ward-data]
    #[arg(long, env = "WARD_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Policy file. [default: <data-dir>/policy.toml, written from the example on first run]
    #[arg(long, env = "WARD_POLICY")]
    pub(crate) policy: Option<PathBuf>,
    /// Where the root key comes from. [default: file]
    #[arg(long, env = "WARD_KEY_PROVIDER", value_enum)]
    pub(crate) key_provider: Option<KeyProviderKind>,
    /// With `--key-provider command`: program and arguments, split on spaces, that print the
    /// keyring ("v<N>:<base64 key>" per line) on standard output.
    #[arg(long, env = "WARD_KEY_COMMAND")]
    pub(crate) key_command: Option<String>,
    /// PostgreSQL instead of the embedded SQLite: `postgres://user@host:5432/db`. Several
    /// servers may share one database; migrations run under an advisory lock.
    #[arg(long, env = "WARD_DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// Name of this deployment's audit log in signed checkpoints (one line, e.g. the public
    /// host name). [default: ward]
    #[arg(long, env = "WARD_ORIGIN")]
    pub(crate) origin: Option<String>,
    /// TOML file with any of: data_dir, policy, key_provider, key_command, database_url,
    /// listen, log_format, retention_interval, origin, invitation_ttl, checkpoint_interval,
    /// header_timeout, body_timeout, idle_timeout, max_connections, trusted_proxies, and a
    /// [backup] table (locations, s3_endpoint, every, verify_every, keep_daily, keep_weekly,
    /// keep_monthly, max_age, key_window).
    #[arg(long, env = "WARD_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

/// The checkpoint origin when none is configured.
pub(crate) const DEFAULT_ORIGIN: &str = "ward";

/// The optional TOML configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) database_url: Option<String>,
    pub(crate) policy: Option<PathBuf>,
    pub(crate) key_provider: Option<KeyProviderKind>,
    pub(crate) key_command: Option<String>,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) log_format: Option<String>,
    pub(crate) retention_interval: Option<String>,
    pub(crate) origin: Option<String>,
    /// How long an owner invitation can be claimed, e.g. `72h` (the default).
    pub(crate) invitation_ttl: Option<String>,
    /// Least time between two checkpoints signed on request, e.g. `60s` (the default).
    pub(crate) checkpoint_interval: Option<String>,
    pub(crate) header_timeout: Option<String>,
    pub(crate) body_timeout: Option<String>,
    pub(crate) idle_timeout: Option<String>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) trusted_proxies: Option<Vec<std::net::IpAddr>>,
    /// Backup locations, schedule and retention (`ward backup`, and `serve`'s schedule).
    pub(crate) backup: Option<crate::backup_config::BackupConfig>,
}

/// Settings after precedence is applied.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) data_dir: PathBuf,
    pub(crate) database_url: Option<String>,
    pub(crate) policy: Option<PathBuf>,
    pub(crate) key_provider: KeyProviderKind,
    pub(crate) key_command: Option<String>,
    /// Name of the audit log in signed checkpoints.
    pub(crate) origin: String,
    /// Invitation lifetime and checkpoint rate.
    pub(crate) limits: ward_vault::Limits,
}

impl StoreArgs {
    /// Reads the config file (if any) and applies precedence.
    pub(crate) fn resolve(&self) -> anyhow::Result<(Settings, FileConfig)> {
        let file = match &self.config {
            Some(path) => read_config(path)?,
            None => FileConfig::default(),
        };
        let settings = Settings {
            database_url: self.database_url.clone().or(file.database_url.clone()),
            data_dir: self
                .data_dir
                .clone()
                .or(file.data_dir.clone())
                .unwrap_or_else(|| PathBuf::from("ward-data")),
            policy: self.policy.clone().or(file.policy.clone()),
            key_provider: self
                .key_provider
                .or(file.key_provider)
                .unwrap_or(KeyProviderKind::File),
            key_command: self.key_command.clone().or(file.key_command.clone()),
            origin: origin(self.origin.clone().or(file.origin.clone()))?,
            limits: limits(&file)?,
        };
        Ok((settings, file))
    }
}

/// The checkpoint origin: a name, one line, not a path of this machine (a checkpoint is shown
/// to anyone who verifies the log). Checkpoints signed under another origin stay verifiable:
/// each carries its own.
fn origin(configured: Option<String>) -> anyhow::Result<String> {
    let Some(name) = configured else {
        return Ok(DEFAULT_ORIGIN.to_owned());
    };
    let name = name.trim();
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        anyhow::bail!("origin must be 1 to 255 characters on one line, e.g. vault.example.org");
    }
    Ok(name.to_owned())
}

fn limits(file: &FileConfig) -> anyhow::Result<ward_vault::Limits> {
    let mut limits = ward_vault::Limits::default();
    let period = |name: &str, v: &str| -> anyhow::Result<std::time::Duration> {
        let p = ward_policy::Period::parse(v).map_err(|e| anyhow::anyhow!("{name} {v:?}: {e}"))?;
        std::time::Duration::try_from(p.as_duration())
            .map_err(|_| anyhow::anyhow!("{name} {v:?} must be positive"))
    };
    if let Some(v) = &file.invitation_ttl {
        limits.invitation_ttl = period("invitation_ttl", v)?;
    }
    if let Some(v) = &file.checkpoint_interval {
        limits.checkpoint_interval = period("checkpoint_interval", v)?;
    }
    Ok(limits)
}

pub(crate) fn read_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_is_a_name_by_default_and_one_line_when_configured() {
        assert_eq!(origin(None).unwrap(), DEFAULT_ORIGIN);
        assert_eq!(
            origin(Some(" vault.example.org ".into())).unwrap(),
            "vault.example.org"
        );
        for bad in ["", "   ", "a\nb", "a\u{1b}b"] {
            assert!(origin(Some(bad.into())).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_default_to_72_hours_and_a_minute_and_parse_periods() {
        let d = limits(&FileConfig::default()).unwrap();
        assert_eq!(d.invitation_ttl, std::time::Duration::from_secs(72 * 3600));
        assert_eq!(d.checkpoint_interval, std::time::Duration::from_secs(60));
        let file = FileConfig {
            invitation_ttl: Some("2d".into()),
            checkpoint_interval: Some("5min".into()),
            ..FileConfig::default()
        };
        let l = limits(&file).unwrap();
        assert_eq!(l.invitation_ttl, std::time::Duration::from_secs(2 * 86_400));
        assert_eq!(l.checkpoint_interval, std::time::Duration::from_secs(300));
        let bad = FileConfig {
            invitation_ttl: Some("soon".into()),
            ..FileConfig::default()
        };
        assert!(limits(&bad).is_err());
    }
}

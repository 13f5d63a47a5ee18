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
    /// With `--key-provider file`: the root key file. Set, it is only read (never created),
    /// e.g. a systemd credential (`%d/root.key`). [default: <data-dir>/root.key, created on
    /// first run]
    #[arg(long, env = "WARD_KEY_FILE")]
    pub(crate) key_file: Option<PathBuf>,
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
    /// TOML file with any of: data_dir, policy, key_provider, key_file, key_command,
    /// database_url, listen, tls_cert, tls_key, log_format, retention_interval, origin,
    /// invitation_ttl, checkpoint_interval, header_timeout, body_timeout, idle_timeout,
    /// max_connections, trusted_proxies, and a [backup] table (locations, s3_endpoint, every,
    /// verify_every, keep_daily, keep_weekly, keep_monthly, max_age, key_window). A mistake in
    /// it is named by file, line and key, and nothing is opened.
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
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) key_command: Option<String>,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
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
    /// The root key file, when configured apart from the data directory.
    pub(crate) key_file: Option<PathBuf>,
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
            key_file: self.key_file.clone().or(file.key_file.clone()),
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

impl Settings {
    /// The root key file of the `file` provider: configured, or beside the data.
    pub(crate) fn key_file(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("root.key"))
    }
}

/// Reads and checks the config file: syntax, keys, types and every value, before anything
/// is opened.
pub(crate) fn read_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    let file: FileConfig =
        toml::from_str(&text).map_err(|e| ConfigError::parse(path, &text, &e))?;
    if let Some((key, message)) = file.invalid_value() {
        return Err(ConfigError::value(path, &text, key, message).into());
    }
    Ok(file)
}

impl FileConfig {
    /// The first key whose value is well-typed but unusable, with why.
    fn invalid_value(&self) -> Option<(&'static str, String)> {
        let periods = [
            ("retention_interval", &self.retention_interval),
            ("invitation_ttl", &self.invitation_ttl),
            ("checkpoint_interval", &self.checkpoint_interval),
            ("header_timeout", &self.header_timeout),
            ("body_timeout", &self.body_timeout),
            ("idle_timeout", &self.idle_timeout),
        ];
        for (key, value) in periods {
            if let Some(v) = value {
                match ward_policy::Period::parse(v) {
                    Ok(p) if p.as_duration().whole_seconds() >= 1 => {}
                    Ok(_) => return Some((key, format!("{v:?} must be at least 1s"))),
                    Err(e) => return Some((key, format!("{v:?}: {e}"))),
                }
            }
        }
        if let Some(f) = &self.log_format
            && f != "json"
            && f != "pretty"
        {
            return Some((
                "log_format",
                format!("{f:?}: expected \"json\" or \"pretty\""),
            ));
        }
        if self.max_connections == Some(0) {
            return Some(("max_connections", "must be at least 1".into()));
        }
        if let Err(e) = origin(self.origin.clone()) {
            return Some(("origin", e.to_string()));
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Some((
                "database_url",
                "must be a postgres:// URL (leave it out for the embedded SQLite)".into(),
            ));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Some(("tls_cert", "needs tls_key as well".into())),
            (None, Some(_)) => return Some(("tls_key", "needs tls_cert as well".into())),
            _ => {}
        }
        if self.key_provider == Some(KeyProviderKind::Command) && self.key_command.is_none() {
            return Some(("key_provider", "\"command\" needs key_command".into()));
        }
        None
    }
}

/// A config file Ward cannot use, located by file, line and key (exit code 2).
#[derive(Debug)]
pub(crate) struct ConfigError {
    path: PathBuf,
    line: Option<usize>,
    key: Option<String>,
    message: String,
}

impl ConfigError {
    /// From a TOML syntax or type error, whose span points at the key or its value.
    fn parse(path: &Path, text: &str, e: &toml::de::Error) -> Self {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let key = line.and_then(|n| text.lines().nth(n - 1)).and_then(key_of);
        Self {
            path: path.to_path_buf(),
            line,
            key,
            message: e.message().trim().replace('\n', " "),
        }
    }

    /// A well-typed value that is unusable.
    fn value(path: &Path, text: &str, key: &str, message: String) -> Self {
        let line = text
            .lines()
            .position(|l| key_of(l).as_deref() == Some(key))
            .map(|i| i + 1);
        Self {
            path: path.to_path_buf(),
            line,
            key: Some(key.to_owned()),
            message,
        }
    }
}

/// The key a `key = value` line sets.
fn key_of(line: &str) -> Option<String> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('#')).then(|| key.to_owned())
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "config {}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

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

    fn config_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ward.toml");
        std::fs::write(&path, text).unwrap();
        let e = read_config(&path).unwrap_err();
        assert!(e.downcast_ref::<ConfigError>().is_some(), "{e:#}");
        e.to_string()
            .replace(&path.display().to_string(), "ward.toml")
    }

    #[test]
    fn config_mistakes_name_the_file_line_and_key() {
        let cases = [
            (
                "data_dir = \"/var/lib/ward\"\nlisten = \"localhost\"\n",
                "config ward.toml:2: key `listen`",
            ),
            (
                "# a comment\n\ndata_dr = \"/var/lib/ward\"\n",
                "config ward.toml:3: key `data_dr`: unknown field",
            ),
            (
                "max_connections = \"many\"\n",
                "config ward.toml:1: key `max_connections`",
            ),
            (
                "origin = \"a\"\nheader_timeout = \"soon\"\n",
                "config ward.toml:2: key `header_timeout`: \"soon\"",
            ),
            (
                "log_format = \"xml\"\n",
                "config ward.toml:1: key `log_format`: \"xml\": expected",
            ),
            (
                "\n\nmax_connections = 0\n",
                "config ward.toml:3: key `max_connections`: must be at least 1",
            ),
            (
                "tls_cert = \"/etc/ward/cert.pem\"\n",
                "config ward.toml:1: key `tls_cert`: needs tls_key",
            ),
            (
                "database_url = \"mysql://x\"\n",
                "config ward.toml:1: key `database_url`: must be a postgres:// URL",
            ),
        ];
        for (text, expected) in cases {
            let got = config_error(text);
            assert!(got.starts_with(expected), "{text:?}: {got}");
            assert!(!got.contains('\n'), "one line: {got}");
        }
    }

    #[test]
    fn the_packaged_config_file_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../packaging/ward.toml");
        let file = read_config(Path::new(path)).unwrap();
        assert_eq!(file.data_dir.as_deref(), Some(Path::new("/var/lib/ward")));
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

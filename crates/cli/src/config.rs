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
    /// TOML file with any of: data_dir, policy, key_provider, key_command, database_url,
    /// listen, log_format, retention_interval, header_timeout, body_timeout, idle_timeout,
    /// max_connections, trusted_proxies.
    #[arg(long, env = "WARD_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

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
    pub(crate) header_timeout: Option<String>,
    pub(crate) body_timeout: Option<String>,
    pub(crate) idle_timeout: Option<String>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) trusted_proxies: Option<Vec<std::net::IpAddr>>,
}

/// Settings after precedence is applied.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) data_dir: PathBuf,
    pub(crate) database_url: Option<String>,
    pub(crate) policy: Option<PathBuf>,
    pub(crate) key_provider: KeyProviderKind,
    pub(crate) key_command: Option<String>,
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
        };
        Ok((settings, file))
    }
}

fn read_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

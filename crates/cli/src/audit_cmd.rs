//! `ward audit verify|checkpoint`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use ward_audit::{Checkpoint, PublicKey, SigningKey};
use ward_vault::{LogVerifyError, check_exported_checkpoint, verify_log};

use crate::Outcome;
use crate::config::StoreArgs;
use crate::setup;

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Recompute the audit log's Merkle tree and hash chain from storage and check every
    /// signed checkpoint. Exit 0 when intact, 1 naming the first bad index when not.
    ///
    /// With --checkpoint, also proves that an exported checkpoint (held by a tenant or an
    /// auditor since) is a prefix of today's log: the operator cannot have rewritten history.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// A checkpoint exported earlier (JSON from `GET /v1/audit/checkpoint`).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Verify signatures with this public key (base64) instead of the data directory's.
        #[arg(long)]
        public_key: Option<String>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Sign a checkpoint of the log now and print it as JSON (to export and keep elsewhere).
    Checkpoint {
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub(crate) async fn run(cmd: AuditCommand) -> anyhow::Result<Outcome> {
    match cmd {
        AuditCommand::Verify {
            store,
            checkpoint,
            public_key,
            quiet,
        } => {
            let (settings, _) = store.resolve()?;
            // Verification only reads: it must never create a data directory, keys or a
            // database, or a mistyped --data-dir would "verify" an empty log.
            let store: Box<dyn ward_store::Store> = match &settings.database_url {
                Some(url) => Box::new(ward_store::PostgresStore::open(url).await?),
                None => {
                    let db = settings.data_dir.join("ward.db");
                    if !db.is_file() {
                        anyhow::bail!("no Ward database at {} (check --data-dir)", db.display());
                    }
                    crate::setup::check_private_dir(&settings.data_dir)?;
                    Box::new(ward_store::SqliteStore::open(&db).await?)
                }
            };
            let key = match public_key {
                Some(k) => PublicKey::from_base64(&k).context("--public-key")?,
                None => {
                    let path = settings.data_dir.join("audit-signing.key");
                    if !path.is_file() {
                        anyhow::bail!(
                            "no audit signing key at {}; pass --public-key",
                            path.display()
                        );
                    }
                    SigningKey::load_or_create(&path)?.0.public_key()
                }
            };
            let bar = if quiet {
                ProgressBar::hidden()
            } else {
                ProgressBar::new(0)
            };
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} verifying [{bar:40}] {pos}/{len} events ({per_sec})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let result = verify_log(store.as_ref(), &key, |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .await;
            bar.finish_and_clear();
            let report = match result {
                Ok(r) => r,
                Err(
                    e @ (LogVerifyError::Tampered(_)
                    | LogVerifyError::ColumnMismatch { .. }
                    | LogVerifyError::TreeNodeMismatch { .. }
                    | LogVerifyError::SubjectIndexMismatch { .. }),
                ) => {
                    println!("audit log FAILED verification: {e}");
                    if let Some(i) = e.first_bad_index() {
                        println!("first bad index: {i}");
                    }
                    return Ok(Outcome::CheckFailed);
                }
                Err(e) => return Err(e.into()),
            };
            println!(
                "audit log intact: {} events (from index {}), {} signed checkpoints verified, root {}",
                report.tree_size, report.first_index, report.checkpoints_verified, report.root
            );
            if let Some(path) = checkpoint {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let cp: Checkpoint =
                    serde_json::from_str(&text).context("parsing checkpoint JSON")?;
                match check_exported_checkpoint(store.as_ref(), &cp, &key).await {
                    Ok(()) => println!(
                        "exported checkpoint at size {} is consistent with the current log",
                        cp.tree_size
                    ),
                    Err(reason) => {
                        println!(
                            "exported checkpoint at size {} is NOT consistent: {reason}",
                            cp.tree_size
                        );
                        return Ok(Outcome::CheckFailed);
                    }
                }
            }
            Ok(Outcome::Ok)
        }
        AuditCommand::Checkpoint { store } => {
            let (settings, _) = store.resolve()?;
            let opened = setup::open(&settings).await?;
            let cp = opened.vault.checkpoint().await?;
            println!("{}", serde_json::to_string_pretty(&cp)?);
            Ok(Outcome::Ok)
        }
    }
}

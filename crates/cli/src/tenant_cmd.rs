//! `ward tenant export`: the portable archive of a whole tenant, with a progress bar.

use std::io::Write as _;
use std::path::PathBuf;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;
use ward_vault::RequestContext;

use crate::Outcome;
use crate::config::StoreArgs;
use crate::setup;

#[derive(Subcommand)]
pub(crate) enum TenantCommand {
    /// Write every subject of a tenant, decrypted, with the policy schema, as JSON Lines.
    ///
    /// The export is an access like any other: it needs an owner or admin API key of the
    /// tenant (WARD_TOKEN) and is written to the tenant's audit log.
    Export {
        #[command(flatten)]
        store: StoreArgs,
        /// The tenant.
        #[arg(long)]
        tenant: Uuid,
        /// An owner or admin key of the tenant.
        #[arg(long, env = "WARD_TOKEN", hide_env_values = true)]
        token: String,
        /// Output file (JSON Lines); standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub(crate) async fn run(cmd: TenantCommand) -> anyhow::Result<Outcome> {
    match cmd {
        TenantCommand::Export {
            store,
            tenant,
            token,
            out,
        } => {
            let (settings, _) = store.resolve()?;
            let opened = setup::open(&settings).await?;
            let principal = opened
                .vault
                .authenticate(Some(&token), "cli-tenant-export", None)
                .await?;
            let ctx = RequestContext {
                principal,
                request_id: format!("cli-export-{}", Uuid::now_v7()),
                client_ip: None,
            };
            let total = count_subjects(opened.store.as_ref(), tenant).await;
            let bar = if out.is_some() {
                ProgressBar::new(total)
            } else {
                ProgressBar::hidden()
            };
            bar.set_style(
                ProgressStyle::with_template("exporting [{bar:40}] {pos}/{len} subjects ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let mut sink: Box<dyn std::io::Write> = match &out {
                // The export is every subject's data in clear: private like the databases.
                Some(p) => Box::new(std::io::BufWriter::new(setup::create_private_file(p)?)),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut write_error = None;
            let n = opened
                .vault
                .export_tenant(&ctx, tenant, |line, done| {
                    // Written as it comes: the export holds one page of subjects, never the
                    // archive. A write error stops it.
                    if let Err(e) = writeln!(sink, "{line}") {
                        write_error = Some(e);
                    }
                    bar.set_position(done);
                    std::future::ready(write_error.is_none())
                })
                .await?;
            if let Some(e) = write_error {
                return Err(e.into());
            }
            sink.flush()?;
            bar.finish_and_clear();
            if let Some(p) = out {
                eprintln!("exported {n} subjects to {}", p.display());
            }
            Ok(Outcome::Ok)
        }
    }
}

/// The number of subjects, for the progress bar, counted a page of ids at a time (a tenant's
/// ids all at once would be what the streamed export avoids). Zero when unreadable: the bar is
/// cosmetic and the export itself reports errors.
async fn count_subjects(store: &dyn ward_store::Store, tenant: Uuid) -> u64 {
    let mut after = None;
    let mut total = 0u64;
    while let Ok(ids) = store.subject_ids(tenant, after, 10_000).await {
        let Some(last) = ids.last() else { break };
        after = Some(*last);
        total += ids.len() as u64;
    }
    total
}

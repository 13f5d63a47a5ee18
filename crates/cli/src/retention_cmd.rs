//! `ward retention run`: the retention engine from the command line.

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;
use ward_vault::{RetentionOptions, RetentionReport};

use crate::Outcome;
use crate::config::StoreArgs;
use crate::setup;

#[derive(Args)]
pub(crate) struct RetentionArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print what would be deleted or anonymized; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Only this tenant (skips hold release, tenant destruction and audit pruning, which are
    /// global).
    #[arg(long)]
    tenant: Option<Uuid>,
    /// Records per commit; smaller batches block concurrent API writes for less time.
    #[arg(long, default_value_t = ward_vault::retention::DEFAULT_BATCH)]
    batch: u32,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: RetentionArgs) -> anyhow::Result<Outcome> {
    let (settings, _) = args.store.resolve()?;
    let opened = setup::open(&settings).await?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} retention: {pos} expired records examined ({per_sec})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let opts = RetentionOptions {
        dry_run: args.dry_run,
        tenant: args.tenant,
        batch: args.batch,
        ..RetentionOptions::default()
    };
    let report = opened
        .vault
        .run_retention(&opts, |n| bar.set_position(n))
        .await?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(Outcome::Ok)
}

/// A table by tenant and collection, then the global work.
pub(crate) fn print_report(r: &RetentionReport) {
    let verb = if r.dry_run { "would be" } else { "were" };
    println!(
        "{:<38} {:<20} {:>9} {:>11} {:>6}",
        "tenant", "collection", "deleted", "anonymized", "held"
    );
    for (tenant, collections) in &r.tenants {
        for (c, n) in collections {
            println!(
                "{:<38} {:<20} {:>9} {:>11} {:>6}",
                tenant.to_string(),
                c,
                n.deleted,
                n.anonymized,
                n.held
            );
        }
    }
    println!(
        "{} records {verb} deleted or anonymized; {} held records {verb} released; {} tenants {verb} destroyed; {} audit events {verb} pruned",
        r.total(),
        r.holds_released,
        r.tenants_destroyed.len(),
        r.audit_events_pruned
    );
}

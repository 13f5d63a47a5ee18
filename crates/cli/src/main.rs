//! `ward`: the one binary. Parses arguments, maps every outcome to an exit code, and leaves
//! the work to the library crates.
//!
//! Exit codes scripts can rely on:
//! - 0: success
//! - 1: a check failed (invalid policy, tampered audit log)
//! - 2: usage error (bad flags)
//! - 3: operational error (I/O, database, keys)

mod audit_cmd;
mod bench;
mod bench_more;
mod bench_unaudited;
mod config;
mod keys_cmd;
mod policy_cmd;
mod retention_cmd;
mod serve;
mod setup;
mod tenant_cmd;
mod user_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Ward keeps the personal data your privacy policy talks about, and keeps the policy's
/// promises: per-tenant encryption, purpose-bound access, a tamper-evident audit log of every
/// access, retention on schedule.
///
/// Start with `ward serve`: it creates ./ward-data on first run and prints the operator
/// token once. See `ward <command> --help` for each command.
#[derive(Parser)]
#[command(name = "ward", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API server (creates the data directory on first run).
    Serve(serve::ServeArgs),
    /// Create the data directory, keys and operator token without starting the server.
    Init(setup::InitArgs),
    /// Check or render a policy file.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Verify or checkpoint the tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Delete or anonymize expired records, release ended holds, destroy cancelled tenants
    /// past their grace period, prune the audit log (also runs inside `serve`).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Rotate the root key or a tenant key without downtime; show key versions.
    #[command(subcommand)]
    Keys(keys_cmd::KeysCommand),
    /// Tenant-level operations (portable export).
    #[command(subcommand)]
    Tenant(tenant_cmd::TenantCommand),
    /// Measure record put/get throughput, in-process and over HTTP.
    Bench(bench::BenchArgs),
    /// Platform accounts (operator and support staff) with passwords and TOTP.
    #[command(subcommand)]
    User(user_cmd::UserCommand),
    /// Print the permission table: which role may do what.
    Roles,
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Run retention once, with a progress bar, and print what was (or would be) done.
    Run(retention_cmd::RetentionArgs),
}

/// What a command reports back to `main`.
pub(crate) enum Outcome {
    /// Everything fine.
    Ok,
    /// The thing checked is not fine (exit 1).
    CheckFailed,
}

fn main() -> ExitCode {
    // Before anything can create a file: whatever Ward writes (databases and their WAL/SHM,
    // keys, exports, the example policy) is readable by its owner only, even where a file is
    // created by a library that does not let us choose its mode (SQLite).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(cmd) => policy_cmd::run(cmd),
        Command::Roles => Ok(user_cmd::roles()),
        command => runtime().and_then(|rt| {
            rt.block_on(async move {
                match command {
                    Command::Serve(args) => serve::run(args).await,
                    Command::Init(args) => setup::init(args).await,
                    Command::Audit(cmd) => audit_cmd::run(cmd).await,
                    Command::Bench(args) => bench::run(args).await,
                    Command::Retention(RetentionCommand::Run(args)) => {
                        retention_cmd::run(args).await
                    }
                    Command::Tenant(cmd) => tenant_cmd::run(cmd).await,
                    Command::Keys(cmd) => keys_cmd::run(cmd).await,
                    Command::User(cmd) => user_cmd::run(cmd).await,
                    Command::Policy(_) | Command::Roles => unreachable!("handled above"),
                }
            })
        }),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(3)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

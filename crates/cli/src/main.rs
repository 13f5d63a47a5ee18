//! `ward`: the one binary. Parses arguments, maps every outcome to an exit code, and leaves
//! the work to the library crates.
//!
//! Exit codes scripts can rely on:
//! - 0: success
//! - 1: a check failed (invalid policy, tampered audit log)
//! - 2: usage error (bad flags, an invalid config file)
//! - 3: operational error (I/O, database, keys)
//! - 4: partly done: a backup command completed in some locations and failed in others

mod audit_cmd;
mod backup_cmd;
mod backup_config;
mod backup_restore;
mod backup_schedule;
mod bench;
mod bench_more;
mod bench_unaudited;
mod config;
mod doctor_cmd;
mod keys_cmd;
mod malloc_arenas;
mod policy_cmd;
mod retention_cmd;
mod serve;
mod setup;
mod shell_cmd;
mod tenant_cmd;
mod user_cmd;
mod version;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

/// Ward keeps the personal data your privacy policy talks about, and keeps the policy's
/// promises: per-tenant encryption, purpose-bound access, a tamper-evident audit log of every
/// access, retention on schedule.
///
/// Start with `ward serve`: it creates ./ward-data on first run and prints the operator
/// token once. See `ward <command> --help` for each command.
#[derive(Parser)]
#[command(
    name = "ward",
    version = version::VERSION,
    propagate_version = true,
    max_term_width = 100
)]
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
    /// Encrypted, deduplicated backups in several locations: run, list, verify, restore,
    /// prune, repair.
    #[command(subcommand)]
    Backup(backup_cmd::BackupCommand),
    /// Measure record put/get throughput, in-process and over HTTP.
    Bench(bench::BenchArgs),
    /// Check the deployment (files, keys, database, audit log, retention, TLS, clock, disk)
    /// and say how to fix what is wrong. Exit 1 if any check fails.
    Doctor(doctor_cmd::DoctorArgs),
    /// Print a shell completion script: `ward completions bash|zsh|fish|elvish|powershell`.
    Completions(shell_cmd::CompletionsArgs),
    /// Render the man pages from these definitions (packaging).
    #[command(hide = true)]
    Man(shell_cmd::ManArgs),
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
    /// Done in some backup locations, failed in others (exit 4).
    Partial,
}

fn main() -> ExitCode {
    // Before anything can create a file: whatever Ward writes (databases and their WAL/SHM,
    // keys, exports, the example policy) is readable by its owner only, even where a file is
    // created by a library that does not let us choose its mode (SQLite).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    // Before any thread exists: a server bounds its malloc arenas (see the module).
    let arenas_kept = match cli.command {
        Command::Serve(_) => malloc_arenas::bound_for_serve(),
        _ => None,
    };
    let result = match cli.command {
        Command::Policy(cmd) => policy_cmd::run(cmd),
        Command::Completions(args) => Ok(shell_cmd::completions(&args, Cli::command())),
        Command::Man(args) => shell_cmd::man(&args, Cli::command()),
        Command::Roles => Ok(user_cmd::roles()),
        command => runtime().and_then(|rt| {
            rt.block_on(async move {
                match command {
                    Command::Serve(args) => serve::run(args, arenas_kept).await,
                    Command::Init(args) => setup::init(args).await,
                    Command::Audit(cmd) => audit_cmd::run(cmd).await,
                    Command::Bench(args) => bench::run(args).await,
                    Command::Retention(RetentionCommand::Run(args)) => {
                        retention_cmd::run(args).await
                    }
                    Command::Tenant(cmd) => tenant_cmd::run(cmd).await,
                    Command::Keys(cmd) => keys_cmd::run(cmd).await,
                    Command::Backup(cmd) => backup_cmd::run(cmd).await,
                    Command::Doctor(args) => doctor_cmd::run(args).await,
                    Command::User(cmd) => user_cmd::run(cmd).await,
                    Command::Policy(_)
                    | Command::Completions(_)
                    | Command::Man(_)
                    | Command::Roles => {
                        unreachable!("handled above")
                    }
                }
            })
        }),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(1),
        Ok(Outcome::Partial) => ExitCode::from(4),
        Err(e) => {
            eprintln!("error: {e:#}");
            // A config file Ward cannot use is a usage error: nothing was opened.
            if e.downcast_ref::<config::ConfigError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(3)
            }
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

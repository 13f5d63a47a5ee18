//! `ward policy check|render`.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use ward_policy::{Policy, RenderFormat};

use crate::Outcome;

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Validate a policy file; print every error as FILE:LINE:COLUMN: message.
    ///
    /// Exit code 0 when the policy is valid, 1 when it is not.
    Check {
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// Print the policy as a privacy notice, an Art. 30 record or a subprocessor table.
    Render {
        /// The policy file (TOML).
        file: PathBuf,
        /// What to print.
        #[arg(long, value_enum, default_value = "notice")]
        format: Format,
        /// The server config: with a [backup] table, the notice states the real backup
        /// schedule, the locations' regions and how long data and key backups are kept.
        #[arg(long, env = "WARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the example policy shipped with Ward (a starting point for your own).
    Example,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// Human-readable privacy notice (Markdown).
    Notice,
    /// GDPR Art. 30 record of processing activities (Markdown).
    Ropa,
    /// Subprocessor table (Markdown).
    Subprocessors,
}

pub(crate) fn run(cmd: PolicyCommand) -> anyhow::Result<Outcome> {
    match cmd {
        PolicyCommand::Check { file } => match Policy::load(&file) {
            Ok(p) => {
                println!(
                    "{}: ok ({} collections, {} subprocessors)",
                    file.display(),
                    p.collections.len(),
                    p.subprocessors.len()
                );
                Ok(Outcome::Ok)
            }
            Err(e) => {
                for d in &e.diagnostics {
                    eprintln!("{d}");
                }
                eprintln!("{}: {} error(s)", file.display(), e.diagnostics.len());
                Ok(Outcome::CheckFailed)
            }
        },
        PolicyCommand::Render {
            file,
            format,
            config,
        } => match Policy::load(&file) {
            Ok(p) => {
                let backups = backup_facts(config.as_deref())?;
                let f = match format {
                    Format::Notice => RenderFormat::Notice,
                    Format::Ropa => RenderFormat::Ropa,
                    Format::Subprocessors => RenderFormat::Subprocessors,
                };
                print!("{}", p.render_with_backups(f, backups.as_ref()));
                Ok(Outcome::Ok)
            }
            Err(e) => {
                for d in &e.diagnostics {
                    eprintln!("{d}");
                }
                Ok(Outcome::CheckFailed)
            }
        },
        PolicyCommand::Example => {
            print!("{}", ward_policy::EXAMPLE_POLICY);
            Ok(Outcome::Ok)
        }
    }
}

/// What the notice says about backups, from the server config's `[backup]` table.
fn backup_facts(
    config: Option<&std::path::Path>,
) -> anyhow::Result<Option<ward_policy::BackupFacts>> {
    let Some(path) = config else { return Ok(None) };
    let file = crate::config::read_config(path)?;
    let settings = crate::backup_config::BackupSettings::resolve(&[], None, file.backup.as_ref())?;
    Ok((!settings.locations.is_empty()).then(|| settings.notice_facts()))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn the_notice_states_the_configured_backups() {
        let mut config = tempfile::NamedTempFile::new().unwrap();
        write!(
            config,
            r#"[backup]
locations = [{{ url = "/srv/backups", region = "on-site (Frankfurt)" }}, {{ url = "s3://b/w", region = "eu-central-1" }}]
every = "6h"
key_window = "10d"
"#
        )
        .unwrap();
        let facts = backup_facts(Some(config.path())).unwrap().expect("facts");
        let policy = Policy::parse(ward_policy::EXAMPLE_POLICY, "example.toml").unwrap();
        let notice = policy.render_with_backups(RenderFormat::Notice, Some(&facts));
        let line = notice
            .lines()
            .find(|l| l.starts_with("- **Backups:**"))
            .expect("backups line");
        for part in [
            "every 6 hours",
            "2 separate locations",
            "on-site (Frankfurt), eu-central-1",
            "10 days",
        ] {
            assert!(line.contains(part), "{part:?} missing from {line}");
        }
        let plain = policy.render(RenderFormat::Notice);
        assert!(!plain.contains("separate location"));
        assert!(backup_facts(None).unwrap().is_none());
    }
}

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
        PolicyCommand::Render { file, format } => match Policy::load(&file) {
            Ok(p) => {
                let f = match format {
                    Format::Notice => RenderFormat::Notice,
                    Format::Ropa => RenderFormat::Ropa,
                    Format::Subprocessors => RenderFormat::Subprocessors,
                };
                print!("{}", p.render(f));
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

//! `ward completions SHELL` and the hidden `ward man`: what a package installs next to the
//! binary, generated from the same clap definitions that parse the arguments, so they never
//! drift from the commands.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use clap_complete::Shell;

use crate::Outcome;

#[derive(Args)]
pub(crate) struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Args)]
pub(crate) struct ManArgs {
    /// Write `ward.1` and one page per subcommand (`ward-serve.1`, …) into this directory
    /// instead of printing `ward.1`.
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

/// Prints the completion script of `shell` on standard output.
///
/// Install it where the shell looks, e.g. `ward completions bash >
/// /etc/bash_completion.d/ward`, `ward completions zsh > "${fpath[1]}/_ward"`,
/// `ward completions fish > ~/.config/fish/completions/ward.fish`.
pub(crate) fn completions(args: &CompletionsArgs, mut cmd: clap::Command) -> Outcome {
    clap_complete::generate(args.shell, &mut cmd, "ward", &mut std::io::stdout());
    Outcome::Ok
}

/// Renders the man pages (roff).
pub(crate) fn man(args: &ManArgs, cmd: clap::Command) -> anyhow::Result<Outcome> {
    match &args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing man pages to {}", dir.display()))?;
        }
        None => clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout())
            .context("writing the man page")?,
    }
    Ok(Outcome::Ok)
}

//! Helpers for tests that run the `ward` binary itself.

use std::process::{Command, Output};

/// Prints a `ward` run (its arguments, exit code, stdout and stderr) to the test's captured
/// output and hands the output back. Every CLI suite logs its runs this one way, so a failing
/// test shows what each command answered without each suite repeating the formatting.
pub fn logged(args: &[&str], out: Output) -> Output {
    eprintln!(
        "ward {args:?} -> {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs the binary at `bin` with `args`, with the `unset` environment variables removed (a
/// developer's own `WARD_*` settings must not steer a test), and logs the run as [`logged`].
///
/// # Panics
/// When the binary cannot be started.
pub fn run_without(bin: &str, args: &[&str], unset: &[&str]) -> Output {
    let mut command = Command::new(bin);
    command.args(args);
    for var in unset {
        command.env_remove(var);
    }
    logged(args, command.output().expect("run ward"))
}

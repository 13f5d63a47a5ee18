//! Checks of the files on disk: the data directory, the key files, the policy.

use crate::{Context, Finding, Status};
use std::os::unix::fs::MetadataExt as _;

/// The audit signing key's file name in the data directory.
pub(crate) const SIGNING_KEY: &str = "audit-signing.key";

/// The data directory exists, is a directory, is private and belongs to whoever checks.
pub(crate) fn data_dir(ctx: &Context) -> Finding {
    const NAME: &str = "data_dir";
    let Some(dir) = &ctx.setup.data_dir else {
        return Finding::ok(NAME, "no data directory is configured");
    };
    let shown = dir.display();
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Finding::fail(
                NAME,
                format!("the data directory {shown} does not exist"),
                "check --data-dir (or data_dir in the config file); `ward init` creates a new one",
            );
        }
        Err(e) => {
            return Finding::fail(
                NAME,
                format!("the data directory {shown} cannot be read: {e}"),
                "run the doctor as the user Ward runs as (e.g. `sudo -u ward ward doctor …`)",
            );
        }
    };
    if !meta.is_dir() {
        return Finding::fail(
            NAME,
            format!("{shown} is not a directory"),
            "point --data-dir at Ward's data directory",
        );
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Finding::fail(
            NAME,
            format!(
                "the data directory {shown} has mode {mode:o}: group or others can reach the \
                 databases and keys in it (Ward refuses to start on it)"
            ),
            format!("chmod 700 {shown}"),
        );
    }
    let me = rustix::process::geteuid().as_raw();
    if me != 0 && meta.uid() != me {
        return Finding::warn(
            NAME,
            format!(
                "{shown} belongs to uid {}, but the checks run as uid {me}",
                meta.uid()
            ),
            "run the doctor as root or as the user Ward runs as (e.g. `sudo -u ward ward \
             doctor …`)",
        );
    }
    Finding::ok(NAME, format!("{shown} is private (mode {mode:o})"))
}

/// The root key file (file provider) and the audit signing key are private.
pub(crate) fn key_files(ctx: &Context) -> Finding {
    const NAME: &str = "key_files";
    let mut files = Vec::new();
    if let Some(file) = ctx.setup.root_key.as_ref().and_then(|k| k.file.clone()) {
        files.push(("root key", file));
    }
    if let Some(dir) = &ctx.setup.data_dir {
        files.push(("audit signing key", dir.join(SIGNING_KEY)));
    }
    if files.is_empty() {
        return Finding::ok(
            NAME,
            "no key file is configured (the root key comes from a provider)",
        );
    }
    // Key files belong to whoever owns the data (the user Ward runs as); a root key may also
    // belong to root when the service manager hands it over (a systemd credential).
    let data_owner = ctx
        .setup
        .data_dir
        .as_ref()
        .and_then(|d| std::fs::metadata(d).ok())
        .map(|m| m.uid());
    let mut problems: Vec<Finding> = Vec::new();
    let mut fine = Vec::new();
    for (what, path) in &files {
        let shown = path.display();
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => problems.push(Finding::fail(
                NAME,
                format!("the {what} file {shown} is missing"),
                format!(
                    "restore {shown} from your key backup (without the {what}, nothing sealed or \
                     signed under it can be opened or verified)"
                ),
            )),
            Err(e) => problems.push(Finding::fail(
                NAME,
                format!("the {what} file {shown} cannot be read: {e}"),
                "run the doctor as the user Ward runs as",
            )),
            Ok(meta) => {
                let mode = meta.mode() & 0o777;
                if mode & 0o077 != 0 {
                    problems.push(Finding::fail(
                        NAME,
                        format!(
                            "the {what} file {shown} has mode {mode:o}: group or others can read \
                             it (Ward refuses to load it)"
                        ),
                        format!(
                            "chmod 600 {shown}; if others may have read it, treat it as leaked \
                             and rotate it (`ward keys rotate --root` for the root key)"
                        ),
                    ));
                } else if let Some(owner) = data_owner
                    && meta.uid() != owner
                    && !(*what == "root key" && meta.uid() == 0)
                {
                    problems.push(Finding::warn(
                        NAME,
                        format!(
                            "the {what} file {shown} belongs to uid {}, the data directory to \
                             uid {owner}",
                            meta.uid()
                        ),
                        format!("chown the file to the user Ward runs as (uid {owner})"),
                    ));
                } else {
                    fine.push(format!("{what} {shown} (mode {mode:o})"));
                }
            }
        }
    }
    if problems.is_empty() {
        return Finding::ok(NAME, format!("private: {}", fine.join(", ")));
    }
    merge(NAME, problems)
}

/// The policy file is there and valid.
pub(crate) fn policy(ctx: &Context) -> Finding {
    const NAME: &str = "policy";
    let Some(path) = &ctx.setup.policy else {
        return Finding::ok(NAME, "the running server validated its policy at start");
    };
    let shown = path.display();
    if !path.exists() {
        return Finding::warn(
            NAME,
            format!(
                "there is no policy at {shown}: `ward serve` writes the example policy there at its first start"
            ),
            format!(
                "write your own policy to {shown} (start from `ward policy example`), or pass --policy"
            ),
        );
    }
    match ward_policy::Policy::load(path) {
        Ok(p) => Finding::ok(
            NAME,
            format!("{shown} is valid ({} collections)", p.collections.len()),
        ),
        Err(e) => Finding::fail(
            NAME,
            format!(
                "{shown} is invalid ({} error(s)){}",
                e.diagnostics.len(),
                e.diagnostics
                    .first()
                    .map(|d| format!(", first: {d}"))
                    .unwrap_or_default()
            ),
            format!("`ward policy check {shown}` lists every error with its line"),
        ),
    }
}

/// One finding from several: the worst status, every explanation and fix.
pub(crate) fn merge(name: &'static str, findings: Vec<Finding>) -> Finding {
    let status = findings
        .iter()
        .map(|f| f.status)
        .max()
        .unwrap_or(Status::Ok);
    let explanation = findings
        .iter()
        .map(|f| f.explanation.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let fixes: Vec<&str> = findings.iter().filter_map(|f| f.fix.as_deref()).collect();
    Finding {
        check: name,
        status,
        explanation,
        fix: (!fixes.is_empty()).then(|| fixes.join("; ")),
    }
}

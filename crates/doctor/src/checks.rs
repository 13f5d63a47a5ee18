//! The list of checks, in the order they run: the database check opens the store the later
//! checks read, and a check whose prerequisite failed says it was not run.

use crate::{Check, CheckFuture, Context, backups, disk, files, stored, tls};

/// Every check `ward doctor` and `GET /v1/doctor` run.
pub const CHECKS: &[Check] = &[
    Check {
        name: "data_dir",
        run: data_dir,
    },
    Check {
        name: "key_files",
        run: key_files,
    },
    Check {
        name: "policy",
        run: policy,
    },
    Check {
        name: "database",
        run: database,
    },
    Check {
        name: "root_key",
        run: root_key,
    },
    Check {
        name: "audit_log",
        run: audit_log,
    },
    Check {
        name: "retention",
        run: retention,
    },
    Check {
        name: "backups",
        run: backups,
    },
    Check {
        name: "tls_certificate",
        run: tls_certificate,
    },
    Check {
        name: "clock",
        run: clock,
    },
    Check {
        name: "disk_space",
        run: disk_space,
    },
];

fn data_dir(ctx: &Context) -> CheckFuture<'_> {
    Box::pin(async move { files::data_dir(ctx) })
}

fn key_files(ctx: &Context) -> CheckFuture<'_> {
    Box::pin(async move { files::key_files(ctx) })
}

fn policy(ctx: &Context) -> CheckFuture<'_> {
    Box::pin(async move { files::policy(ctx) })
}

fn database(ctx: &Context) -> CheckFuture<'_> {
    Box::pin(stored::database(ctx))
}

fn root_key(ctx: &Context) -> CheckFuture<'_> {
    Box::pin(stored::root_key(ctx))
}

fn audit_log(ctx: &Context) -> CheckFuture<'_> {
    Box::pin(stored::audit_log(ctx))
}

fn retention(ctx: &Context) -> CheckFuture<'_> {
    Box::pin(stored::retention(ctx))
}

fn backups(ctx: &Context) -> CheckFuture<'_> {
    Box::pin(backups::check(ctx))
}

fn tls_certificate(ctx: &Context) -> CheckFuture<'_> {
    Box::pin(async move { tls::check(ctx) })
}

fn clock(ctx: &Context) -> CheckFuture<'_> {
    Box::pin(stored::clock(ctx))
}

fn disk_space(ctx: &Context) -> CheckFuture<'_> {
    Box::pin(async move { disk::check(ctx) })
}

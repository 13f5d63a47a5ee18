// The webhooks suite's server options and module list, shared by both backends:
// `webhooks_sqlite.rs` and `webhooks_postgres.rs` each `include!` this file after naming their
// `BACKEND`. Modules only one backend has (`sqlite_*`) stay in that entry file. Inside an
// included file `#[path]` is relative to this directory, hence the bare file names.

use ward_testkit::Options;

/// Options of every server in this suite.
pub(crate) fn options() -> Options {
    Options::on(BACKEND)
}

#[path = "receiver.rs"]
mod receiver;

#[path = "delivery.rs"]
mod delivery;

// The incidents suite's server options and module list, shared by both backends:
// `incidents_sqlite.rs` and `incidents_postgres.rs` each `include!` this file after naming
// their `BACKEND`. Modules only one backend has (`sqlite_*`) stay in that entry file. Inside an
// included file `#[path]` is relative to this directory, hence the bare file names.

use ward_testkit::Options;

/// Options of every server in this suite.
pub(crate) fn options() -> Options {
    Options::on(BACKEND)
}

#[path = "flow.rs"]
mod flow;

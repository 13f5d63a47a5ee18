// The HTTP edge suite's server options and module list, shared by both backends:
// `edge_sqlite.rs` and `edge_postgres.rs` each `include!` this file after naming their
// `BACKEND`. Modules only one backend has (`sqlite_*`) stay in that entry file. Inside an
// included file `#[path]` is relative to this directory, hence the bare file names.

use ward_testkit::{Options, TestServer};

/// Options of every server in this suite.
pub(crate) fn options() -> Options {
    Options::on(BACKEND)
}

/// A fresh server on this suite's backend.
pub(crate) async fn start() -> TestServer {
    TestServer::start_with(options()).await
}

#[path = "common.rs"]
mod common;

#[path = "headers.rs"]
mod headers;
#[path = "isolation.rs"]
mod isolation;
#[path = "throttle.rs"]
mod throttle;

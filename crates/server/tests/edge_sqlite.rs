//! The HTTP edge (authentication throttle, security headers, request ids, Bearer parsing) on
//! SQLite; modules named `sqlite_*` measure the data directory and run only here.

use ward_testkit::{Backend, Options, TestServer};

pub(crate) fn options() -> Options {
    Options {
        backend: Backend::Sqlite,
        ..Options::default()
    }
}

pub(crate) async fn start() -> TestServer {
    TestServer::start_with(options()).await
}

include!("edge/suite.rs");

#[path = "edge/sqlite_budget.rs"]
mod sqlite_budget;

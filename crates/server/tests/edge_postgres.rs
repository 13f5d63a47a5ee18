//! The HTTP edge (authentication throttle, security headers, request ids, Bearer parsing) on
//! PostgreSQL.

use ward_testkit::{Backend, Options, TestServer};

pub(crate) fn options() -> Options {
    Options {
        backend: Backend::Postgres,
        ..Options::default()
    }
}

pub(crate) async fn start() -> TestServer {
    TestServer::start_with(options()).await
}

include!("edge/suite.rs");

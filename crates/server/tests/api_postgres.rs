//! The HTTP API suite on PostgreSQL.
//!
//! The modules under `api/` know nothing about the database: every test starts its server
//! with [`start`] (or [`options`] plus its own policy), so a PostgreSQL entry point can include
//! the same modules with another backend.

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

include!("api/suite.rs");

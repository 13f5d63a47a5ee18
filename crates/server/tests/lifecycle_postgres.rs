//! Data-subject rights, erasure, the tenant lifecycle and retention, on PostgreSQL.
//!
//! Backend-neutral modules talk HTTP (and the vault's public API) only, so a PostgreSQL entry
//! point can include them as well; `sqlite_*` modules open the SQLite files directly to check
//! what is (and is no longer) on disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_testkit::{Backend, Options, TestServer};

/// Options of every server in this suite.
pub(crate) fn options() -> Options {
    Options {
        backend: Backend::Postgres,
        ..Default::default()
    }
}

/// A fresh server on this suite's backend.
pub(crate) async fn start() -> TestServer {
    TestServer::start_with(options()).await
}

include!("lifecycle/suite.rs");

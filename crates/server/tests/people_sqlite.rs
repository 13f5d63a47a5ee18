//! People (users, sessions, TOTP, support grants) over HTTP, on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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

include!("people/suite.rs");

#[path = "people/sqlite_tamper.rs"]
mod sqlite_tamper;

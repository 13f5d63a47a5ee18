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

#[path = "people/common.rs"]
mod common;

#[path = "people/login.rs"]
mod login;
#[path = "people/members.rs"]
mod members;
#[path = "people/sessions.rs"]
mod sessions;
#[path = "people/sqlite_tamper.rs"]
mod sqlite_tamper;
#[path = "people/support.rs"]
mod support;
#[path = "people/table.rs"]
mod table;
#[path = "people/tenant_totp.rs"]
mod tenant_totp;
#[path = "people/totp.rs"]
mod totp;

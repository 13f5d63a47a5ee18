//! Security and audit-tamper tests, on SQLite.
//!
//! Backend-neutral modules (`audit_*`, `proofs_*`) talk HTTP only and can be included by a
//! PostgreSQL entry as well; `sqlite_*` modules edit the SQLite file directly.

use ward_testkit::{Backend, Options, TestServer};

/// Options of every server in this suite.
pub(crate) fn options() -> Options {
    Options {
        backend: Backend::Sqlite,
        ..Default::default()
    }
}

/// A fresh server on this suite's backend.
pub(crate) async fn start() -> TestServer {
    TestServer::start_with(options()).await
}

include!("security/suite.rs");

#[path = "security/sqlite_tamper.rs"]
mod sqlite_tamper;

#[path = "security/sqlite_plaintext.rs"]
mod sqlite_plaintext;

#[path = "security/sqlite_audit_index.rs"]
mod sqlite_audit_index;

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

#[path = "security/support.rs"]
mod support;

#[path = "security/audit_common.rs"]
mod audit_common;
#[path = "security/audit_facts.rs"]
mod audit_facts;
#[path = "security/audit_outcomes.rs"]
mod audit_outcomes;
#[path = "security/audit_queries.rs"]
mod audit_queries;
#[path = "security/audit_tenants.rs"]
mod audit_tenants;

#[path = "security/proofs_checkpoints.rs"]
mod proofs_checkpoints;
#[path = "security/proofs_endpoints.rs"]
mod proofs_endpoints;
#[path = "security/proofs_support.rs"]
mod proofs_support;
#[path = "security/proofs_verifier.rs"]
mod proofs_verifier;

#[path = "security/sqlite_tamper.rs"]
mod sqlite_tamper;

#[path = "security/sqlite_plaintext.rs"]
mod sqlite_plaintext;

#[path = "security/sqlite_audit_index.rs"]
mod sqlite_audit_index;

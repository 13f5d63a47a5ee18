// The security suite's server options and module list, shared by both backends:
// `security_sqlite.rs` and `security_postgres.rs` each `include!` this file after naming their
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

#[path = "support.rs"]
mod support;

#[path = "audit_common.rs"]
mod audit_common;
#[path = "audit_facts.rs"]
mod audit_facts;
#[path = "audit_outcomes.rs"]
mod audit_outcomes;
#[path = "audit_queries.rs"]
mod audit_queries;
#[path = "audit_tenants.rs"]
mod audit_tenants;

#[path = "proofs_checkpoints.rs"]
mod proofs_checkpoints;
#[path = "proofs_endpoints.rs"]
mod proofs_endpoints;
#[path = "proofs_support.rs"]
mod proofs_support;
#[path = "proofs_verifier.rs"]
mod proofs_verifier;

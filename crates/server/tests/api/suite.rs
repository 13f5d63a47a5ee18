// The HTTP API suite's server options and module list, shared by both backends: `api_sqlite.rs`
// and `api_postgres.rs` each `include!` this file after naming their `BACKEND`. Modules only
// one backend has (`sqlite_*`) stay in that entry file. Inside an included file `#[path]` is
// relative to this directory, hence the bare file names.

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

#[path = "alerts.rs"]
mod alerts;
#[path = "audit.rs"]
mod audit;
#[path = "auth.rs"]
mod auth;
#[path = "batch.rs"]
mod batch;
#[path = "bounds.rs"]
mod bounds;
#[path = "cards.rs"]
mod cards;
#[path = "control_chars.rs"]
mod control_chars;
#[path = "disclosure.rs"]
mod disclosure;
#[path = "doctor.rs"]
mod doctor;
#[path = "expiry.rs"]
mod expiry;
#[path = "isolation.rs"]
mod isolation;
#[path = "keys.rs"]
mod keys;
#[path = "lookup.rs"]
mod lookup;
#[path = "props.rs"]
mod props;
#[path = "records_concurrency.rs"]
mod records_concurrency;
#[path = "records_read.rs"]
mod records_read;
#[path = "records_retention.rs"]
mod records_retention;
#[path = "records_validation.rs"]
mod records_validation;
#[path = "records_write.rs"]
mod records_write;
#[path = "roles.rs"]
mod roles;
#[path = "subjects.rs"]
mod subjects;
#[path = "system.rs"]
mod system;
#[path = "tenants.rs"]
mod tenants;

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

#[path = "lifecycle/support.rs"]
mod support;

#[path = "lifecycle/erasure.rs"]
mod erasure;

#[path = "lifecycle/restrictions.rs"]
mod restrictions;

#[path = "lifecycle/export.rs"]
mod export;
#[path = "lifecycle/export_stream.rs"]
mod export_stream;

#[path = "lifecycle/requests.rs"]
mod requests;

#[path = "lifecycle/tenant.rs"]
mod tenant;

#[path = "lifecycle/retention.rs"]
mod retention;
#[path = "lifecycle/retention_audit_log.rs"]
mod retention_audit_log;
#[path = "lifecycle/retention_overrides.rs"]
mod retention_overrides;
#[path = "lifecycle/retention_rules.rs"]
mod retention_rules;
#[path = "lifecycle/retention_sweep.rs"]
mod retention_sweep;
#[path = "lifecycle/rotation.rs"]
mod rotation;

#[path = "lifecycle/record_rotation.rs"]
mod record_rotation;

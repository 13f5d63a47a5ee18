// The lifecycle suite's server options and module list, shared by both backends:
// `lifecycle_sqlite.rs` and `lifecycle_postgres.rs` each `include!` this file after naming
// their `BACKEND`. Modules only one backend has (`sqlite_*`) stay in that entry file. Inside an
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

#[path = "erasure.rs"]
mod erasure;

#[path = "restrictions.rs"]
mod restrictions;

#[path = "export.rs"]
mod export;
#[path = "export_stream.rs"]
mod export_stream;

#[path = "requests.rs"]
mod requests;

#[path = "tenant.rs"]
mod tenant;

#[path = "retention.rs"]
mod retention;
#[path = "retention_audit_log.rs"]
mod retention_audit_log;
#[path = "retention_overrides.rs"]
mod retention_overrides;
#[path = "retention_rules.rs"]
mod retention_rules;
#[path = "retention_sweep.rs"]
mod retention_sweep;
#[path = "rotation.rs"]
mod rotation;

#[path = "record_rotation.rs"]
mod record_rotation;

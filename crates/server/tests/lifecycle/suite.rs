// The lifecycle suite's module list, shared by both backends: `lifecycle_sqlite.rs` and
// `lifecycle_postgres.rs` each `include!` this file after defining their backend's `options()`.
// Modules only one backend has (`sqlite_*`) stay in that entry file. Inside an included
// file `#[path]` is relative to this directory, hence the bare file names.

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

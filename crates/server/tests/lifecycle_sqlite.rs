//! Data-subject rights, erasure, the tenant lifecycle and retention, on SQLite.
//!
//! Backend-neutral modules talk HTTP (and the vault's public API) only, so a PostgreSQL entry
//! point can include them as well; `sqlite_*` modules open the SQLite files directly to check
//! what is (and is no longer) on disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_testkit::Backend;

/// The database this entry point runs the suite on.
const BACKEND: Backend = Backend::Sqlite;

include!("lifecycle/suite.rs");

#[path = "lifecycle/sqlite_support.rs"]
mod sqlite_support;

#[path = "lifecycle/sqlite_shred.rs"]
mod sqlite_shred;

#[path = "lifecycle/sqlite_erasure.rs"]
mod sqlite_erasure;

#[path = "lifecycle/sqlite_tenant.rs"]
mod sqlite_tenant;

#[path = "lifecycle/sqlite_retention.rs"]
mod sqlite_retention;

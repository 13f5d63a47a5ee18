//! Data-subject rights, erasure, the tenant lifecycle and retention, on PostgreSQL.
//!
//! Backend-neutral modules talk HTTP (and the vault's public API) only, so a PostgreSQL entry
//! point can include them as well; `sqlite_*` modules open the SQLite files directly to check
//! what is (and is no longer) on disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_testkit::Backend;

/// The database this entry point runs the suite on.
const BACKEND: Backend = Backend::Postgres;

include!("lifecycle/suite.rs");

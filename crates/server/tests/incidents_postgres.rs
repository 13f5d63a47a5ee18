//! Incidents and the 72-hour notification clock over HTTP, on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_testkit::Backend;

/// The database this entry point runs the suite on.
const BACKEND: Backend = Backend::Postgres;

include!("incidents/suite.rs");

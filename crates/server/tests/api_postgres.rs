//! The HTTP API suite on PostgreSQL.
//!
//! The modules under `api/` know nothing about the database: every test starts its server
//! with [`start`] (or [`options`] plus its own policy), so a PostgreSQL entry point can include
//! the same modules with another backend.

use ward_testkit::Backend;

/// The database this entry point runs the suite on.
const BACKEND: Backend = Backend::Postgres;

include!("api/suite.rs");

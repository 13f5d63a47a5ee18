//! People (users, sessions, TOTP, support grants) over HTTP, on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_testkit::Backend;

/// The database this entry point runs the suite on.
const BACKEND: Backend = Backend::Postgres;

include!("people/suite.rs");

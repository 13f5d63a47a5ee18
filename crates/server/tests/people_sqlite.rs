//! People (users, sessions, TOTP, support grants) over HTTP, on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_testkit::Backend;

/// The database this entry point runs the suite on.
const BACKEND: Backend = Backend::Sqlite;

include!("people/suite.rs");

#[path = "people/sqlite_tamper.rs"]
mod sqlite_tamper;

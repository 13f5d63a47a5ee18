//! Alert webhooks over HTTP against a real local receiver, on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_testkit::Backend;

/// The database this entry point runs the suite on.
const BACKEND: Backend = Backend::Sqlite;

include!("webhooks/suite.rs");

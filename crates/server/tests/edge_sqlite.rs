//! The HTTP edge (authentication throttle, security headers, request ids, Bearer parsing) on
//! SQLite; modules named `sqlite_*` measure the data directory and run only here.

use ward_testkit::Backend;

/// The database this entry point runs the suite on.
const BACKEND: Backend = Backend::Sqlite;

include!("edge/suite.rs");

#[path = "edge/sqlite_budget.rs"]
mod sqlite_budget;

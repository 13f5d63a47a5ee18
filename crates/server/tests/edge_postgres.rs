//! The HTTP edge (authentication throttle, security headers, request ids, Bearer parsing) on
//! PostgreSQL.

use ward_testkit::Backend;

/// The database this entry point runs the suite on.
const BACKEND: Backend = Backend::Postgres;

include!("edge/suite.rs");

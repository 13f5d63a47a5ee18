//! Security and audit-tamper tests, on PostgreSQL.
//!
//! Backend-neutral modules (`audit_*`, `proofs_*`) talk HTTP only and can be included by a
//! PostgreSQL entry as well; `sqlite_*` modules edit the SQLite file directly.

use ward_testkit::Backend;

/// The database this entry point runs the suite on.
const BACKEND: Backend = Backend::Postgres;

include!("security/suite.rs");

//! Security and audit-tamper tests, on SQLite.
//!
//! Backend-neutral modules (`audit_*`, `proofs_*`) talk HTTP only and can be included by a
//! PostgreSQL entry as well; `sqlite_*` modules edit the SQLite file directly.

use ward_testkit::Backend;

/// The database this entry point runs the suite on.
const BACKEND: Backend = Backend::Sqlite;

include!("security/suite.rs");

#[path = "security/sqlite_tamper.rs"]
mod sqlite_tamper;

#[path = "security/sqlite_plaintext.rs"]
mod sqlite_plaintext;

#[path = "security/sqlite_audit_index.rs"]
mod sqlite_audit_index;

#[path = "security/sqlite_tree_nodes.rs"]
mod sqlite_tree_nodes;

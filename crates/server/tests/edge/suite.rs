// The HTTP edge suite's module list, shared by both backends: `edge_sqlite.rs` and
// `edge_postgres.rs` each `include!` this file after defining their backend's `options()`.
// Modules only one backend has (`sqlite_*`) stay in that entry file. Inside an included
// file `#[path]` is relative to this directory, hence the bare file names.

#[path = "common.rs"]
mod common;

#[path = "headers.rs"]
mod headers;
#[path = "isolation.rs"]
mod isolation;
#[path = "throttle.rs"]
mod throttle;

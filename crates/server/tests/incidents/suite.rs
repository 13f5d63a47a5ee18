// The incidents suite's module list, shared by both backends: `incidents_sqlite.rs` and
// `incidents_postgres.rs` each `include!` this file after defining their backend's `options()`.
// Modules only one backend has (`sqlite_*`) stay in that entry file. Inside an included
// file `#[path]` is relative to this directory, hence the bare file names.

#[path = "flow.rs"]
mod flow;

// The webhooks suite's module list, shared by both backends: `webhooks_sqlite.rs` and
// `webhooks_postgres.rs` each `include!` this file after defining their backend's `options()`.
// Modules only one backend has (`sqlite_*`) stay in that entry file. Inside an included
// file `#[path]` is relative to this directory, hence the bare file names.

#[path = "receiver.rs"]
mod receiver;

#[path = "delivery.rs"]
mod delivery;

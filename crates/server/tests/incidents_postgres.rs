//! Incidents and the 72-hour notification clock over HTTP, on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_testkit::{Backend, Options};

/// Options of every server in this suite.
pub(crate) fn options() -> Options {
    Options {
        backend: Backend::Postgres,
        ..Options::default()
    }
}

include!("incidents/suite.rs");

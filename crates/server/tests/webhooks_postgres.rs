//! Alert webhooks over HTTP against a real local receiver, on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_testkit::{Backend, Options};

/// Options of every server in this suite.
pub(crate) fn options() -> Options {
    Options {
        backend: Backend::Postgres,
        ..Options::default()
    }
}

include!("webhooks/suite.rs");

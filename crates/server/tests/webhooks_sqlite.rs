//! Alert webhooks over HTTP against a real local receiver, on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ward_testkit::{Backend, Options};

/// Options of every server in this suite.
pub(crate) fn options() -> Options {
    Options {
        backend: Backend::Sqlite,
        ..Options::default()
    }
}

include!("webhooks/suite.rs");

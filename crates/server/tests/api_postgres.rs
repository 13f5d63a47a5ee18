//! The HTTP API suite on PostgreSQL.
//!
//! The modules under `api/` know nothing about the database: every test starts its server
//! with [`start`] (or [`options`] plus its own policy), so a PostgreSQL entry point can include
//! the same modules with another backend.

use ward_testkit::{Backend, Options, TestServer};

pub(crate) fn options() -> Options {
    Options {
        backend: Backend::Postgres,
        ..Options::default()
    }
}

pub(crate) async fn start() -> TestServer {
    TestServer::start_with(options()).await
}

#[path = "api/common.rs"]
mod common;

#[path = "api/alerts.rs"]
mod alerts;
#[path = "api/audit.rs"]
mod audit;
#[path = "api/auth.rs"]
mod auth;
#[path = "api/batch.rs"]
mod batch;
#[path = "api/bounds.rs"]
mod bounds;
#[path = "api/cards.rs"]
mod cards;
#[path = "api/control_chars.rs"]
mod control_chars;
#[path = "api/disclosure.rs"]
mod disclosure;
#[path = "api/doctor.rs"]
mod doctor;
#[path = "api/expiry.rs"]
mod expiry;
#[path = "api/isolation.rs"]
mod isolation;
#[path = "api/keys.rs"]
mod keys;
#[path = "api/lookup.rs"]
mod lookup;
#[path = "api/props.rs"]
mod props;
#[path = "api/records_concurrency.rs"]
mod records_concurrency;
#[path = "api/records_read.rs"]
mod records_read;
#[path = "api/records_retention.rs"]
mod records_retention;
#[path = "api/records_validation.rs"]
mod records_validation;
#[path = "api/records_write.rs"]
mod records_write;
#[path = "api/roles.rs"]
mod roles;
#[path = "api/subjects.rs"]
mod subjects;
#[path = "api/system.rs"]
mod system;
#[path = "api/tenants.rs"]
mod tenants;

//! HTTP handlers, one module per area of the API.

pub(crate) mod alerts;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod doctor;
pub(crate) mod incidents;
pub(crate) mod keys;
pub(crate) mod records;
pub(crate) mod rights;
pub(crate) mod support;
pub(crate) mod system;
pub(crate) mod tenants;
pub(crate) mod users;
pub(crate) mod webhooks;

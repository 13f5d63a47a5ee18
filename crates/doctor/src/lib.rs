//! `ward doctor` and `GET /v1/doctor`: checks a deployment the way an operator would, and
//! says for each finding what is wrong and how to fix it.
//!
//! A check is a small function from the [`Context`] (what the deployment is configured to
//! be, and its store once opened) to one [`Finding`]; [`CHECKS`] lists them in the order they
//! run. Adding a check is adding an entry. Checks only read: nothing is created, migrated or
//! repaired, so the doctor is safe to run against a live deployment and against a data
//! directory that must not be touched.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backups;
mod checks;
mod context;
mod disk;
mod files;
mod stored;
pub mod tls;

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

pub use backups::BackupSchedule;
pub use checks::CHECKS;
pub use context::{Context, Database, RootKey, Setup};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// Works now, needs attention (e.g. a certificate expiring within two weeks).
    Warn,
    /// Broken, or unsafe: the deployment should not run like this.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Finding {
    /// Which check (stable, snake_case).
    pub check: &'static str,
    /// How it came out.
    pub status: Status,
    /// What was found, in a sentence or two.
    pub explanation: String,
    /// What to do about it (absent when the status is ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    /// A passing finding.
    pub fn ok(check: &'static str, explanation: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Ok,
            explanation: explanation.into(),
            fix: None,
        }
    }

    /// A finding that needs attention, with its fix.
    pub fn warn(
        check: &'static str,
        explanation: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            check,
            status: Status::Warn,
            explanation: explanation.into(),
            fix: Some(fix.into()),
        }
    }

    /// A failing finding, with its fix.
    pub fn fail(
        check: &'static str,
        explanation: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            check,
            status: Status::Fail,
            explanation: explanation.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every finding, and the worst status among them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// The worst status of any check.
    pub status: Status,
    /// One finding per check, in the order they ran.
    pub checks: Vec<Finding>,
}

impl Report {
    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.status == Status::Fail
    }
}

/// What a check function returns. Not `Send`: the PostgreSQL driver's futures cannot be
/// proven `Send` behind a higher-ranked function pointer, so a server runs the checks on a
/// blocking thread of its runtime ([`examine_blocking`]).
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Finding> + 'a>>;

/// A named check.
#[derive(Clone, Copy)]
pub struct Check {
    /// The finding's `check` name.
    pub name: &'static str,
    /// Runs it.
    pub run: for<'a> fn(&'a Context) -> CheckFuture<'a>,
}

/// Runs every check of [`CHECKS`] in order against `ctx`.
pub async fn examine(ctx: &Context) -> Report {
    examine_with(ctx, CHECKS).await
}

/// [`examine`] from async code that must stay `Send` (an HTTP handler): the checks run on a
/// blocking thread, driven by the current runtime.
///
/// # Panics
/// Outside a Tokio runtime.
pub async fn examine_blocking(ctx: Context) -> Report {
    let handle = tokio::runtime::Handle::current();
    match tokio::task::spawn_blocking(move || handle.block_on(examine(&ctx))).await {
        Ok(report) => report,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Runs `checks` in order against `ctx`.
pub async fn examine_with(ctx: &Context, checks: &[Check]) -> Report {
    let mut findings = Vec::with_capacity(checks.len());
    for check in checks {
        findings.push((check.run)(ctx).await);
    }
    Report {
        status: findings
            .iter()
            .map(|f| f.status)
            .max()
            .unwrap_or(Status::Ok),
        checks: findings,
    }
}

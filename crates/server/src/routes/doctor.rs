//! `GET /v1/doctor`: `ward doctor` against the running deployment, for operators.

use axum::extract::State;
use ward_doctor::{Context, Report, Status};
use ward_policy::RuleName;
use ward_vault::PlatformOperation;

use crate::extract::Auth;
use crate::{ApiError, AppState, ErrorBody};

/// Check the deployment: the data directory and key files, the root key provider and where
/// the key sits, the database schema, the audit log since its last checkpoint, retention,
/// the TLS certificate's dates, the clock and free disk space. Each finding has a status
/// (`ok`, `warn`, `fail`), an explanation and a fix; `status` is the worst of them. The
/// answer is 200 whatever the findings (monitor `status`).
#[utoipa::path(get, path = "/v1/doctor", tag = "system",
    responses(
        (status = 200, body = Report, description = "Every check's finding; `status` is the worst"),
        (status = 403, body = ErrorBody, description = "Not an operator key (`role_not_permitted`)"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn doctor(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> Result<axum::Json<Report>, ApiError> {
    s.vault
        .authorize_platform(&ctx, PlatformOperation::ExamineDeployment)
        .await?;
    Ok(axum::Json(examine(&s).await))
}

/// Examines the deployment and hands what the monitoring rules watch for among the findings
/// to them, so that a failure becomes an alert whether an operator asked or the server's own
/// schedule ([`watch`]) did.
pub(crate) async fn examine(s: &AppState) -> Report {
    let context = Context::new((*s.doctor).clone(), s.vault.now())
        .with_store(s.vault.store().clone())
        .with_audit_key(s.vault.audit_public_key());
    let report = ward_doctor::examine_blocking(context).await;
    for f in &report.checks {
        if let Some(rule) = rule_of(f.check, f.status) {
            s.vault
                .report_finding(rule, &format!("doctor:{}", f.check))
                .await;
        }
    }
    report
}

/// The rule a doctor finding trips, if any: only failures, and only of the checks a rule
/// exists for (a stale or failed backup or restore drill fails the `backups` check).
fn rule_of(check: &str, status: Status) -> Option<RuleName> {
    match (check, status) {
        ("data_dir" | "key_files", Status::Fail) => Some(RuleName::PermissionsTooOpen),
        ("audit_log", Status::Fail) => Some(RuleName::AuditVerificationFailure),
        ("backups", Status::Fail) => Some(RuleName::BackupFailure),
        _ => None,
    }
}

/// Runs the doctor every `every` for as long as the server runs: what nobody asks about (a
/// backup that silently stopped, key files whose mode changed, an audit log altered under the
/// server) still reaches the rules, as an alert. The first examination is one period after
/// start, when the schedules it checks have had their chance to run.
pub async fn watch(state: AppState, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every.max(std::time::Duration::from_secs(1)));
    tick.tick().await;
    loop {
        tick.tick().await;
        let report = examine(&state).await;
        tracing::info!(status = ?report.status, "scheduled self-check");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_of_watched_checks_trip_a_rule() {
        assert_eq!(
            rule_of("backups", Status::Fail),
            Some(RuleName::BackupFailure)
        );
        assert_eq!(rule_of("backups", Status::Warn), None);
        assert_eq!(
            rule_of("key_files", Status::Fail),
            Some(RuleName::PermissionsTooOpen)
        );
        assert_eq!(
            rule_of("audit_log", Status::Fail),
            Some(RuleName::AuditVerificationFailure)
        );
        assert_eq!(rule_of("audit_log", Status::Ok), None);
        assert_eq!(rule_of("disk", Status::Fail), None);
    }
}

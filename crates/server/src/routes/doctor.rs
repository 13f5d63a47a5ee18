//! `GET /v1/doctor`: `ward doctor` against the running deployment, for operators.

use axum::extract::State;
use axum::http::StatusCode;
use ward_doctor::{Context, Report, Status};
use ward_policy::RuleName;
use ward_vault::Role;

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
    if ctx.principal.role != Role::Operator {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "role_not_permitted",
            "only operators examine the deployment",
        ));
    }
    let context = Context::new((*s.doctor).clone(), s.vault.now())
        .with_store(s.vault.store().clone())
        .with_audit_key(s.vault.audit_public_key());
    let report = ward_doctor::examine_blocking(context).await;
    // What the monitoring rules watch for among the findings becomes an alert as well.
    for f in &report.checks {
        let rule = match (f.check, f.status) {
            ("data_dir" | "key_files", Status::Fail) => RuleName::PermissionsTooOpen,
            ("audit_log", Status::Fail) => RuleName::AuditVerificationFailure,
            _ => continue,
        };
        s.vault
            .report_finding(rule, &format!("doctor:{}", f.check))
            .await;
    }
    Ok(axum::Json(report))
}

//! Alerts of the detection rules: the operator's platform-wide list, a tenant's own list, and
//! acknowledging and resolving them.

use axum::extract::State;
use serde::Deserialize;
use uuid::Uuid;
use ward_vault::{AlertChange, AlertOut, RequestContext};

use crate::extract::{Auth, Path, Query};
use crate::params::bounded;
use crate::{ApiError, AppState, ErrorBody};

/// Filters and paging of an alert list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertParams {
    /// Only alerts in this status: `open`, `acknowledged` or `resolved`. Anything else is a
    /// 400 `invalid_status`.
    status: Option<String>,
    /// The id of the last alert of the previous page: the list continues after it (newest
    /// first). An alert outside the list is a 404.
    before: Option<Uuid>,
    /// Page size, 1 to 500 (default 100). Anything else is a 400 `invalid_limit`.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
}

impl AlertParams {
    fn status(&self) -> Result<Option<&str>, ApiError> {
        match self.status.as_deref() {
            None => Ok(None),
            Some(s @ ("open" | "acknowledged" | "resolved")) => Ok(Some(s)),
            Some(_) => Err(ApiError::bad_request(
                "invalid_status",
                "status is open, acknowledged or resolved",
            )
            .with_field("status")),
        }
    }

    fn limit(&self) -> Result<u32, ApiError> {
        let max = ward_vault::MAX_ALERT_PAGE;
        Ok(bounded(
            self.limit.as_deref(),
            "limit",
            "invalid_limit",
            1,
            u64::from(max),
        )?
        // Within 1..=MAX_ALERT_PAGE, which is a u32.
        .map_or(100, |l| u32::try_from(l).unwrap_or(max)))
    }
}

/// Every alert of the platform, newest first (operators). Alerts name rules, principals,
/// tenants and audit indices; never a data value.
#[utoipa::path(get, path = "/v1/alerts", tag = "monitoring",
    params(AlertParams),
    responses((status = 200, body = Vec<AlertOut>), (status = 400, body = ErrorBody, description = "`status` or `limit` out of range (`field` names it)"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn list_alerts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(p): Query<AlertParams>,
) -> Result<axum::Json<Vec<AlertOut>>, ApiError> {
    let (status, limit) = (p.status()?, p.limit()?);
    Ok(axum::Json(
        s.vault
            .list_alerts(&ctx, None, status, p.before, limit)
            .await?,
    ))
}

/// The tenant's alerts, newest first (owners, admins, auditors; operators).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/alerts", tag = "monitoring",
    params(("tenant" = Uuid, Path, description = "Tenant id"), AlertParams),
    responses((status = 200, body = Vec<AlertOut>), (status = 400, body = ErrorBody, description = "`status` or `limit` out of range (`field` names it)"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn list_tenant_alerts(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
    Query(p): Query<AlertParams>,
) -> Result<axum::Json<Vec<AlertOut>>, ApiError> {
    let (status, limit) = (p.status()?, p.limit()?);
    Ok(axum::Json(
        s.vault
            .list_alerts(&ctx, Some(tenant), status, p.before, limit)
            .await?,
    ))
}

/// Acknowledge an alert (operators). An alert already acknowledged or resolved is 409.
#[utoipa::path(post, path = "/v1/alerts/{alert}/acknowledge", tag = "monitoring",
    params(("alert" = Uuid, Path, description = "Alert id")),
    responses((status = 200, body = AlertOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn acknowledge(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(alert): Path<Uuid>,
) -> Result<axum::Json<AlertOut>, ApiError> {
    change(&s, &ctx, None, alert, AlertChange::Acknowledge).await
}

/// Resolve an alert (operators). A resolved alert is 409; the next hit of its rule and scope
/// opens a new one.
#[utoipa::path(post, path = "/v1/alerts/{alert}/resolve", tag = "monitoring",
    params(("alert" = Uuid, Path, description = "Alert id")),
    responses((status = 200, body = AlertOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn resolve(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(alert): Path<Uuid>,
) -> Result<axum::Json<AlertOut>, ApiError> {
    change(&s, &ctx, None, alert, AlertChange::Resolve).await
}

/// Acknowledge one of the tenant's alerts (its owner; operators).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/alerts/{alert}/acknowledge", tag = "monitoring",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("alert" = Uuid, Path, description = "Alert id")),
    responses((status = 200, body = AlertOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn acknowledge_tenant(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, alert)): Path<(Uuid, Uuid)>,
) -> Result<axum::Json<AlertOut>, ApiError> {
    change(&s, &ctx, Some(tenant), alert, AlertChange::Acknowledge).await
}

/// Resolve one of the tenant's alerts (its owner; operators).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/alerts/{alert}/resolve", tag = "monitoring",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("alert" = Uuid, Path, description = "Alert id")),
    responses((status = 200, body = AlertOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn resolve_tenant(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, alert)): Path<(Uuid, Uuid)>,
) -> Result<axum::Json<AlertOut>, ApiError> {
    change(&s, &ctx, Some(tenant), alert, AlertChange::Resolve).await
}

/// One acknowledge or resolve, answered with the alert as it now is: the four routes differ
/// only in whether a tenant scopes the alert and in the change.
async fn change(
    s: &AppState,
    ctx: &RequestContext,
    tenant: Option<Uuid>,
    alert: Uuid,
    what: AlertChange,
) -> Result<axum::Json<AlertOut>, ApiError> {
    Ok(axum::Json(
        s.vault.change_alert(ctx, tenant, alert, what).await?,
    ))
}

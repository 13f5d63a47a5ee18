//! Support grants: support staff ask, the tenant's owners and admins decide.

use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;
use ward_vault::{GrantDecision, GrantOut, NewGrant};

use crate::extract::{Auth, Json, Path};
use crate::{ApiError, AppState, ErrorBody};

/// Ask for access to the tenant's data (support users). The grant waits for an owner or admin
/// of the tenant; with `"break_glass": true` it opens at once for at most 4 hours and the
/// tenant is notified. Without a live grant, support users get 404 on every tenant data
/// endpoint.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/support-grants", tag = "support", request_body = NewGrant,
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 201, body = GrantOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 408, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("session" = [])))]
pub(crate) async fn request_grant(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
    Json(body): Json<NewGrant>,
) -> Result<(StatusCode, axum::Json<GrantOut>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.vault.request_grant(&ctx, tenant, body).await?),
    ))
}

/// The tenant's support grants with how often each was used (owners, admins, auditors).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/support-grants", tag = "support",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = Vec<GrantOut>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn list_grants(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
) -> Result<axum::Json<Vec<GrantOut>>, ApiError> {
    Ok(axum::Json(s.vault.list_grants(&ctx, tenant).await?))
}

async fn decide(
    s: &AppState,
    ctx: &ward_vault::RequestContext,
    (tenant, grant): (Uuid, Uuid),
    decision: GrantDecision,
) -> Result<axum::Json<GrantOut>, ApiError> {
    Ok(axum::Json(
        s.vault.decide_grant(ctx, tenant, grant, decision).await?,
    ))
}

/// Approve a requested grant (owners and admins): it opens now for its duration. A grant
/// not in `requested` is 409 `grant_state`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/support-grants/{grant}/approve", tag = "support",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("grant" = Uuid, Path, description = "Grant id")),
    responses((status = 200, body = GrantOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn approve_grant(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(ids): Path<(Uuid, Uuid)>,
) -> Result<axum::Json<GrantOut>, ApiError> {
    decide(&s, &ctx, ids, GrantDecision::Approve).await
}

/// Deny a requested grant (owners and admins).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/support-grants/{grant}/deny", tag = "support",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("grant" = Uuid, Path, description = "Grant id")),
    responses((status = 200, body = GrantOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn deny_grant(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(ids): Path<(Uuid, Uuid)>,
) -> Result<axum::Json<GrantOut>, ApiError> {
    decide(&s, &ctx, ids, GrantDecision::Deny).await
}

/// End an open grant early (owners and admins); it stops working at once.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/support-grants/{grant}/revoke", tag = "support",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("grant" = Uuid, Path, description = "Grant id")),
    responses((status = 200, body = GrantOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn revoke_grant(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(ids): Path<(Uuid, Uuid)>,
) -> Result<axum::Json<GrantOut>, ApiError> {
    decide(&s, &ctx, ids, GrantDecision::Revoke).await
}

//! Tenants and their API keys.

use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;
use ward_vault::{KeyOut, NewKey, NewTenant, TenantOut};

use crate::extract::{Auth, Json, Path};
use crate::{ApiError, AppState, ErrorBody};

/// Create a tenant (operator keys only). The tenant gets its own encryption key.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = NewTenant,
    responses((status = 201, body = TenantOut), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_tenant(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Json(body): Json<NewTenant>,
) -> Result<(StatusCode, axum::Json<TenantOut>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.vault.create_tenant(&ctx, body).await?),
    ))
}

/// Read a tenant.
#[utoipa::path(get, path = "/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = TenantOut), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_tenant(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
) -> Result<axum::Json<TenantOut>, ApiError> {
    Ok(axum::Json(s.vault.tenant(&ctx, tenant).await?))
}

/// Issue an API key for the tenant. The token is in this response and nowhere else.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/keys", tag = "tenants", request_body = NewKey,
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 201, body = KeyOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_key(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
    Json(body): Json<NewKey>,
) -> Result<(StatusCode, axum::Json<KeyOut>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.vault.create_key(&ctx, tenant, body).await?),
    ))
}

/// List the tenant's API keys (never their tokens).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/keys", tag = "tenants",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = Vec<KeyOut>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_keys(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
) -> Result<axum::Json<Vec<KeyOut>>, ApiError> {
    Ok(axum::Json(s.vault.list_keys(&ctx, tenant).await?))
}

/// Revoke an API key; it stops working at once.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/keys/{key}", tag = "tenants",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("key" = Uuid, Path, description = "Key id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn revoke_key(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, key)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    s.vault.revoke_key(&ctx, tenant, key).await?;
    Ok(StatusCode::NO_CONTENT)
}

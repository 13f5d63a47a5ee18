//! Tenants and their API keys.

use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;
use ward_vault::{
    ClaimInvitation, Claimed, CreatedTenant, InvitationOut, KeyOut, NewInvitation, NewKey,
    NewTenant, SettingsChange, TenantOut, TenantSettings,
};

use crate::extract::{Auth, Json, OptionalJson, Path, RequestMeta};
use crate::{ApiError, AppState, ErrorBody};

/// Create a tenant (operator keys only). The tenant gets its own encryption key, and the
/// response carries an `invitation` for its first owner: a token shown once, valid for one
/// claim until `expires_at` (72 hours by default). The operator gets no key of the tenant.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = NewTenant,
    responses((status = 201, body = CreatedTenant), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_tenant(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Json(body): Json<NewTenant>,
) -> Result<(StatusCode, axum::Json<CreatedTenant>), ApiError> {
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

/// Change the tenant's settings: `require_totp` makes every session opened with a password
/// alone (a user without TOTP) get 403 `totp_required` on every route of the tenant, until
/// the user enrols (`POST /v1/auth/totp`). Owners only, in both directions (an admin is 403
/// `role_not_permitted`); an owner signed in without TOTP cannot turn it on (409
/// `totp_not_enrolled`), so no owner locks itself out. API keys are not affected by the
/// requirement. Audited as `tenant_settings_update` with the old and new value.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/settings", tag = "tenants", request_body = SettingsChange,
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = TenantSettings), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn update_settings(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
    Json(body): Json<SettingsChange>,
) -> Result<axum::Json<TenantSettings>, ApiError> {
    Ok(axum::Json(
        s.vault.update_tenant_settings(&ctx, tenant, body).await?,
    ))
}

/// Issue an API key for the tenant. The token is in this response and nowhere else. Only the
/// tenant's owner and admin keys issue keys, each only of its own role or below (owner >
/// admin > member, auditor); operators never do (403 `role_not_permitted`).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/keys", tag = "tenants", request_body = NewKey,
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 201, body = KeyOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
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

/// Revoke an API key; it stops working at once. A tenant key revokes only keys of its own
/// role or below (an admin cannot revoke an owner); nobody revokes the tenant's last owner
/// key (409 `last_owner`).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/keys/{key}", tag = "tenants",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("key" = Uuid, Path, description = "Key id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn revoke_key(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, key)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    s.vault.revoke_key(&ctx, tenant, key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issue an invitation. Without a body (or without `role`): the invitation to become the
/// first owner of a tenant that has none, which yields an API key (operators). With `role`
/// (`owner`, `admin`, `member` with `purposes`, `auditor`) and optionally
/// `membership_expires_at`: an invitation for a person to join the tenant as a user (owners;
/// admins only for member and auditor). The token is shown once; it works once, until
/// `expires_at`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/invitations", tag = "tenants",
    request_body(content = Option<NewInvitation>, description = "Optional: a person's invitation"),
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 201, body = InvitationOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn issue_invitation(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
    OptionalJson(body): OptionalJson<NewInvitation>,
) -> Result<(StatusCode, axum::Json<InvitationOut>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            s.vault
                .issue_invitation(&ctx, tenant, body.unwrap_or_default())
                .await?,
        ),
    ))
}

/// Claim an invitation. A first-owner invitation (`invitation` or `token`, and `name`) gives
/// the tenant's owner key. A person's invitation (`token`, `email`, `password`) makes a user
/// account, or adds the membership to the existing account with that e-mail address after
/// checking its password (its sessions end); then log in with `POST /v1/auth/login`. An
/// unknown, expired or used token is the same 401 `invitation_invalid`.
#[utoipa::path(post, path = "/v1/invitations/claim", tag = "tenants", request_body = ClaimInvitation,
    responses((status = 201, body = Claimed), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn claim_invitation(
    State(s): State<AppState>,
    meta: RequestMeta,
    Json(body): Json<ClaimInvitation>,
) -> Result<(StatusCode, axum::Json<Claimed>), ApiError> {
    let claimed = s
        .vault
        .claim_invitation(body, &meta.request_id, meta.client_ip)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(claimed)))
}

//! A tenant's users: who belongs to the tenant with which role, role changes and removal.
//! People join by invitation (`POST /v1/tenants/{tenant}/invitations` with a `role`).

use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;
use ward_vault::{MemberOut, MembershipChange, ResetIssued};

use crate::extract::{Auth, Json, Path};
use crate::{ApiError, AppState, ErrorBody};

/// The tenant's users with their roles, purposes and membership ends (owners, admins,
/// auditors). Never a password, TOTP secret or recovery code.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/users", tag = "tenants",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = Vec<MemberOut>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn list_users(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
) -> Result<axum::Json<Vec<MemberOut>>, ApiError> {
    Ok(axum::Json(s.vault.list_members(&ctx, tenant).await?))
}

/// Change a user's role in the tenant (owners any role; admins between member and auditor).
/// Every session of the user ends at once: it logs in again under the new role. Taking the
/// owner role from the tenant's last owner is 409 `last_owner`.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/users/{user}", tag = "tenants", request_body = MembershipChange,
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("user" = Uuid, Path, description = "User id")),
    responses((status = 200, body = MemberOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn change_user(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, user)): Path<(Uuid, Uuid)>,
    Json(body): Json<MembershipChange>,
) -> Result<axum::Json<MemberOut>, ApiError> {
    Ok(axum::Json(
        s.vault.change_member_role(&ctx, tenant, user, body).await?,
    ))
}

/// Remove a user from the tenant, at once: its sessions end and the tenant is "not found"
/// to it from now on. Removing the tenant's last owner is 409 `last_owner`.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/users/{user}", tag = "tenants",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("user" = Uuid, Path, description = "User id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn remove_user(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, user)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    s.vault.remove_member(&ctx, tenant, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issue a single-use password reset token for a user of the tenant (owners for anyone,
/// admins for members and auditors), valid 24 hours; an earlier token of the account stops
/// working. Ward sends no mail: the token is in this response only, for the caller to hand
/// over; the user sets a new password with `POST /v1/auth/password/reset`. An account that is
/// also a user of another tenant is 409 `account_shared` (the operator's `ward user reset`
/// resets those), so one tenant cannot take over an account another tenant relies on.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/users/{user}/password-reset", tag = "tenants",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("user" = Uuid, Path, description = "User id")),
    responses((status = 201, body = ResetIssued), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn issue_password_reset(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, user)): Path<(Uuid, Uuid)>,
) -> Result<(StatusCode, axum::Json<ResetIssued>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.vault.issue_member_reset(&ctx, tenant, user).await?),
    ))
}

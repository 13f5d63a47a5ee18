//! Key rotation for operators: tenant keys through the API (the root key rotates with
//! `ward keys rotate --root`, next to the key provider).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use uuid::Uuid;
use ward_vault::{KeyJob, PlatformOperation, RequestContext, RotationReport};

use crate::extract::{Auth, Json};
use crate::{ApiError, AppState, ErrorBody};

/// Body of a tenant key rotation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateBody {
    /// The tenant whose key-encryption key is rotated.
    tenant: Uuid,
}

/// Key rotation is a platform operation: the permission table decides who runs it, and a
/// refusal is audited.
async fn operator_only(s: &AppState, ctx: &RequestContext) -> Result<(), ApiError> {
    Ok(s.vault
        .authorize_platform(ctx, PlatformOperation::RotateKeys)
        .await?)
}

/// Rotate a tenant's key: new key-encryption key, subject and hold keys rewrapped in one
/// transaction, no record touched, no downtime.
#[utoipa::path(post, path = "/v1/keys/rotate", tag = "keys", request_body = RotateBody,
    responses((status = 200, body = RotationReport), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn rotate(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Json(body): Json<RotateBody>,
) -> Result<axum::Json<RotationReport>, ApiError> {
    operator_only(&s, &ctx).await?;
    Ok(axum::Json(s.vault.rotate_tenant(body.tenant).await?))
}

/// Body of a record rotation.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateRecordsBody {
    /// Only this tenant; every active tenant when absent.
    #[serde(default)]
    tenant: Option<Uuid>,
}

/// The jobs a record rotation started (or found running).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct RotateRecordsOut {
    /// One job per tenant.
    jobs: Vec<KeyJob>,
}

/// Rotate record keys: every subject gets a new key and its records are re-encrypted under
/// it by a background job, in bounded batches, while the API keeps serving. Reads accept the
/// old key until the job has moved every record; then the old keys are destroyed. Follow the
/// job in `GET /v1/keys/status` or the `ward_key_job_progress_ratio` metric.
#[utoipa::path(post, path = "/v1/keys/rotate-records", tag = "keys", request_body = RotateRecordsBody,
    responses((status = 202, body = RotateRecordsOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn rotate_records(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Json(body): Json<RotateRecordsBody>,
) -> Result<(StatusCode, axum::Json<RotateRecordsOut>), ApiError> {
    operator_only(&s, &ctx).await?;
    let jobs = s
        .vault
        .start_record_rotation(Some(&ctx), body.tenant)
        .await?;
    s.key_jobs.wake();
    Ok((StatusCode::ACCEPTED, axum::Json(RotateRecordsOut { jobs })))
}

/// Root key versions in use and every tenant's key version.
#[utoipa::path(get, path = "/v1/keys/status", tag = "keys",
    responses((status = 200, description = "Key versions"), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn status(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    operator_only(&s, &ctx).await?;
    let st = s.vault.key_status().await?;
    Ok(axum::Json(serde_json::to_value(st).unwrap_or_default()))
}

//! Alert webhooks: a tenant's (owners and admins) and the operator's, their delivery log and
//! a test delivery. Deliveries themselves run from the outbox in the background
//! (`crate::webhook_worker`), so a slow receiver never slows a request.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use uuid::Uuid;
use ward_vault::{CreatedWebhook, DeliveryOut, WebhookOut};

use crate::extract::{Auth, Json, Path, Query};
use crate::params::bounded;
use crate::{ApiError, AppState, ErrorBody};

/// A webhook to create.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewWebhook {
    /// Absolute `http` or `https` URL (https strongly recommended), with a host, without a
    /// user name or password, at most 2,048 bytes; else 400 with `field: "url"`.
    url: String,
    /// The signing secret: 24 to 256 printable ASCII characters without spaces. When omitted,
    /// Ward generates 32 random bytes in hex. Returned once, in this response only.
    secret: Option<String>,
}

impl std::fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("NewWebhook")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Paging of a delivery log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveryParams {
    /// The id of the last delivery of the previous page: the log continues after it (newest
    /// first). A delivery of another webhook is a 404.
    before: Option<Uuid>,
    /// Page size, 1 to 200 (default 50). Anything else is a 400 `invalid_limit`.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
}

impl DeliveryParams {
    fn limit(&self) -> Result<u32, ApiError> {
        let max = ward_vault::MAX_DELIVERY_PAGE;
        Ok(bounded(
            self.limit.as_deref(),
            "limit",
            "invalid_limit",
            1,
            u64::from(max),
        )?
        // Within 1..=MAX_DELIVERY_PAGE, which is a u32.
        .map_or(50, |l| u32::try_from(l).unwrap_or(max)))
    }
}

async fn create(
    s: &AppState,
    ctx: &ward_vault::RequestContext,
    tenant: Option<Uuid>,
    body: NewWebhook,
) -> Result<(StatusCode, axum::Json<CreatedWebhook>), ApiError> {
    let created = s
        .vault
        .create_webhook(ctx, tenant, &body.url, body.secret)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Create a webhook for the tenant's alerts (owners, admins). At most 10 per tenant: past it,
/// 409 `webhook_limit`. The response carries the secret, never shown again.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/webhooks", tag = "monitoring", request_body = NewWebhook,
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 201, body = CreatedWebhook), (status = 400, body = ErrorBody, description = "`url` or `secret` invalid (`field` names it)"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`webhook_limit`: the tenant has 10 webhooks"), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn create_tenant_webhook(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
    Json(body): Json<NewWebhook>,
) -> Result<(StatusCode, axum::Json<CreatedWebhook>), ApiError> {
    create(&s, &ctx, Some(tenant), body).await
}

/// Create an operator webhook, which receives every alert (operators). At most 10.
#[utoipa::path(post, path = "/v1/webhooks", tag = "monitoring", request_body = NewWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 400, body = ErrorBody, description = "`url` or `secret` invalid (`field` names it)"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "`webhook_limit`: 10 operator webhooks exist"), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn create_operator_webhook(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Json(body): Json<NewWebhook>,
) -> Result<(StatusCode, axum::Json<CreatedWebhook>), ApiError> {
    create(&s, &ctx, None, body).await
}

/// The tenant's webhooks, oldest first (owners, admins); never their secrets.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/webhooks", tag = "monitoring",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = Vec<WebhookOut>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn list_tenant_webhooks(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
) -> Result<axum::Json<Vec<WebhookOut>>, ApiError> {
    Ok(axum::Json(s.vault.list_webhooks(&ctx, Some(tenant)).await?))
}

/// The operator's webhooks, oldest first (operators).
#[utoipa::path(get, path = "/v1/webhooks", tag = "monitoring",
    responses((status = 200, body = Vec<WebhookOut>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn list_operator_webhooks(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> Result<axum::Json<Vec<WebhookOut>>, ApiError> {
    Ok(axum::Json(s.vault.list_webhooks(&ctx, None).await?))
}

/// Delete one of the tenant's webhooks (owners, admins). Its pending deliveries are dropped;
/// its delivery log is kept.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/webhooks/{webhook}", tag = "monitoring",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("webhook" = Uuid, Path, description = "Webhook id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn delete_tenant_webhook(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, webhook)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    s.vault.delete_webhook(&ctx, Some(tenant), webhook).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete an operator webhook (operators).
#[utoipa::path(delete, path = "/v1/webhooks/{webhook}", tag = "monitoring",
    params(("webhook" = Uuid, Path, description = "Webhook id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn delete_operator_webhook(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(webhook): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    s.vault.delete_webhook(&ctx, None, webhook).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A tenant webhook's delivery log, newest first (owners, admins): status, attempts, the
/// latest HTTP status or error class; never a response body.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/webhooks/{webhook}/deliveries", tag = "monitoring",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("webhook" = Uuid, Path, description = "Webhook id"), DeliveryParams),
    responses((status = 200, body = Vec<DeliveryOut>), (status = 400, body = ErrorBody, description = "`limit` out of range"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn tenant_deliveries(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, webhook)): Path<(Uuid, Uuid)>,
    Query(p): Query<DeliveryParams>,
) -> Result<axum::Json<Vec<DeliveryOut>>, ApiError> {
    let limit = p.limit()?;
    Ok(axum::Json(
        s.vault
            .list_webhook_deliveries(&ctx, Some(tenant), webhook, p.before, limit)
            .await?,
    ))
}

/// An operator webhook's delivery log, newest first (operators).
#[utoipa::path(get, path = "/v1/webhooks/{webhook}/deliveries", tag = "monitoring",
    params(("webhook" = Uuid, Path, description = "Webhook id"), DeliveryParams),
    responses((status = 200, body = Vec<DeliveryOut>), (status = 400, body = ErrorBody, description = "`limit` out of range"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn operator_deliveries(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(webhook): Path<Uuid>,
    Query(p): Query<DeliveryParams>,
) -> Result<axum::Json<Vec<DeliveryOut>>, ApiError> {
    let limit = p.limit()?;
    Ok(axum::Json(
        s.vault
            .list_webhook_deliveries(&ctx, None, webhook, p.before, limit)
            .await?,
    ))
}

/// Queue a `webhook.test` delivery to one of the tenant's webhooks (owners, admins).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/webhooks/{webhook}/test", tag = "monitoring",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("webhook" = Uuid, Path, description = "Webhook id")),
    responses((status = 202, body = DeliveryOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn test_tenant_webhook(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, webhook)): Path<(Uuid, Uuid)>,
) -> Result<(StatusCode, axum::Json<DeliveryOut>), ApiError> {
    let out = s.vault.test_webhook(&ctx, Some(tenant), webhook).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(out)))
}

/// Queue a `webhook.test` delivery to an operator webhook (operators).
#[utoipa::path(post, path = "/v1/webhooks/{webhook}/test", tag = "monitoring",
    params(("webhook" = Uuid, Path, description = "Webhook id")),
    responses((status = 202, body = DeliveryOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn test_operator_webhook(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(webhook): Path<Uuid>,
) -> Result<(StatusCode, axum::Json<DeliveryOut>), ApiError> {
    let out = s.vault.test_webhook(&ctx, None, webhook).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(out)))
}

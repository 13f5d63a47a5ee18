//! Data-subject rights, requests, holds, retention overrides and the tenant lifecycle.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;
use ward_vault::{
    CompleteRequest, ErasureOut, NewRequest, RequestOut, RestrictionIn, RetentionOptions,
    RetentionReport, TenantOut,
};

use crate::extract::{Auth, Json, Path, Query};
use crate::{ApiError, AppState, ErrorBody};

/// Everything held about a subject, decrypted, with its schema and access log (GDPR Art. 15/20).
/// One JSON document, streamed: the access log goes out a page of events at a time, so a
/// subject read a million times costs the server one page.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/subjects/{subject}/export", tag = "rights",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("subject" = Uuid, Path, description = "Subject id")),
    responses((status = 200, content_type = "application/json", body = Object, description = "Subject export document (format ward.subject-export.v1), chunked"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn export_subject(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, subject)): Path<(Uuid, Uuid)>,
) -> Result<Response, ApiError> {
    streamed_subject_export(s, ctx, tenant, subject).await
}

/// Streams one subject's export; errors before the first byte are ordinary JSON errors.
async fn streamed_subject_export(
    s: AppState,
    ctx: ward_vault::RequestContext,
    tenant: Uuid,
    subject: Uuid,
) -> Result<Response, ApiError> {
    streamed("application/json", move |tx| async move {
        s.vault
            .export_subject_streamed(&ctx, tenant, subject, move |chunk| {
                let tx = tx.clone();
                async move { tx.send(Ok(Bytes::from(chunk))).await.is_ok() }
            })
            .await
            .map_err(ApiError::from)
    })
    .await
}

/// Query of the export by external reference.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefQuery {
    /// The tenant's reference for the subject.
    external_ref: String,
}

/// Subject export found by the tenant's external reference.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/subjects/export", tag = "rights",
    params(("tenant" = Uuid, Path, description = "Tenant id"), RefQuery),
    responses((status = 200, description = "Subject export document"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn export_by_ref(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
    Query(q): Query<RefQuery>,
) -> Result<Response, ApiError> {
    let found = s
        .vault
        .subject_by_ref(&ctx, tenant, &q.external_ref)
        .await?;
    streamed_subject_export(s, ctx, tenant, found.id).await
}

/// Erase a subject by crypto-shredding its key; held collections are kept and reported.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/subjects/{subject}/erase", tag = "rights",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("subject" = Uuid, Path, description = "Subject id")),
    responses((status = 200, body = ErasureOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn erase(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, subject)): Path<(Uuid, Uuid)>,
) -> Result<axum::Json<ErasureOut>, ApiError> {
    Ok(axum::Json(
        s.vault.erase_subject(&ctx, tenant, subject).await?,
    ))
}

/// Restrict processing for purposes (objection).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/subjects/{subject}/restrictions", tag = "rights", request_body = RestrictionIn,
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("subject" = Uuid, Path, description = "Subject id")),
    responses((status = 200, description = "`{\"restrictions\": [...]}`"), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn restrict(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, subject)): Path<(Uuid, Uuid)>,
    Json(body): Json<RestrictionIn>,
) -> Result<axum::Json<Value>, ApiError> {
    let r = s.vault.restrict(&ctx, tenant, subject, body).await?;
    Ok(axum::Json(serde_json::json!({ "restrictions": r })))
}

/// Query of lifting restrictions.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct LiftQuery {
    /// The restriction to lift; all when absent.
    purpose: Option<String>,
}

/// Lift one restriction, or all.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/subjects/{subject}/restrictions", tag = "rights",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("subject" = Uuid, Path, description = "Subject id"), LiftQuery),
    responses((status = 200, description = "`{\"restrictions\": [...]}`")),
    security(("bearer" = [])))]
pub(crate) async fn lift(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, subject)): Path<(Uuid, Uuid)>,
    Query(q): Query<LiftQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let r = s
        .vault
        .lift_restriction(&ctx, tenant, subject, q.purpose)
        .await?;
    Ok(axum::Json(serde_json::json!({ "restrictions": r })))
}

/// Body of the litigation hold.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HoldBody {
    /// RFC 3339 end of the hold; null lifts it.
    until: Option<String>,
}

/// Put a subject under a litigation hold (retention and erasure wait), or lift it.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/subjects/{subject}/hold", tag = "rights", request_body = HoldBody,
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("subject" = Uuid, Path, description = "Subject id")),
    responses((status = 204), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn hold(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, subject)): Path<(Uuid, Uuid)>,
    Json(body): Json<HoldBody>,
) -> Result<StatusCode, ApiError> {
    let until = body
        .until
        .as_deref()
        .map(|u| {
            OffsetDateTime::parse(u, &Rfc3339).map_err(|_| {
                ApiError::bad_request("invalid_time", "until must be RFC 3339").with_field("until")
            })
        })
        .transpose()?;
    s.vault
        .set_subject_hold(&ctx, tenant, subject, until)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of a retention override.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetentionBody {
    /// The shorter period, e.g. "30d".
    retain_for: String,
}

/// Shorten (never lengthen) a collection's retention for this tenant.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/retention/{collection}", tag = "rights", request_body = RetentionBody,
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("collection" = String, Path, description = "Collection")),
    responses((status = 200, description = "The override"), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn set_retention(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, collection)): Path<(Uuid, String)>,
    Json(body): Json<RetentionBody>,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(
        s.vault
            .set_retention(&ctx, tenant, &collection, &body.retain_for)
            .await?,
    ))
}

/// Open a data-subject request (due in one month).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/requests", tag = "rights", request_body = NewRequest,
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 201, body = RequestOut), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn open_request(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
    Json(body): Json<NewRequest>,
) -> Result<(StatusCode, axum::Json<RequestOut>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.vault.open_request(&ctx, tenant, body).await?),
    ))
}

/// Filters of the request list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestQuery {
    /// open, completed or rejected.
    status: Option<String>,
    /// Only open requests past their deadline.
    #[serde(default)]
    overdue: bool,
}

/// List requests.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/requests", tag = "rights",
    params(("tenant" = Uuid, Path, description = "Tenant id"), RequestQuery),
    responses((status = 200, body = Vec<RequestOut>)),
    security(("bearer" = [])))]
pub(crate) async fn list_requests(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
    Query(q): Query<RequestQuery>,
) -> Result<axum::Json<Vec<RequestOut>>, ApiError> {
    Ok(axum::Json(
        s.vault
            .list_requests(&ctx, tenant, q.status.as_deref(), q.overdue)
            .await?,
    ))
}

/// Complete a request by performing it (export, erase, restrict, rectify).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/requests/{request}/complete", tag = "rights", request_body = CompleteRequest,
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("request" = Uuid, Path, description = "Request id")),
    responses((status = 200, body = RequestOut), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn complete_request(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, request)): Path<(Uuid, Uuid)>,
    body: axum::body::Bytes,
) -> Result<axum::Json<RequestOut>, ApiError> {
    // The body is optional: only rectifications need one.
    let how: CompleteRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CompleteRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?
    };
    Ok(axum::Json(
        s.vault.complete_request(&ctx, tenant, request, how).await?,
    ))
}

/// Body of a rejection.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RejectBody {
    /// Why (sent to the requester).
    reason: String,
}

/// Reject a request with a reason.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/requests/{request}/reject", tag = "rights", request_body = RejectBody,
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("request" = Uuid, Path, description = "Request id")),
    responses((status = 200, body = RequestOut), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn reject_request(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, request)): Path<(Uuid, Uuid)>,
    Json(body): Json<RejectBody>,
) -> Result<axum::Json<RequestOut>, ApiError> {
    Ok(axum::Json(
        s.vault
            .reject_request(&ctx, tenant, request, &body.reason)
            .await?,
    ))
}

/// Cancel the tenant: access stops now, destruction after the grace period.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/cancel", tag = "tenants",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = TenantOut), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn cancel(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
) -> Result<axum::Json<TenantOut>, ApiError> {
    Ok(axum::Json(s.vault.cancel_tenant(&ctx, tenant).await?))
}

/// Reactivate a cancelled tenant during its grace period.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/reactivate", tag = "tenants",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = TenantOut), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn reactivate(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
) -> Result<axum::Json<TenantOut>, ApiError> {
    Ok(axum::Json(s.vault.reactivate_tenant(&ctx, tenant).await?))
}

/// The whole tenant as a portable archive, streamed (JSON Lines: a manifest line, then one
/// subject export per line), so that the server holds one page of subjects at a time however
/// large the tenant. Errors found before the first line (authentication, access, a missing
/// tenant) are answered as usual; an error after it aborts the chunked response, so a client
/// never takes a truncated archive for a complete one.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/export", tag = "tenants",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses(
        (status = 200, content_type = "application/x-ndjson", body = String, description = "Chunked JSON Lines: the manifest (format ward.tenant-export.v1, tenant, schema), then one ward.subject-export.v1 document per line"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn export_tenant(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
) -> Result<Response, ApiError> {
    streamed("application/x-ndjson", move |tx| async move {
        s.vault
            .export_tenant(&ctx, tenant, move |line, _| {
                let lines = tx.clone();
                let mut bytes = line.to_string().into_bytes();
                bytes.push(b'\n');
                async move { lines.send(Ok(Bytes::from(bytes))).await.is_ok() }
            })
            .await
            .map(|_| ())
            .map_err(ApiError::from)
    })
    .await
}

/// A chunked response fed by `produce` through a channel of a few chunks, so the producer
/// waits for the client rather than running ahead of it. An error before the first chunk is
/// answered as usual; one after it aborts the response, so a client never takes a truncated
/// export for a complete one.
async fn streamed<P, Fut>(content_type: &'static str, produce: P) -> Result<Response, ApiError>
where
    P: FnOnce(tokio::sync::mpsc::Sender<Result<Bytes, ApiError>>) -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, ApiError>>(4);
    let work = produce(tx.clone());
    tokio::spawn(async move {
        if let Err(e) = work.await {
            let _ = tx.send(Err(e)).await;
        }
    });
    let first = match rx.recv().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(e)) => return Err(e),
        None => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; see the server log",
            ));
        }
    };
    let body = ChannelBody {
        first: Some(first),
        rest: rx,
    };
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        axum::body::Body::new(body),
    )
        .into_response())
}

/// A response body fed by an export task, one chunk per frame.
struct ChannelBody {
    first: Option<Bytes>,
    rest: tokio::sync::mpsc::Receiver<Result<Bytes, ApiError>>,
}

/// Why a streamed body stopped early; hyper then aborts the response.
#[derive(Debug, thiserror::Error)]
#[error("export failed after it started: {0}")]
struct StreamAborted(String);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = StreamAborted;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, StreamAborted>>> {
        if let Some(first) = self.first.take() {
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(first))));
        }
        self.rest.poll_recv(cx).map(|next| {
            next.map(|r| {
                r.map(http_body::Frame::data).map_err(|e| {
                    tracing::error!(code = e.code(), "export aborted mid-stream");
                    StreamAborted(e.code().to_owned())
                })
            })
        })
    }
}

/// Query of a retention run.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetentionQuery {
    /// Report only; change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// Run retention now (operators only; the server also runs it on a schedule).
#[utoipa::path(post, path = "/v1/retention/run", tag = "rights", params(RetentionQuery),
    responses((status = 200, body = RetentionReport), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn run_retention(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<RetentionQuery>,
) -> Result<axum::Json<RetentionReport>, ApiError> {
    s.vault
        .authorize_platform(&ctx, ward_vault::PlatformOperation::RunRetention)
        .await?;
    let opts = RetentionOptions {
        dry_run: q.dry_run,
        ..RetentionOptions::default()
    };
    Ok(axum::Json(s.vault.run_retention(&opts, |_| {}).await?))
}

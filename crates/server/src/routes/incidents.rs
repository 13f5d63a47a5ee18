//! Personal-data breach incidents and their 72-hour notification clock: the operator's
//! (`/v1/incidents`, possibly affecting several tenants) and a tenant's (`/v1/tenants/{tenant}/
//! incidents`: its own, and the operator's that affect it). The clock itself runs in the
//! background (`incident_clock` in the crate root, beside the other housekeeping).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;
use ward_vault::{IncidentOut, NewIncident, NotificationDraft};

use crate::extract::{Auth, Json, Path, Query};
use crate::{ApiError, AppState, ErrorBody};

/// An operator incident to open.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOperatorIncident {
    /// What happened, in a line (1 to 300 characters, no control characters). Stored sealed.
    title: String,
    /// Ids of the alerts it comes from; an unknown one is a 422 `unknown_alert` with `field:
    /// "alerts"`. Their tenants are affected.
    #[serde(default)]
    alerts: Vec<Uuid>,
    /// Ids of further affected tenants; an unknown one is a 422 `unknown_tenant`.
    #[serde(default)]
    tenants: Vec<Uuid>,
    /// Affected subjects; an unknown one is a 422 `unknown_subject`. Their tenants are
    /// affected.
    #[serde(default)]
    subjects: Vec<SubjectRef>,
}

/// A subject of a tenant.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubjectRef {
    /// The tenant.
    tenant: Uuid,
    /// The subject id.
    subject: Uuid,
}

impl std::fmt::Debug for NewOperatorIncident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the title: it may name people.
        f.debug_struct("NewOperatorIncident")
            .field("alerts", &self.alerts.len())
            .finish_non_exhaustive()
    }
}

/// A tenant incident to open.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTenantIncident {
    /// What happened, in a line (1 to 300 characters, no control characters). Stored sealed.
    title: String,
    /// Ids of the tenant's alerts it comes from; an unknown one (or another tenant's) is a
    /// 422 `unknown_alert` with `field: "alerts"`.
    #[serde(default)]
    alerts: Vec<Uuid>,
    /// Ids of the tenant's affected subjects; an unknown one is a 422 `unknown_subject`.
    #[serde(default)]
    subjects: Vec<Uuid>,
    /// Not accepted here: a tenant's incident affects that tenant (422
    /// `tenants_not_allowed`).
    #[serde(default)]
    tenants: Vec<Uuid>,
}

impl std::fmt::Debug for NewTenantIncident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTenantIncident")
            .field("alerts", &self.alerts.len())
            .finish_non_exhaustive()
    }
}

/// An entry for the timeline.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewNote {
    /// The text (1 to 10,000 characters; it may span lines, but holds no other control
    /// character). Stored sealed.
    text: String,
    /// `note` (what happened) or `measure` (what was done); anything else is a 422
    /// `invalid_kind` with `field: "kind"`.
    kind: String,
}

impl std::fmt::Debug for NewNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewNote")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Which tenant the operator marks notified.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotifiedBody {
    /// The affected tenant; without it, every affected tenant not yet notified.
    tenant: Option<Uuid>,
}

/// The operator's choice of draft.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct OperatorDraftParams {
    /// The affected tenant the draft is for (required; else 422 `tenant_required`).
    tenant: Option<Uuid>,
    /// `markdown` for Markdown (as `Accept: text/markdown` does), `json` (the default).
    format: Option<String>,
}

/// A tenant's choice of format.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantDraftParams {
    /// `markdown` for Markdown (as `Accept: text/markdown` does), `json` (the default).
    format: Option<String>,
}

/// Whether the draft is wanted as Markdown: `?format=markdown` or an `Accept` header naming
/// `text/markdown` (without `?format=json`).
fn wants_markdown(format: Option<&str>, headers: &HeaderMap) -> Result<bool, ApiError> {
    match format {
        Some("markdown") => Ok(true),
        Some("json") => Ok(false),
        Some(_) => Err(
            ApiError::bad_request("invalid_format", "format is json or markdown")
                .with_field("format"),
        ),
        None => Ok(headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("text/markdown"))),
    }
}

fn draft_response(draft: NotificationDraft, markdown: bool) -> Response {
    if markdown {
        (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            draft.to_markdown(),
        )
            .into_response()
    } else {
        axum::Json(draft).into_response()
    }
}

/// Open an operator incident (operators): its affected tenants are those named, those of its
/// alerts and those of its subjects (at least one). The 72-hour clock starts now.
#[utoipa::path(post, path = "/v1/incidents", tag = "incidents", request_body = NewOperatorIncident,
    responses((status = 201, body = IncidentOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody, description = "`title`, `alerts`, `tenants` or `subjects` invalid (`field` names it): `invalid_title`, `unknown_alert`, `unknown_tenant`, `unknown_subject`, `no_tenant_affected`, `too_many`")),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn open_operator_incident(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Json(body): Json<NewOperatorIncident>,
) -> Result<(StatusCode, axum::Json<IncidentOut>), ApiError> {
    let new = NewIncident {
        title: body.title,
        alerts: body.alerts,
        tenants: body.tenants,
        subjects: body
            .subjects
            .into_iter()
            .map(|r| (r.tenant, r.subject))
            .collect(),
    };
    let out = s.vault.open_incident(&ctx, None, new).await?;
    Ok((StatusCode::CREATED, axum::Json(out)))
}

/// Open an incident of the tenant (owners, admins). The 72-hour clock starts now.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/incidents", tag = "incidents", request_body = NewTenantIncident,
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 201, body = IncidentOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody, description = "`title`, `alerts`, `subjects` or `tenants` invalid (`field` names it): `invalid_title`, `unknown_alert`, `unknown_subject`, `tenants_not_allowed`, `too_many`")),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn open_tenant_incident(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
    Json(body): Json<NewTenantIncident>,
) -> Result<(StatusCode, axum::Json<IncidentOut>), ApiError> {
    let new = NewIncident {
        title: body.title,
        alerts: body.alerts,
        tenants: body.tenants,
        subjects: body.subjects.into_iter().map(|s| (tenant, s)).collect(),
    };
    let out = s.vault.open_incident(&ctx, Some(tenant), new).await?;
    Ok((StatusCode::CREATED, axum::Json(out)))
}

/// The operator's incidents, newest first (operators; at most 200).
#[utoipa::path(get, path = "/v1/incidents", tag = "incidents",
    responses((status = 200, body = Vec<IncidentOut>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn list_operator_incidents(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> Result<axum::Json<Vec<IncidentOut>>, ApiError> {
    Ok(axum::Json(s.vault.list_incidents(&ctx, None).await?))
}

/// The incidents that affect the tenant, newest first (owners, admins, auditors; at most
/// 200): its own and the operator's, of which it sees only its own row.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/incidents", tag = "incidents",
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = Vec<IncidentOut>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn list_tenant_incidents(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
) -> Result<axum::Json<Vec<IncidentOut>>, ApiError> {
    Ok(axum::Json(
        s.vault.list_incidents(&ctx, Some(tenant)).await?,
    ))
}

/// One of the operator's incidents with its timeline (operators).
#[utoipa::path(get, path = "/v1/incidents/{incident}", tag = "incidents",
    params(("incident" = Uuid, Path, description = "Incident id")),
    responses((status = 200, body = IncidentOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn get_operator_incident(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<IncidentOut>, ApiError> {
    Ok(axum::Json(s.vault.incident(&ctx, None, id).await?))
}

/// One incident that affects the tenant, with its timeline (owners, admins, auditors).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/incidents/{incident}", tag = "incidents",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("incident" = Uuid, Path, description = "Incident id")),
    responses((status = 200, body = IncidentOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn get_tenant_incident(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, id)): Path<(Uuid, Uuid)>,
) -> Result<axum::Json<IncidentOut>, ApiError> {
    Ok(axum::Json(s.vault.incident(&ctx, Some(tenant), id).await?))
}

/// Add a note or a measure to the timeline of one of the operator's open incidents
/// (operators).
#[utoipa::path(post, path = "/v1/incidents/{incident}/notes", tag = "incidents", request_body = NewNote,
    params(("incident" = Uuid, Path, description = "Incident id")),
    responses((status = 201, body = IncidentOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`incident_closed`"), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody, description = "`invalid_text` or `invalid_kind` (`field` names it)")),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn note_operator_incident(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Json(body): Json<NewNote>,
) -> Result<(StatusCode, axum::Json<IncidentOut>), ApiError> {
    let out = s
        .vault
        .add_incident_note(&ctx, None, id, &body.text, &body.kind)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(out)))
}

/// Add a note or a measure to the timeline of one of the tenant's own open incidents
/// (owners, admins); the operator's incidents are refused with 403 `operator_incident`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/incidents/{incident}/notes", tag = "incidents", request_body = NewNote,
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("incident" = Uuid, Path, description = "Incident id")),
    responses((status = 201, body = IncidentOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "The access decision refused it, e.g. `operator_incident`"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`incident_closed`"), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody, description = "`invalid_text` or `invalid_kind` (`field` names it)")),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn note_tenant_incident(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, id)): Path<(Uuid, Uuid)>,
    Json(body): Json<NewNote>,
) -> Result<(StatusCode, axum::Json<IncidentOut>), ApiError> {
    let out = s
        .vault
        .add_incident_note(&ctx, Some(tenant), id, &body.text, &body.kind)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(out)))
}

/// Mark an affected tenant notified (`{"tenant": id}`), or all of them not yet notified
/// (`{}`) (operators).
#[utoipa::path(post, path = "/v1/incidents/{incident}/notified", tag = "incidents", request_body = NotifiedBody,
    params(("incident" = Uuid, Path, description = "Incident id")),
    responses((status = 200, body = IncidentOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`already_notified`"), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody, description = "`tenant_not_affected` (`field: tenant`)")),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn notified_operator_incident(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Json(body): Json<NotifiedBody>,
) -> Result<axum::Json<IncidentOut>, ApiError> {
    Ok(axum::Json(
        s.vault
            .mark_incident_notified(&ctx, None, id, body.tenant)
            .await?,
    ))
}

/// Mark the tenant notified of an incident that affects it (owners, admins): its own or the
/// operator's.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/incidents/{incident}/notified", tag = "incidents",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("incident" = Uuid, Path, description = "Incident id")),
    responses((status = 200, body = IncidentOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`already_notified`")),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn notified_tenant_incident(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, id)): Path<(Uuid, Uuid)>,
) -> Result<axum::Json<IncidentOut>, ApiError> {
    Ok(axum::Json(
        s.vault
            .mark_incident_notified(&ctx, Some(tenant), id, None)
            .await?,
    ))
}

/// Close one of the operator's incidents (operators).
#[utoipa::path(post, path = "/v1/incidents/{incident}/close", tag = "incidents",
    params(("incident" = Uuid, Path, description = "Incident id")),
    responses((status = 200, body = IncidentOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`incident_closed`")),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn close_operator_incident(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<IncidentOut>, ApiError> {
    Ok(axum::Json(s.vault.close_incident(&ctx, None, id).await?))
}

/// Close one of the tenant's own incidents (owners, admins); the operator's are refused with
/// 403 `operator_incident`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/incidents/{incident}/close", tag = "incidents",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("incident" = Uuid, Path, description = "Incident id")),
    responses((status = 200, body = IncidentOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "The access decision refused it, e.g. `operator_incident`"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`incident_closed`")),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn close_tenant_incident(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, id)): Path<(Uuid, Uuid)>,
) -> Result<axum::Json<IncidentOut>, ApiError> {
    Ok(axum::Json(
        s.vault.close_incident(&ctx, Some(tenant), id).await?,
    ))
}

/// The draft notification to the supervisory authority for one affected tenant (operators):
/// what happened, the data categories concerned, the number of subjects, the measures taken,
/// the contact point and the deadline; no record value. JSON, or Markdown with `Accept:
/// text/markdown` or `?format=markdown`.
#[utoipa::path(get, path = "/v1/incidents/{incident}/notification", tag = "incidents",
    params(("incident" = Uuid, Path, description = "Incident id"), OperatorDraftParams),
    responses((status = 200, description = "The draft", content((NotificationDraft = "application/json"), (String = "text/markdown"))), (status = 400, body = ErrorBody, description = "`invalid_format` or a malformed id"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody, description = "`tenant_required` or `tenant_not_affected` (`field: tenant`)")),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn operator_notification(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<Uuid>,
    Query(p): Query<OperatorDraftParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let markdown = wants_markdown(p.format.as_deref(), &headers)?;
    let draft = s
        .vault
        .incident_notification(&ctx, None, id, p.tenant)
        .await?;
    Ok(draft_response(draft, markdown))
}

/// The tenant's draft notification to its supervisory authority for an incident that affects
/// it (owners, admins, auditors). JSON, or Markdown with `Accept: text/markdown` or
/// `?format=markdown`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/incidents/{incident}/notification", tag = "incidents",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("incident" = Uuid, Path, description = "Incident id"), TenantDraftParams),
    responses((status = 200, description = "The draft", content((NotificationDraft = "application/json"), (String = "text/markdown"))), (status = 400, body = ErrorBody, description = "`invalid_format` or a malformed id"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(crate) async fn tenant_notification(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, id)): Path<(Uuid, Uuid)>,
    Query(p): Query<TenantDraftParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let markdown = wants_markdown(p.format.as_deref(), &headers)?;
    let draft = s
        .vault
        .incident_notification(&ctx, Some(tenant), id, None)
        .await?;
    Ok(draft_response(draft, markdown))
}

//! The tamper-evident audit log: the tenant's view, checkpoints and proofs.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;
use ward_vault::{AuditFilter, AuditPage};

use crate::extract::{Auth, Path, Query};
use crate::params::bounded;
use crate::{ApiError, AppState, ErrorBody};

/// Filters of the tenant audit view.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    /// RFC 3339 start (inclusive).
    since: Option<String>,
    /// RFC 3339 end (exclusive).
    until: Option<String>,
    /// Actor id, e.g. `key:<uuid>` or `operator:<uuid>`.
    actor: Option<String>,
    /// Subject id.
    subject: Option<Uuid>,
    /// Action, e.g. `record_read`.
    action: Option<String>,
    /// `allowed` or `denied`.
    outcome: Option<String>,
    /// Cursor from the previous page (`next_cursor`): an integer from 0 to 2^63 − 1.
    /// Anything else is a 400 `invalid_cursor`.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100). Anything else is a 400 `invalid_limit`.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// `json` (default) or `jsonl` (one event per line, for export).
    format: Option<String>,
}

fn time_param(v: &Option<String>, name: &str) -> Result<Option<OffsetDateTime>, ApiError> {
    v.as_deref()
        .map(|s| {
            OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
                ApiError::bad_request("invalid_time", format!("{name} must be an RFC 3339 time"))
                    .with_field(name)
            })
        })
        .transpose()
}

/// Every access to the tenant's data, by anyone (including operator and support staff).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/audit", tag = "audit",
    params(("tenant" = Uuid, Path, description = "Tenant id"), AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody, description = "A malformed filter, or `cursor`/`limit` out of range (`field` names it)"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn tenant_audit(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
    Query(p): Query<AuditParams>,
) -> Result<Response, ApiError> {
    let jsonl = match p.format.as_deref() {
        None | Some("json") => false,
        Some("jsonl") => true,
        Some(_) => {
            return Err(
                ApiError::bad_request("invalid_format", "format is json or jsonl")
                    .with_field("format"),
            );
        }
    };
    let filter = AuditFilter {
        since: time_param(&p.since, "since")?,
        until: time_param(&p.until, "until")?,
        actor: p.actor,
        subject: p.subject,
        action: p.action,
        outcome: p.outcome,
        cursor: bounded(
            p.cursor.as_deref(),
            "cursor",
            "invalid_cursor",
            0,
            ward_vault::MAX_AUDIT_CURSOR,
        )?,
        limit: bounded(
            p.limit.as_deref(),
            "limit",
            "invalid_limit",
            1,
            u64::from(ward_vault::MAX_AUDIT_PAGE),
        )?
        // Within 1..=MAX_AUDIT_PAGE, which is a u32.
        .map(|l| u32::try_from(l).unwrap_or(ward_vault::MAX_AUDIT_PAGE)),
    };
    let page = s.vault.tenant_audit(&ctx, tenant, filter).await?;
    if !jsonl {
        return Ok(axum::Json(page).into_response());
    }
    let mut body = String::new();
    for e in &page.events {
        body.push_str(&e.to_string());
        body.push('\n');
    }
    let mut resp = ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response();
    if let Some(c) = page.next_cursor
        && let Ok(v) = c.parse()
    {
        resp.headers_mut().insert("x-next-cursor", v);
    }
    Ok(resp)
}

/// The Ed25519 public key that verifies this deployment's checkpoints.
#[utoipa::path(get, path = "/v1/audit/public-key", tag = "audit",
    responses((status = 200, description = "`{\"algorithm\": \"ed25519\", \"public_key\": base64}`")))]
pub(crate) async fn public_key(State(s): State<AppState>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "algorithm": "ed25519",
        "public_key": s.vault.audit_public_key().to_base64(),
    }))
}

/// The newest signed checkpoint (tree size, root, chain, time, signature).
#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, description = "Signed checkpoint"), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn checkpoint(
    State(s): State<AppState>,
    Auth(_): Auth,
) -> Result<axum::Json<ward_audit::Checkpoint>, ApiError> {
    Ok(axum::Json(s.vault.latest_checkpoint().await?))
}

/// Sign a checkpoint of the log as it is now. Operator and auditor keys only (others 403
/// `role_not_permitted`), and at most once per checkpoint interval per deployment (60 s by
/// default): sooner is 429 `rate_limited` with `Retry-After`. The request is audited.
#[utoipa::path(post, path = "/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, description = "Signed checkpoint"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until a new checkpoint may be signed")))),
    security(("bearer" = [])))]
pub(crate) async fn new_checkpoint(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> Result<axum::Json<ward_audit::Checkpoint>, ApiError> {
    Ok(axum::Json(s.vault.sign_checkpoint(&ctx).await?))
}

/// Parameters of an inclusion proof.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct InclusionParams {
    /// Event index.
    index: u64,
    /// Tree size the proof is against.
    tree_size: u64,
}

/// RFC 9162 inclusion proof of one event. Audited (in the caller's tenant log); indices
/// outside the current log are 400; a proof that needs events audit retention pruned is 422
/// `pruned`. Built from the stored tree nodes: its cost does not grow with the log.
#[utoipa::path(get, path = "/v1/audit/proof/inclusion", tag = "audit", params(InclusionParams),
    responses((status = 200, description = "Proof"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn inclusion(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(p): Query<InclusionParams>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    Ok(axum::Json(
        s.vault.inclusion_proof(&ctx, p.index, p.tree_size).await?,
    ))
}

/// Parameters of a consistency proof.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsistencyParams {
    /// Older tree size.
    from: u64,
    /// Newer tree size.
    to: u64,
}

/// RFC 9162 consistency proof between two tree sizes. Audited and built like the inclusion
/// proof.
#[utoipa::path(get, path = "/v1/audit/proof/consistency", tag = "audit", params(ConsistencyParams),
    responses((status = 200, description = "Proof"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn consistency(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(p): Query<ConsistencyParams>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    Ok(axum::Json(
        s.vault.consistency_proof(&ctx, p.from, p.to).await?,
    ))
}

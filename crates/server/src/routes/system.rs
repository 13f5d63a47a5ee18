//! Health and metrics (the OpenAPI document is served by `crate::openapi`).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::{ApiError, AppState};

/// Liveness and storage reachability.
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, description = "`{\"status\": \"ok\"}`"), (status = 503, description = "storage unreachable")))]
pub(crate) async fn healthz(
    State(s): State<AppState>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    s.vault.store().audit_head().await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage is unreachable",
        )
    })?;
    Ok(axum::Json(serde_json::json!({ "status": "ok" })))
}

/// Prometheus metrics: the process's counters, and the stored state's gauges (refreshed at
/// most every few seconds; a failed refresh keeps the last values and is logged).
pub(crate) async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    if let Err(e) = s.vault.refresh_gauges().await {
        tracing::warn!(error = %e, "could not refresh the stored-state metrics");
    }
    if let Err(e) = s.vault.update_alert_metrics().await {
        tracing::warn!(error = %e, "open alerts not counted for /metrics");
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

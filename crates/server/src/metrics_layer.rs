//! Request metrics and one structured log line per request.
//!
//! Labels use the route template (`/v1/tenants/{tenant}/…`), never the concrete path, so ids
//! do not leak into metrics or logs and cardinality stays bounded.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

pub(crate) async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!("ward_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status.clone())
        .increment(1);
    metrics::histogram!("ward_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone())
        .record(elapsed);
    tracing::info!(target: "ward::http", %method, %route, %status, elapsed_ms = elapsed * 1000.0, "request");
    response
}

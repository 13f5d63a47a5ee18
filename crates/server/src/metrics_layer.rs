//! Request metrics and one structured log line per request.
//!
//! Labels use the route template (`/v1/tenants/{tenant}/…`), never the concrete path, so ids
//! do not leak into metrics or logs and cardinality stays bounded. Methods are one of a
//! fixed set, `other` for the rest: any token is a valid HTTP method, so labelling by the raw
//! method would let a client create series without end.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

pub(crate) async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!("ward_http_requests_total", "method" => method, "route" => route.clone(), "status" => status.clone())
        .increment(1);
    metrics::histogram!("ward_http_request_duration_seconds", "method" => method, "route" => route.clone(), "status" => status.clone())
        .record(elapsed);
    tracing::info!(target: "ward::http", %method, %route, %status, elapsed_ms = elapsed * 1000.0, "request");
    response
}

/// The method as a label from a fixed set.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

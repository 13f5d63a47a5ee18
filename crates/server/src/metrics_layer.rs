//! Request metrics, the request id, and one structured log line per request.
//!
//! Labels use the route template (`/v1/tenants/{tenant}/…`), never the concrete path, so ids
//! do not leak into metrics or logs and cardinality stays bounded. Methods are one of a
//! fixed set, `other` for the rest: any token is a valid HTTP method, so labelling by the raw
//! method would let a client create series without end.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

use crate::extract::RequestId;

pub(crate) async fn track(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = RequestId::of(req.headers());
    req.extensions_mut().insert(request_id.clone());
    // Whatever the request logs (a store error, a refused commit) carries its id.
    let span = tracing::info_span!("request", request_id = %request_id.0);
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let mut response = next.run(req).instrument(span.clone()).await;
    if let Ok(id) = HeaderValue::from_str(&request_id.0) {
        response.headers_mut().insert("x-request-id", id);
    }
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!("ward_http_requests_total", "method" => method, "route" => route.clone(), "status" => status.clone())
        .increment(1);
    metrics::histogram!("ward_http_request_duration_seconds", "method" => method, "route" => route.clone(), "status" => status.clone())
        .record(elapsed);
    tracing::info!(target: "ward::http", parent: &span, %method, %route, %status, elapsed_ms = elapsed * 1000.0, "request");
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

//! Extractors that turn every malformed request into an [`ApiError`] instead of axum's
//! plain-text rejections, and the authentication extractor.

use std::net::SocketAddr;

use axum::extract::{
    ConnectInfo, FromRequest, FromRequestParts, Request, rejection::JsonRejection,
};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use ward_vault::RequestContext;

use crate::{ApiError, AppState};

/// JSON body; bad JSON is a 400 naming the problem, an oversized body a 413.
pub(crate) struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            )),
            Err(JsonRejection::BytesRejection(e)) if body_timed_out(&e) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body stalled longer than the server's body timeout",
            )),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "request body is too large",
                ))
            }
            Err(JsonRejection::JsonDataError(e)) => {
                Err(ApiError::bad_request("invalid_body", e.body_text()))
            }
            Err(e) => Err(ApiError::bad_request("invalid_json", e.body_text())),
        }
    }
}

/// A JSON body that may be left out: a request without a body (no `Content-Type`, no
/// length) gives `None`; anything else is read like [`Json`].
pub(crate) struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let headers = req.headers();
        let empty = !headers.contains_key(header::CONTENT_TYPE)
            && headers
                .get(header::CONTENT_LENGTH)
                .is_none_or(|v| v.as_bytes() == b"0");
        if empty {
            return Ok(Self(None));
        }
        Ok(Self(Some(Json::<T>::from_request(req, state).await?.0)))
    }
}

/// Whether reading the body failed because it stalled past the body timeout.
fn body_timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Query string; unknown or malformed parameters are a 400.
pub(crate) struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded_like(q).map(Self)
    }
}

fn serde_urlencoded_like<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| ApiError::bad_request("invalid_query", "malformed query string"))?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

/// Path parameters; a malformed id is a 400.
pub(crate) struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|e| ApiError::bad_request("invalid_id", e.body_text()))
    }
}

/// The authenticated caller with request id and client address.
pub(crate) struct Auth(pub RequestContext);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let RequestMeta {
            request_id,
            client_ip,
        } = RequestMeta::of(parts);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        // An API key wins; without one, a session cookie; without either, the API-key path
        // refuses (and audits) the anonymous request.
        let principal = match (token, session_cookie(&parts.headers)) {
            (None, Some(cookie)) => {
                let csrf = parts
                    .headers
                    .get(ward_vault::CSRF_HEADER)
                    .and_then(|v| v.to_str().ok());
                let unsafe_method = !parts.method.is_safe();
                state
                    .vault
                    .authenticate_session(cookie, csrf, unsafe_method, &request_id, client_ip)
                    .await?
            }
            _ => {
                state
                    .vault
                    .authenticate(token, &request_id, client_ip)
                    .await?
            }
        };
        Ok(Self(RequestContext {
            principal,
            request_id,
            client_ip,
        }))
    }
}

/// The request id and client address of a request that carries no API key (claiming an
/// invitation), taken exactly as [`Auth`] takes them.
pub(crate) struct RequestMeta {
    pub(crate) request_id: String,
    pub(crate) client_ip: Option<std::net::IpAddr>,
}

/// A request's id: the client's `X-Request-Id` when it is a sane token, else a fresh UUIDv7.
/// The outermost layer picks it once and puts it in the request's extensions, so that the
/// request's log lines, its audit events and the `X-Request-Id` response header all carry the
/// same id.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) String);

impl RequestId {
    pub(crate) fn of(headers: &axum::http::HeaderMap) -> Self {
        Self(
            headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| valid_request_id(v))
                .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned),
        )
    }
}

impl RequestMeta {
    fn of(parts: &Parts) -> Self {
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId::of(&parts.headers))
            .0;
        let client_ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Self {
            request_id,
            client_ip,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Self::of(parts))
    }
}

/// A caller's request id is kept only when it is short and plain, because it is copied into
/// the audit log and the tenant's views of it; anything else is replaced by a fresh id.
fn valid_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The value of the `ward_session` cookie, if the request carries one.
pub(crate) fn session_cookie(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == ward_vault::SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// The token of a `Bearer` credential; the scheme name is case-insensitive (RFC 7235).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_other_schemes_are_not_tokens() {
        for v in ["Bearer t", "bearer t", "BEARER t", "bEaReR   t "] {
            assert_eq!(bearer(v), Some("t"), "{v}");
        }
        for v in ["Basic t", "Bearert", "Bearer", "Token t"] {
            assert_eq!(bearer(v), None, "{v}");
        }
    }

    #[test]
    fn request_ids_are_short_and_plain() {
        assert!(valid_request_id("req-01.ABC_z"));
        assert!(valid_request_id(&"a".repeat(64)));
        for bad in [
            "",
            &"a".repeat(65),
            "a b",
            "a\u{1b}b",
            "é",
            "a/b",
            "a;b",
            "a\"b",
        ] {
            assert!(!valid_request_id(bad), "{bad:?}");
        }
    }
}

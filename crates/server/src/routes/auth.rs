//! People's logins: sessions in a cookie, CSRF tokens, password change and reset.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;
use ward_vault::{
    Login, LoginOut, PasswordChange, PasswordReset, SESSION_COOKIE, SessionOut, TotpConfirm,
    TotpEnrolled, TotpStart,
};

use crate::extract::{Auth, Json, Path, RequestMeta, session_cookie};
use crate::{ApiError, AppState, ErrorBody};

/// The `Set-Cookie` value of a session: HttpOnly, SameSite=Strict, Path=/, Secure over
/// HTTPS; its Max-Age is the session's absolute lifetime.
fn session_cookie_header(s: &AppState, out: &LoginOut, now: time::OffsetDateTime) -> HeaderValue {
    let max_age = (out.expires_at - now).whole_seconds().max(0);
    let secure = if s.secure_cookies { "; Secure" } else { "" };
    let v = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        out.cookie.as_str()
    );
    // The value is base64url: always a valid header value.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn clear_cookie(s: &AppState) -> HeaderValue {
    let v = if s.secure_cookies {
        "ward_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure"
    } else {
        "ward_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    };
    HeaderValue::from_static(v)
}

fn with_session(s: &AppState, status: StatusCode, out: LoginOut) -> Response {
    let cookie = session_cookie_header(s, &out, s.vault.now());
    set_session(cookie, (status, axum::Json(out)).into_response())
}

/// `resp` with the session cookie set and kept out of caches.
fn set_session(cookie: HeaderValue, mut resp: Response) -> Response {
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Log in with e-mail, password and (when the account has TOTP) a six-digit code or a
/// recovery code. Sets the `ward_session` cookie (HttpOnly, SameSite=Strict, Secure over
/// HTTPS); the body carries the `csrf_token` to send as `X-CSRF-Token` with every unsafe
/// cookie-authenticated request. A session cookie sent with the login is ended. Every failure
/// is 401 `invalid_credentials` with the same body; a right password without the required
/// code is 401 `totp_required`; too many failures per address or account are 429.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = Login,
    responses((status = 200, body = LoginOut, headers(("set-cookie" = String, description = "ward_session=…; HttpOnly; SameSite=Strict"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 408, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn login(
    State(s): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    Json(body): Json<Login>,
) -> Result<Response, ApiError> {
    let out = s
        .vault
        .login(
            body,
            session_cookie(&headers),
            &meta.request_id,
            meta.client_ip,
        )
        .await?;
    Ok(with_session(&s, StatusCode::OK, out))
}

/// End this session (cookie-authenticated; needs the CSRF token) and clear the cookie.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub(crate) async fn logout(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> Result<Response, ApiError> {
    s.vault.logout(&ctx).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, clear_cookie(&s));
    Ok(resp)
}

/// List the caller's live sessions.
#[utoipa::path(get, path = "/v1/auth/sessions", tag = "auth",
    responses((status = 200, body = Vec<SessionOut>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = [])))]
pub(crate) async fn list_sessions(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> Result<axum::Json<Vec<SessionOut>>, ApiError> {
    Ok(axum::Json(s.vault.sessions(&ctx).await?))
}

/// End every session of the caller but this one ("log out everywhere else").
#[utoipa::path(delete, path = "/v1/auth/sessions", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = [])))]
pub(crate) async fn revoke_other_sessions(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> Result<StatusCode, ApiError> {
    s.vault.revoke_other_sessions(&ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End one of the caller's sessions (another user's is 404).
#[utoipa::path(delete, path = "/v1/auth/sessions/{session}", tag = "auth",
    params(("session" = Uuid, Path, description = "Session id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = [])))]
pub(crate) async fn revoke_session(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(session): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    s.vault.revoke_session(&ctx, session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the caller's password. Every session of the account ends and a new one starts
/// (new cookie, new CSRF token in the body).
#[utoipa::path(post, path = "/v1/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 200, body = LoginOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 408, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("session" = [])))]
pub(crate) async fn change_password(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Json(body): Json<PasswordChange>,
) -> Result<Response, ApiError> {
    let out = s.vault.change_password(&ctx, body).await?;
    Ok(with_session(&s, StatusCode::OK, out))
}

/// Set a new password with a single-use reset token (issued by `ward user reset`, valid 24
/// hours). Every session of the account ends. An unknown, expired or used token is 401
/// `reset_token_invalid`.
#[utoipa::path(post, path = "/v1/auth/password/reset", tag = "auth", request_body = PasswordReset,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 408, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn reset_password(
    State(s): State<AppState>,
    meta: RequestMeta,
    Json(body): Json<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    s.vault
        .reset_password(body, &meta.request_id, meta.client_ip)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start enrolling the signed-in user in TOTP (an account without it: made by an invitation,
/// or without `--totp`): returns the `otpauth://` URI to add to an authenticator app. Nothing
/// changes until `POST /v1/auth/totp/confirm`; the same session is offered the same secret.
/// An account with TOTP is 409 `totp_enrolled`; an API key is 403 `session_required`. Open to
/// a session refused by a tenant's TOTP requirement: it is how such a user gets through.
#[utoipa::path(post, path = "/v1/auth/totp", tag = "auth",
    responses((status = 200, body = TotpStart), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("session" = [])))]
pub(crate) async fn start_totp(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> Result<Response, ApiError> {
    let out = s.vault.start_totp_enrolment(&ctx).await?;
    let mut resp = axum::Json(out).into_response();
    // The URI carries the secret.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Confirm the TOTP enrolment with the six digits the app shows (`code`): TOTP is active
/// from now on, the ten recovery codes are in this response only, every other session of the
/// account ends and this one is replaced (new cookie, new CSRF token in the body). A code that
/// does not match is 422 `wrong_totp_code`; a malformed one 400 `invalid_totp`.
#[utoipa::path(post, path = "/v1/auth/totp/confirm", tag = "auth", request_body = TotpConfirm,
    responses((status = 200, body = TotpEnrolled, headers(("set-cookie" = String, description = "ward_session=…; HttpOnly; SameSite=Strict"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 408, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("session" = [])))]
pub(crate) async fn confirm_totp(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Json(body): Json<TotpConfirm>,
) -> Result<Response, ApiError> {
    let out: TotpEnrolled = s.vault.confirm_totp_enrolment(&ctx, body).await?;
    let cookie = session_cookie_header(&s, &out.session, s.vault.now());
    Ok(set_session(
        cookie,
        (StatusCode::OK, axum::Json(out)).into_response(),
    ))
}

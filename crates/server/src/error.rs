//! One error shape for every endpoint: `{"error": {"code", "message", "field"?}}`.
//!
//! Internal failures are logged once here, with their detail, and answered with a stable
//! message that reveals nothing about the store or the keys.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use ward_vault::VaultError;

/// An error as the API returns it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    /// Seconds for a `Retry-After` header (429).
    retry_after: Option<u64>,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The offending field or parameter, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// An error with an explicit status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// Names the offending field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400 for a malformed request.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        let message = e.to_string();
        match e {
            VaultError::Unauthenticated => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
            }
            VaultError::Throttled { retry_after } => Self {
                retry_after: Some(retry_after),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
            },
            VaultError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "not_found", message),
            VaultError::Forbidden { code, .. } => Self::new(StatusCode::FORBIDDEN, code, message),
            VaultError::Invalid { code, field, .. } => {
                // Malformed identifiers and parameters are 400; values that parse but break a
                // rule of the policy are 422.
                let status = match code {
                    "invalid_purpose"
                    | "invalid_id"
                    | "invalid_range"
                    | "invalid_limit"
                    | "invalid_cursor"
                    | "control_character"
                    | "invalid_action"
                    | "invalid_outcome"
                    | "empty_batch"
                    | "invalid_reference"
                    | "invalid_field"
                    | "duplicate_record"
                    | "password_too_short"
                    | "password_too_long"
                    | "password_too_common"
                    | "invalid_totp"
                    | "invalid_login_email"
                    | "invalid_duration"
                    | "invalid_grant"
                    | "invalid_url"
                    | "invalid_secret" => StatusCode::BAD_REQUEST,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                Self {
                    status,
                    code,
                    message,
                    field,
                    retry_after: None,
                }
            }
            VaultError::Conflict(_) => Self::new(StatusCode::CONFLICT, "conflict", message),
            VaultError::StateConflict { code, .. } => {
                Self::new(StatusCode::CONFLICT, code, message)
            }
            VaultError::LoginFailed => {
                Self::new(StatusCode::UNAUTHORIZED, "invalid_credentials", message)
            }
            VaultError::TotpRequired => {
                Self::new(StatusCode::UNAUTHORIZED, "totp_required", message)
            }
            VaultError::CsrfRefused => Self::new(StatusCode::FORBIDDEN, "csrf_refused", message),
            VaultError::ResetInvalid => {
                Self::new(StatusCode::UNAUTHORIZED, "reset_token_invalid", message)
            }
            VaultError::InvitationInvalid => {
                Self::new(StatusCode::UNAUTHORIZED, "invitation_invalid", message)
            }
            VaultError::RateLimited { retry_after } => Self {
                retry_after: Some(retry_after),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            },
            VaultError::TooLarge(_) => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
            }
            VaultError::Integrity => {
                tracing::error!(
                    "ciphertext failed authentication: stored data was altered or moved"
                );
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "integrity_error",
                    message,
                )
            }
            other => {
                tracing::error!(error = %other, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}

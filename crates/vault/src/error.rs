//! The vault's one error type; the server maps each variant to an HTTP status and a stable
//! JSON error code.

use ward_crypto::CryptoError;
use ward_store::StoreError;

/// Why a vault operation did not happen. A returned error means nothing was written (apart
/// from the audit event of a denial).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// Missing, unknown or revoked credentials.
    #[error("missing or invalid API key")]
    Unauthenticated,
    /// Too many failed authentications from this source or with this token; nothing was
    /// looked up.
    #[error("too many failed authentication attempts; retry after {retry_after} s")]
    Throttled {
        /// Seconds until one more attempt is allowed.
        retry_after: u64,
    },
    /// The thing does not exist, or exists in another tenant (indistinguishable on purpose).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The access decision refused; `reason` names the rule.
    #[error("{reason}")]
    Forbidden {
        /// Stable code, e.g. `purpose_not_allowed`.
        code: &'static str,
        /// Human-readable reason naming the purpose, role or restriction.
        reason: String,
    },
    /// The request is malformed or a value is invalid.
    #[error("{message}")]
    Invalid {
        /// Stable code, e.g. `invalid_email`, `unknown_field`, `card_data_refused`.
        code: &'static str,
        /// What is wrong.
        message: String,
        /// The offending field, when there is one.
        field: Option<String>,
    },
    /// A concurrent change, a uniqueness rule, or a state that refuses the request now.
    #[error("{0}")]
    Conflict(Conflict),
    /// The access decision allows the role but the present state refuses it (e.g. revoking
    /// the last owner key); `code` names the rule.
    #[error("{reason}")]
    StateConflict {
        /// Stable code, e.g. `last_owner`.
        code: &'static str,
        /// What state refuses it.
        reason: String,
    },
    /// An invitation that is unknown, expired, already claimed or replaced: one error for
    /// all, so a guesser learns nothing.
    #[error("the invitation is invalid, expired or already used")]
    InvitationInvalid,
    /// A login that failed: unknown e-mail, wrong password, wrong or replayed TOTP code, used
    /// recovery code or disabled account. One error for all, so a guesser learns nothing.
    #[error("wrong e-mail, password or second factor")]
    LoginFailed,
    /// The password was right, but the account needs a TOTP code and none was sent.
    #[error("this account needs a TOTP code (or a recovery code) in `totp`")]
    TotpRequired,
    /// An unsafe request authenticated by a session cookie without its CSRF token.
    #[error("missing or wrong X-CSRF-Token header for a cookie-authenticated request")]
    CsrfRefused,
    /// A password reset token that is unknown, expired or already used.
    #[error("the password reset token is invalid, expired or already used")]
    ResetInvalid,
    /// Asked again too soon; retry after this many seconds.
    #[error("too many requests; retry after {retry_after} s")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after: u64,
    },
    /// The request is larger than Ward accepts.
    #[error("{0}")]
    TooLarge(String),
    /// A ciphertext failed authentication: it was tampered with or moved from another place.
    #[error("integrity check failed: stored data was altered or moved")]
    Integrity,
    /// A storage failure.
    #[error("storage error: {0}")]
    Store(StoreError),
    /// A key-handling failure other than integrity.
    #[error("crypto error: {0}")]
    Crypto(CryptoError),
}

/// Why a request lost to another one or to the present state. Callers that act on a reason
/// (retry under a new key, leave a key job to its holder) match its variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Conflict {
    /// The store settled a race against this request (revision, uniqueness, key, lease).
    #[error(transparent)]
    Store(ward_store::Conflict),
    /// A record named a subject key version that a record rotation replaced between reading
    /// the record and opening it; reading again finds the new key.
    #[error("the subject key was rotated during the read; retry")]
    StaleKeyRead,
    /// A new record prepared from a remembered subject lost at commit (the subject was erased
    /// or its key rotated, or its tenant is no longer active); prepared again from a fresh
    /// read, so callers outside the vault never see it.
    #[error("the subject changed during the request; retry")]
    StaleSubject,
    /// The present state refuses the request (a request already closed, a rotation still
    /// running, …); the message says which.
    #[error("{0}")]
    State(String),
}

impl VaultError {
    /// A conflict with the present state, described by `message`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(Conflict::State(message.into()))
    }

    /// Whether this is the store's conflict `c`.
    pub(crate) fn is_store_conflict(&self, c: &ward_store::Conflict) -> bool {
        matches!(self, Self::Conflict(Conflict::Store(own)) if own == c)
    }

    /// Shorthand for a validation error on one field.
    pub fn invalid(code: &'static str, message: impl Into<String>, field: Option<&str>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }
}

impl From<StoreError> for VaultError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(c @ ward_store::Conflict::LastOwner) => Self::StateConflict {
                code: "last_owner",
                reason: c.to_string(),
            },
            StoreError::Conflict(c) => Self::Conflict(Conflict::Store(c)),
            StoreError::Rewrap(_) => Self::Integrity,
            other => Self::Store(other),
        }
    }
}

impl From<CryptoError> for VaultError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Integrity => Self::Integrity,
            other => Self::Crypto(other),
        }
    }
}

/// Shorthand for vault results.
pub type Result<T, E = VaultError> = std::result::Result<T, E>;

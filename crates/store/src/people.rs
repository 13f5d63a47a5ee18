//! Rows and operations of people: user accounts, their recovery codes, login sessions and
//! support grants.
//!
//! Like everything in the store these rows carry no secret and no personal value in clear:
//! e-mail addresses arrive as a keyed hash (for login lookup) and a ciphertext (for display),
//! TOTP secrets sealed, passwords as Argon2id PHC strings, recovery codes, reset tokens and
//! session ids as SHA-256 digests.

use time::OffsetDateTime;
use uuid::Uuid;

/// A person who logs in: platform staff (`operator`, `support`) or a tenant user.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// User id (appears in audit events).
    pub id: Uuid,
    /// Keyed hash of the normalized e-mail address: the login lookup key, unique.
    pub email_hash: [u8; 32],
    /// The e-mail address sealed with associated data binding the user id.
    pub email_sealed: Vec<u8>,
    /// `operator`, `support`, `owner`, `admin`, `member` or `auditor`.
    pub role: String,
    /// The tenant of a tenant user; `None` for platform staff.
    pub tenant: Option<Uuid>,
    /// Argon2id hash in PHC string form (parameters and salt included).
    pub password_hash: String,
    /// The TOTP secret sealed with associated data binding the user id; `None` without TOTP.
    pub totp_sealed: Option<Vec<u8>>,
    /// The last TOTP time step accepted: a code of that step or an earlier one is a replay.
    pub totp_last_step: Option<i64>,
    /// Root key version the e-mail and TOTP secret are sealed under.
    pub key_version: u32,
    /// SHA-256 of the pending single-use password reset token.
    pub reset_hash: Option<[u8; 32]>,
    /// When the pending reset token stops working.
    pub reset_expires_at: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last password change.
    pub password_changed_at: OffsetDateTime,
    /// When the account was disabled; a disabled account cannot log in.
    pub disabled_at: Option<OffsetDateTime>,
}

/// A user's membership of a tenant: the role the user acts in there, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRow {
    /// The user.
    pub user: Uuid,
    /// The tenant.
    pub tenant: Uuid,
    /// `owner`, `admin`, `member` or `auditor`.
    pub role: String,
    /// JSON array of the purposes a member may state (empty for other roles).
    pub purposes: String,
    /// When the membership ends; an ended one gives nothing.
    pub expires_at: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// A login session; the session id itself is never stored, only its SHA-256.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// Public id (lists and revocation name a session by it).
    pub id: Uuid,
    /// SHA-256 of the cookie's session id.
    pub token_hash: [u8; 32],
    /// The user.
    pub user: Uuid,
    /// SHA-256 of the session's CSRF token.
    pub csrf_hash: [u8; 32],
    /// Login time.
    pub created_at: OffsetDateTime,
    /// Last use (kept to a minute's precision: refreshed at most once a minute).
    pub last_seen_at: OffsetDateTime,
    /// Absolute end, however active the session is.
    pub expires_at: OffsetDateTime,
    /// Logout or revocation time.
    pub revoked_at: Option<OffsetDateTime>,
}

/// A support grant: a support user's time- and scope-limited access to one tenant's data.
#[derive(Debug, Clone)]
pub struct SupportGrantRow {
    /// Grant id (every action under it is audited with it).
    pub id: Uuid,
    /// The tenant whose data it opens.
    pub tenant: Uuid,
    /// The support user who asked for it.
    pub requester: Uuid,
    /// Ticket reference, sealed under the tenant's free-text key.
    pub ticket: String,
    /// Justification, sealed under the tenant's free-text key.
    pub justification: String,
    /// JSON array of collection names the grant opens.
    pub collections: String,
    /// JSON array of actions (`read`, `write`, `audit`).
    pub actions: String,
    /// Opened at once without approval (the tenant is notified).
    pub break_glass: bool,
    /// `requested`, `approved`, `denied` or `revoked`.
    pub status: String,
    /// Requested duration in seconds (counted from approval).
    pub duration_secs: i64,
    /// Request time.
    pub requested_at: OffsetDateTime,
    /// Approval, denial or revocation time.
    pub decided_at: Option<OffsetDateTime>,
    /// Actor id of whoever approved, denied or revoked it.
    pub decided_by: Option<String>,
    /// When the grant stops working (set when it opens).
    pub expires_at: Option<OffsetDateTime>,
}

/// A change to people; carried by [`crate::Op::People`].
#[derive(Debug, Clone)]
pub enum PeopleOp {
    /// Create a user with its recovery codes (SHA-256 digests). `Conflict` when the e-mail
    /// hash is taken.
    InsertUser {
        /// The user.
        user: Box<UserRow>,
        /// Digests of its single-use recovery codes.
        recovery_codes: Vec<[u8; 32]>,
    },
    /// Replace a user's password hash (change, reset, or rehash under new parameters); clears
    /// any pending reset token.
    SetPassword {
        /// User id.
        user: Uuid,
        /// New PHC string.
        password_hash: String,
        /// When.
        at: OffsetDateTime,
    },
    /// Store a pending reset token's digest and expiry (replacing any earlier one).
    SetResetToken {
        /// User id.
        user: Uuid,
        /// SHA-256 of the token.
        hash: [u8; 32],
        /// When it stops working.
        expires_at: OffsetDateTime,
    },
    /// Consume a reset token: `NotFound("reset token")` unless it is the user's pending one
    /// and unexpired at `at`, so a token works once even under concurrency.
    UseResetToken {
        /// User id.
        user: Uuid,
        /// SHA-256 of the token.
        hash: [u8; 32],
        /// When.
        at: OffsetDateTime,
    },
    /// Disable (or enable again) an account.
    SetUserDisabled {
        /// User id.
        user: Uuid,
        /// `Some` disables at that time, `None` enables.
        at: Option<OffsetDateTime>,
    },
    /// Record the TOTP step just accepted: `NotFound("totp step")` unless it is later than the
    /// last one accepted, so a code is accepted once even under concurrency.
    AcceptTotpStep {
        /// User id.
        user: Uuid,
        /// The step.
        step: i64,
    },
    /// Enrol a user in TOTP (self-enrolment, once the first code was checked): sets the
    /// sealed secret, accepts `step`, and replaces the user's recovery codes. `NotFound("totp
    /// enrolment")` when the user has a secret already, so of two concurrent enrolments one
    /// wins and a secret is never replaced behind its holder's back.
    EnrolTotp {
        /// User id.
        user: Uuid,
        /// The secret, sealed like the one an account is created with.
        totp_sealed: Vec<u8>,
        /// The step of the code that confirmed it (a replay of it fails like at login).
        step: i64,
        /// Digests of the new single-use recovery codes.
        recovery_codes: Vec<[u8; 32]>,
    },
    /// Consume a recovery code: `NotFound("recovery code")` unless it is the user's and unused.
    UseRecoveryCode {
        /// User id.
        user: Uuid,
        /// SHA-256 of the code.
        hash: [u8; 32],
        /// When.
        at: OffsetDateTime,
    },
    /// Start a session.
    InsertSession(SessionRow),
    /// Note a session's use.
    TouchSession {
        /// Session id.
        id: Uuid,
        /// When.
        at: OffsetDateTime,
    },
    /// End one session of a user: `NotFound("session")` when it is not the user's or ended.
    RevokeSession {
        /// User id.
        user: Uuid,
        /// Session id.
        id: Uuid,
        /// When.
        at: OffsetDateTime,
    },
    /// End every live session of a user (password change, reset, disable).
    RevokeUserSessions {
        /// User id.
        user: Uuid,
        /// When.
        at: OffsetDateTime,
    },
    /// Add a membership. `Conflict` when the user already belongs to the tenant.
    InsertMembership(MembershipRow),
    /// Change the role of a membership: `NotFound("membership")` unless it exists.
    SetMembershipRole {
        /// Tenant id.
        tenant: Uuid,
        /// User id.
        user: Uuid,
        /// The new role.
        role: String,
        /// The new purposes (JSON array).
        purposes: String,
    },
    /// Remove a membership: `NotFound("membership")` unless it exists.
    DeleteMembership {
        /// Tenant id.
        tenant: Uuid,
        /// User id.
        user: Uuid,
    },
    /// Store a support grant request (or an opened break-glass grant).
    InsertGrant(SupportGrantRow),
    /// Approve, deny or revoke a grant: `NotFound("support grant")` unless it is the tenant's
    /// and in status `from`.
    DecideGrant {
        /// Tenant id.
        tenant: Uuid,
        /// Grant id.
        id: Uuid,
        /// The status it must have.
        from: String,
        /// The new status.
        to: String,
        /// Who decided.
        by: String,
        /// When.
        at: OffsetDateTime,
        /// The end of an approved grant.
        expires_at: Option<OffsetDateTime>,
    },
}

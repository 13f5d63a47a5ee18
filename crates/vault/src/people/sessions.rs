//! Logins and sessions: `POST /v1/auth/login` checks the password (Argon2id, on the blocking
//! pool) and the second factor, and starts a session whose 256-bit random id goes into the
//! `ward_session` cookie and whose SHA-256 goes into the store.
//!
//! Every failure (unknown e-mail, wrong password, wrong or replayed code, used recovery code,
//! disabled account) is the one [`VaultError::LoginFailed`], after the same work: an unknown
//! e-mail is verified against a dummy hash. Failures are charged to the throttle of
//! `auth_guard.rs` per source (keyed hash of the client address) and per account (a prefix of
//! the e-mail's keyed hash), so guessing is slow from one address and for one account.
//!
//! An authenticated session is cached for a few seconds like an API key, but its idle and
//! absolute timeouts are checked against the vault's clock on every request; a logout,
//! password change or disabled account drops it from the cache at once.

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::Action;
use ward_crypto::{Zeroizing, ct_eq, sha256};
use ward_store::{Op, PeopleOp, SessionRow, UserRow};

use super::totp::{self, SecondFactor};
use super::{Email, UserOut, password};
use crate::{GrantScope, Principal, RequestContext, Result, Role, Vault, VaultError};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "ward_session";
/// Header carrying the CSRF token of a cookie-authenticated unsafe request.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A session is refreshed in the store at most this often (its idle timer counts from the
/// refresh).
const TOUCH_EVERY: time::Duration = time::Duration::MINUTE;

/// Body of `POST /v1/auth/login`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Login e-mail address.
    pub email: String,
    /// Password.
    pub password: String,
    /// Six-digit TOTP code, or a recovery code `xxxxx-xxxxx`; may be omitted for an account
    /// without TOTP.
    #[serde(default)]
    pub totp: Option<String>,
}

/// What a login returns. The session id itself travels only in the cookie.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginOut {
    /// The new session's id (appears in `GET /v1/auth/sessions`).
    pub session: Uuid,
    /// Send it back in the `X-CSRF-Token` header of every unsafe cookie-authenticated request.
    pub csrf_token: String,
    /// The user.
    pub user: UserOut,
    /// The session's absolute end.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// An idle session ends after this many seconds.
    pub idle_timeout_secs: i64,
    /// The cookie value (never serialized: the server sets it as `ward_session`).
    #[serde(skip)]
    pub cookie: Zeroizing<String>,
}

/// A session as listed to its user.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionOut {
    /// Session id.
    pub id: Uuid,
    /// Login time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last use (to the minute).
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Absolute end.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Whether it is the session of this request.
    pub current: bool,
}

/// An authenticated session as the cache keeps it.
#[derive(Clone)]
pub(crate) struct CachedSession {
    principal: Principal,
    csrf_hash: [u8; 32],
    last_seen_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    at: Instant,
}

impl Vault {
    /// Logs a user in. `previous` is the session cookie the request carried, if any: it is
    /// ended, so a session id planted before login is worthless after it.
    pub async fn login(
        &self,
        login: Login,
        previous: Option<&str>,
        request_id: &str,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<LoginOut> {
        let email = Email::parse(&login.email)?;
        if login.password.len() > password::MAX_BYTES {
            return Err(VaultError::invalid(
                "password_too_long",
                format!("a password has at most {} bytes", password::MAX_BYTES),
                Some("password"),
            ));
        }
        let factor = login.totp.as_deref().map(SecondFactor::parse).transpose()?;
        let account = self.inner.people.email_hash(&email);
        let (source, account_key) = self.throttle_keys(client_ip, Some(&account));
        self.check_throttle(source.as_deref(), account_key.as_ref())?;
        let now = self.now();
        let user = self.find_user(&email).await?;
        let pw = Zeroizing::new(login.password);
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let (ok, rehash) = tokio::task::spawn_blocking(move || match stored {
            Some(h) => {
                let ok = password::verify(&pw, &h);
                let rehash = (ok && password::needs_rehash(&h)).then(|| password::hash(&pw));
                (ok, rehash)
            }
            None => {
                password::verify_nothing(&pw);
                (false, None)
            }
        })
        .await
        .map_err(|_| VaultError::Integrity)?;
        let fail = |reason: &'static str| {
            let (source, account_key) = (source.clone(), account_key);
            async move {
                self.record_auth_failure(source, account_key, request_id, reason, now)
                    .await?;
                Err::<LoginOut, _>(VaultError::LoginFailed)
            }
        };
        let user = match user {
            Some(u) if ok && u.disabled_at.is_none() => u,
            _ => return fail("failed login").await,
        };
        let mut ops = Vec::new();
        let needs_totp = user.totp_sealed.is_some() || Role::parse(&user.role)?.is_platform();
        match (needs_totp, factor) {
            (false, _) => {}
            (true, None) => return Err(VaultError::TotpRequired),
            (true, Some(SecondFactor::Code(code))) => {
                let Some(sealed) = &user.totp_sealed else {
                    return fail("failed login").await;
                };
                let secret = self
                    .inner
                    .people
                    .open(user.id, "totp", user.key_version, sealed)?;
                let Some(step) = totp::check(&secret, &code, now.unix_timestamp())? else {
                    return fail("failed login: wrong totp code").await;
                };
                if user.totp_last_step.is_some_and(|last| step <= last) {
                    return fail("failed login: replayed totp code").await;
                }
                ops.push(Op::People(PeopleOp::AcceptTotpStep {
                    user: user.id,
                    step,
                }));
            }
            (true, Some(SecondFactor::Recovery(code))) => {
                ops.push(Op::People(PeopleOp::UseRecoveryCode {
                    user: user.id,
                    hash: sha256(code.as_bytes()),
                    at: now,
                }));
            }
        }
        if let Some(new_hash) = rehash {
            ops.push(Op::People(PeopleOp::SetPassword {
                user: user.id,
                password_hash: new_hash?,
                at: user.password_changed_at,
            }));
        }
        if let Some(prev) = previous
            && let Some(old) = self
                .inner
                .store
                .session_by_hash(&sha256(prev.as_bytes()))
                .await?
            && old.revoked_at.is_none()
        {
            ops.push(Op::People(PeopleOp::RevokeSession {
                user: old.user,
                id: old.id,
                at: now,
            }));
            self.forget_session(&old.token_hash);
        }
        let (out, session_ops) = self.new_session(&user, now)?;
        ops.extend(session_ops);
        let mut event = self.login_event(&user, out.session, request_id, client_ip);
        event.detail = Some(serde_json::json!({ "user": user.id, "session": out.session }));
        ops.push(Op::Audit(Box::new(event)));
        match self.commit(ops).await {
            Ok(_) => Ok(out),
            // A concurrent login spent the code first.
            Err(ward_store::StoreError::NotFound("totp step")) => {
                fail("failed login: replayed totp code").await
            }
            Err(ward_store::StoreError::NotFound("recovery code")) => {
                fail("failed login: unknown or used recovery code").await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A new session of `user` starting at `now`: what to answer and what to commit.
    pub(crate) fn new_session(
        &self,
        user: &UserRow,
        now: OffsetDateTime,
    ) -> Result<(LoginOut, Vec<Op>)> {
        let id = Uuid::now_v7();
        let cookie = Zeroizing::new(URL_SAFE_NO_PAD.encode(ward_crypto::random_bytes::<32>()?));
        let csrf = URL_SAFE_NO_PAD.encode(ward_crypto::random_bytes::<32>()?);
        let security = &self.inner.policy.security;
        let expires_at = now.saturating_add(security.session_max_age.as_duration());
        let row = SessionRow {
            id,
            token_hash: sha256(cookie.as_bytes()),
            user: user.id,
            csrf_hash: sha256(csrf.as_bytes()),
            created_at: now,
            last_seen_at: now,
            expires_at,
            revoked_at: None,
        };
        let out = LoginOut {
            session: id,
            csrf_token: csrf,
            user: self.user_out(user)?,
            expires_at,
            idle_timeout_secs: security.session_idle_timeout.as_duration().whole_seconds(),
            cookie,
        };
        Ok((out, vec![Op::People(PeopleOp::InsertSession(row))]))
    }

    /// Resolves a session cookie to its user's principal. An unsafe request (`unsafe_method`)
    /// must carry the session's CSRF token. Unknown, ended, idle or expired sessions are
    /// [`VaultError::Unauthenticated`] and charged to the throttle like a bad API key.
    pub async fn authenticate_session(
        &self,
        cookie: &str,
        csrf: Option<&str>,
        unsafe_method: bool,
        request_id: &str,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<Principal> {
        let hash = sha256(cookie.as_bytes());
        let now = self.now();
        let cached = self
            .inner
            .session_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
            .filter(|c| c.at.elapsed() < crate::AUTH_CACHE_TTL)
            .cloned();
        let session = match cached {
            Some(c) => c,
            None => {
                let (source, token_key) = self.throttle_keys(client_ip, Some(&hash));
                self.check_throttle(source.as_deref(), token_key.as_ref())?;
                match self.load_session(&hash, now).await? {
                    Some(c) => c,
                    None => {
                        self.record_auth_failure(
                            source,
                            token_key,
                            request_id,
                            "unknown or ended session",
                            now,
                        )
                        .await?;
                        return Err(VaultError::Unauthenticated);
                    }
                }
            }
        };
        let idle = self
            .inner
            .policy
            .security
            .session_idle_timeout
            .as_duration();
        if session.expires_at <= now || session.last_seen_at.saturating_add(idle) <= now {
            self.forget_session(&hash);
            return Err(VaultError::Unauthenticated);
        }
        if unsafe_method
            && !csrf.is_some_and(|t| ct_eq(&sha256(t.trim().as_bytes()), &session.csrf_hash))
        {
            return Err(VaultError::CsrfRefused);
        }
        if now - session.last_seen_at >= TOUCH_EVERY {
            let id = session.principal.session.unwrap_or_default();
            self.commit(vec![Op::People(PeopleOp::TouchSession { id, at: now })])
                .await?;
            if let Some(c) = self
                .inner
                .session_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&hash)
            {
                c.last_seen_at = now;
            }
        }
        Ok(session.principal)
    }

    async fn load_session(
        &self,
        hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Option<CachedSession>> {
        let Some(s) = self.inner.store.session_by_hash(hash).await? else {
            return Ok(None);
        };
        if s.revoked_at.is_some() || !ct_eq(&s.token_hash, hash) || s.expires_at <= now {
            return Ok(None);
        }
        let Some(user) = self.inner.store.user(s.user).await? else {
            return Ok(None);
        };
        if user.disabled_at.is_some() {
            return Ok(None);
        }
        let role = Role::parse(&user.role)?;
        let grants = if role == Role::Support {
            self.grant_scopes(user.id).await?
        } else {
            Vec::new()
        };
        let memberships = if role.is_platform() {
            Vec::new()
        } else {
            self.membership_scopes(user.id).await?
        };
        let principal = Principal {
            key_id: user.id,
            // A tenant user acts in a tenant only through a membership of it.
            tenant: None,
            role,
            purposes: Default::default(),
            session: Some(s.id),
            second_factor: user.totp_sealed.is_some(),
            grants,
            memberships,
        };
        let cached = CachedSession {
            principal,
            csrf_hash: s.csrf_hash,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            at: Instant::now(),
        };
        let mut cache = self
            .inner
            .session_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(*hash, cached.clone());
        Ok(Some(cached))
    }

    /// Ends the caller's session.
    pub async fn logout(&self, ctx: &RequestContext) -> Result<()> {
        let Some(session) = ctx.principal.session else {
            return Err(session_required());
        };
        let mut event = self.event(ctx, Action::Logout, ctx.principal.tenant);
        event.detail = Some(serde_json::json!({ "session": session }));
        self.commit(vec![
            Op::People(PeopleOp::RevokeSession {
                user: ctx.principal.key_id,
                id: session,
                at: self.now(),
            }),
            Op::Audit(Box::new(event)),
        ])
        .await?;
        self.forget_user_sessions(ctx.principal.key_id);
        Ok(())
    }

    /// The caller's live sessions.
    pub async fn sessions(&self, ctx: &RequestContext) -> Result<Vec<SessionOut>> {
        let Some(current) = ctx.principal.session else {
            return Err(session_required());
        };
        let now = self.now();
        let idle = self
            .inner
            .policy
            .security
            .session_idle_timeout
            .as_duration();
        Ok(self
            .inner
            .store
            .sessions_of(ctx.principal.key_id)
            .await?
            .into_iter()
            .filter(|s| {
                s.revoked_at.is_none()
                    && s.expires_at > now
                    && s.last_seen_at.saturating_add(idle) > now
            })
            .map(|s| SessionOut {
                id: s.id,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                current: s.id == current,
            })
            .collect())
    }

    /// Ends one of the caller's sessions (another's is "not found").
    pub async fn revoke_session(&self, ctx: &RequestContext, id: Uuid) -> Result<()> {
        if ctx.principal.session.is_none() {
            return Err(session_required());
        }
        let mut event = self.event(ctx, Action::Logout, ctx.principal.tenant);
        event.detail = Some(serde_json::json!({ "session": id }));
        self.commit(vec![
            Op::People(PeopleOp::RevokeSession {
                user: ctx.principal.key_id,
                id,
                at: self.now(),
            }),
            Op::Audit(Box::new(event)),
        ])
        .await?;
        self.forget_user_sessions(ctx.principal.key_id);
        Ok(())
    }

    /// Ends every session of the caller but the current one ("log out everywhere else");
    /// returns how many ended.
    pub async fn revoke_other_sessions(&self, ctx: &RequestContext) -> Result<u64> {
        let Some(current) = ctx.principal.session else {
            return Err(session_required());
        };
        let now = self.now();
        let others: Vec<Uuid> = self
            .inner
            .store
            .sessions_of(ctx.principal.key_id)
            .await?
            .into_iter()
            .filter(|s| s.id != current && s.revoked_at.is_none() && s.expires_at > now)
            .map(|s| s.id)
            .collect();
        let mut event = self.event(ctx, Action::Logout, ctx.principal.tenant);
        event.detail = Some(serde_json::json!({ "sessions": others }));
        let mut ops: Vec<Op> = others
            .iter()
            .map(|id| {
                Op::People(PeopleOp::RevokeSession {
                    user: ctx.principal.key_id,
                    id: *id,
                    at: now,
                })
            })
            .collect();
        ops.push(Op::Audit(Box::new(event)));
        self.commit(ops).await?;
        self.forget_user_sessions(ctx.principal.key_id);
        Ok(others.len() as u64)
    }

    /// Drops every cached session of a user (logout, password change, disabled account).
    pub(crate) fn forget_user_sessions(&self, user: Uuid) {
        self.inner
            .session_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, c| c.principal.key_id != user);
    }

    /// Drops every cached session (support grants changed: principals carry them).
    pub(crate) fn forget_all_sessions(&self) {
        self.inner
            .session_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    fn forget_session(&self, hash: &[u8; 32]) {
        self.inner
            .session_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(hash);
    }

    fn login_event(
        &self,
        user: &UserRow,
        session: Uuid,
        request_id: &str,
        client_ip: Option<std::net::IpAddr>,
    ) -> ward_audit::AuditEvent {
        let ctx = RequestContext {
            principal: Principal {
                key_id: user.id,
                tenant: user.tenant,
                role: Role::parse(&user.role).unwrap_or(Role::Member),
                purposes: Default::default(),
                session: Some(session),
                second_factor: user.totp_sealed.is_some(),
                grants: Vec::<GrantScope>::new(),
                memberships: Vec::new(),
            },
            request_id: request_id.to_owned(),
            client_ip,
        };
        self.event(&ctx, Action::Login, user.tenant)
    }
}

fn session_required() -> VaultError {
    VaultError::Forbidden {
        code: "session_required",
        reason: "sessions belong to users: this request is authenticated by an API key".into(),
    }
}

//! User accounts: creation (platform staff through `ward user add`), listing, disabling, and
//! the password change and reset flows.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, Actor, AuditEvent};
use ward_crypto::{Token, Zeroizing, sha256};
use ward_store::{Op, PeopleOp, UserRow};

use super::{password, totp};
use crate::{RequestContext, Result, Role, Vault, VaultError};

/// How long a password reset token works.
const RESET_TTL: time::Duration = time::Duration::hours(24);

/// A validated e-mail address in its normalized form (trimmed, lower case): the login name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses an address: one `@` between a non-empty local part and a dotted domain, at most
    /// 254 bytes, no spaces, controls or `:` (which an `otpauth://` label cannot carry).
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim().to_lowercase();
        let valid = s.len() <= 254
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            })
            && !s
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ':');
        if valid {
            Ok(Self(s))
        } else {
            Err(VaultError::invalid(
                "invalid_login_email",
                "expected an e-mail address such as jane@example.com",
                Some("email"),
            ))
        }
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user to create.
pub struct NewUser {
    /// Login name.
    pub email: Email,
    /// `operator` or `support` for platform staff; a tenant role with `tenant`.
    pub role: Role,
    /// The tenant of a tenant user.
    pub tenant: Option<Uuid>,
    /// The password (checked against the rules, then hashed).
    pub password: Zeroizing<String>,
    /// Enrol TOTP now (always done for platform staff).
    pub totp: bool,
}

/// A user as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserOut {
    /// User id.
    pub id: Uuid,
    /// Login name.
    pub email: String,
    /// Role.
    pub role: Role,
    /// Tenant of a tenant user.
    pub tenant: Option<Uuid>,
    /// Whether TOTP is enrolled.
    pub totp: bool,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the account was disabled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
}

/// A user just created, with what is shown once: the TOTP enrolment URI and recovery codes.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedUser {
    /// The user.
    pub user: UserOut,
    /// `otpauth://` URI for the authenticator app (shown once).
    pub otpauth_uri: Option<String>,
    /// Single-use recovery codes (shown once).
    pub recovery_codes: Vec<String>,
}

/// Body of `POST /v1/auth/password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password.
    pub current_password: String,
    /// The new password (at least 12 characters, at most 1,024 bytes, not a common one).
    pub new_password: String,
}

/// Body of `POST /v1/auth/password/reset`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// The account's e-mail address.
    pub email: String,
    /// The reset token (`ward_reset_…`) issued by `ward user reset` or by a tenant owner or
    /// admin (`POST /v1/tenants/{tenant}/users/{user}/password-reset`).
    pub token: String,
    /// The new password.
    pub new_password: String,
}

impl Vault {
    /// Creates a user (the CLI's `ward user add`); platform staff always get TOTP.
    pub async fn create_user(&self, new: NewUser, by: &str) -> Result<CreatedUser> {
        match (new.role.is_platform(), new.tenant) {
            (true, None) | (false, Some(_)) => {}
            _ => {
                return Err(VaultError::invalid(
                    "invalid_role",
                    "operator and support users belong to no tenant; tenant roles need one",
                    Some("role"),
                ));
            }
        }
        password::check_rules(&new.password)?;
        let id = Uuid::now_v7();
        let pw = new.password.clone();
        let password_hash = tokio::task::spawn_blocking(move || password::hash(&pw))
            .await
            .map_err(|_| VaultError::Integrity)??;
        let people = &self.inner.people;
        let with_totp = new.totp || new.role.is_platform();
        let (totp_sealed, uri) = if with_totp {
            let secret = totp::new_secret()?;
            let uri = totp::enrolment_uri(&secret, new.email.as_str())?;
            (Some(people.seal(id, "totp", &secret)?), Some(uri))
        } else {
            (None, None)
        };
        let (codes, code_hashes) = if with_totp {
            totp::recovery_codes()?
        } else {
            (Vec::new(), Vec::new())
        };
        let now = self.now();
        let row = UserRow {
            id,
            email_hash: people.email_hash(&new.email),
            email_sealed: people.seal(id, "email", new.email.as_str().as_bytes())?,
            role: new.role.as_str().into(),
            tenant: new.tenant,
            password_hash,
            totp_sealed,
            totp_last_step: None,
            key_version: people.current(),
            reset_hash: None,
            reset_expires_at: None,
            created_at: now,
            password_changed_at: now,
            disabled_at: None,
        };
        let user = self.user_out(&row)?;
        let event = self.admin_event(
            by,
            Action::UserCreate,
            new.tenant,
            serde_json::json!({ "user": id, "role": new.role, "totp": with_totp }),
        );
        let mut ops = vec![Op::People(PeopleOp::InsertUser {
            user: Box::new(row),
            recovery_codes: code_hashes,
        })];
        if let Some(tenant) = new.tenant {
            // A tenant user acts in its tenant through a membership, like an invited one.
            ops.push(Op::People(PeopleOp::InsertMembership(
                ward_store::MembershipRow {
                    user: id,
                    tenant,
                    role: new.role.as_str().into(),
                    purposes: "[]".into(),
                    expires_at: None,
                    created_at: now,
                },
            )));
        }
        ops.push(Op::Audit(Box::new(event)));
        self.commit(ops).await.map_err(|e| match e {
            ward_store::StoreError::Conflict(_) => VaultError::invalid(
                "email_taken",
                "a user with this e-mail address exists",
                Some("email"),
            ),
            other => other.into(),
        })?;
        Ok(CreatedUser {
            user,
            otpauth_uri: uri.map(|u| u.to_string()),
            recovery_codes: codes,
        })
    }

    /// Every user (the CLI's `ward user list`).
    pub async fn list_users(&self) -> Result<Vec<UserOut>> {
        let rows = self.inner.store.users().await?;
        rows.iter().map(|r| self.user_out(r)).collect()
    }

    /// Disables (or enables again) an account; disabling ends its sessions at once.
    pub async fn set_user_disabled(
        &self,
        email: &Email,
        disabled: bool,
        by: &str,
    ) -> Result<UserOut> {
        let mut row = self
            .find_user(email)
            .await?
            .ok_or(VaultError::NotFound("user"))?;
        let now = self.now();
        row.disabled_at = disabled.then_some(now);
        let mut ops = vec![Op::People(PeopleOp::SetUserDisabled {
            user: row.id,
            at: row.disabled_at,
        })];
        if disabled {
            ops.push(Op::People(PeopleOp::RevokeUserSessions {
                user: row.id,
                at: now,
            }));
        }
        ops.push(Op::Audit(Box::new(self.admin_event(
            by,
            Action::UserUpdate,
            row.tenant,
            serde_json::json!({ "user": row.id, "disabled": disabled }),
        ))));
        self.commit(ops).await?;
        self.forget_user_sessions(row.id);
        self.user_out(&row)
    }

    /// Issues a single-use password reset token valid for 24 hours (the CLI's
    /// `ward user reset`); Ward sends no mail, whoever runs the command hands it over.
    pub async fn issue_password_reset(
        &self,
        email: &Email,
        by: &str,
    ) -> Result<(UserOut, Zeroizing<String>, OffsetDateTime)> {
        let row = self
            .find_user(email)
            .await?
            .ok_or(VaultError::NotFound("user"))?;
        let (token, expires_at, op) = self.new_reset_token(row.id)?;
        self.commit(vec![
                op,
                Op::Audit(Box::new(self.admin_event(
                    by,
                    Action::UserUpdate,
                    row.tenant,
                    serde_json::json!({ "user": row.id, "reset_token_expires_at": expires_at.unix_timestamp() }),
                ))),
            ])
            .await?;
        Ok((
            self.user_out(&row)?,
            Zeroizing::new(token.as_str().to_owned()),
            expires_at,
        ))
    }

    /// A fresh reset token for `user`, its end, and the op that stores its hash (replacing
    /// any earlier token of the account).
    pub(crate) fn new_reset_token(&self, user: Uuid) -> Result<(Token, OffsetDateTime, Op)> {
        let token = Token::generate("ward_reset")?;
        let expires_at = self.now().saturating_add(RESET_TTL);
        let op = Op::People(PeopleOp::SetResetToken {
            user,
            hash: sha256(token.as_str().as_bytes()),
            expires_at,
        });
        Ok((token, expires_at, op))
    }

    /// Sets a new password with a reset token; ends every session of the account. Throttled
    /// like a login; every failure is the one [`VaultError::ResetInvalid`].
    pub async fn reset_password(
        &self,
        reset: PasswordReset,
        request_id: &str,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<()> {
        let email = Email::parse(&reset.email)?;
        password::check_rules(&reset.new_password)?;
        let hash = sha256(reset.token.trim().as_bytes());
        let (source, token_key) = self.throttle_keys(client_ip, Some(&hash));
        self.check_throttle(source.as_deref(), token_key.as_ref())?;
        let now = self.now();
        let user = self.find_user(&email).await?;
        let valid = user.filter(|u| {
            u.reset_hash.is_some_and(|h| ward_crypto::ct_eq(&h, &hash))
                && u.reset_expires_at.is_some_and(|e| e > now)
        });
        let Some(user) = valid else {
            self.record_auth_failure(source, token_key, request_id, "invalid reset token", now)
                .await?;
            return Err(VaultError::ResetInvalid);
        };
        let pw = Zeroizing::new(reset.new_password);
        let password_hash = tokio::task::spawn_blocking(move || password::hash(&pw))
            .await
            .map_err(|_| VaultError::Integrity)??;
        let mut event = self.admin_event(
            "reset-token",
            Action::PasswordChange,
            user.tenant,
            serde_json::json!({ "user": user.id, "by": "reset token" }),
        );
        event.actor = Actor {
            id: format!("user:{}", user.id),
            role: user.role.clone(),
        };
        event.request_id = request_id.to_owned();
        event.client = client_ip.map(|ip| self.client_hash(ip));
        let committed = self
            .commit(vec![
                Op::People(PeopleOp::UseResetToken {
                    user: user.id,
                    hash,
                    at: now,
                }),
                Op::People(PeopleOp::SetPassword {
                    user: user.id,
                    password_hash,
                    at: now,
                }),
                Op::People(PeopleOp::RevokeUserSessions {
                    user: user.id,
                    at: now,
                }),
                Op::Audit(Box::new(event)),
            ])
            .await;
        match committed {
            Ok(_) => {
                self.forget_user_sessions(user.id);
                Ok(())
            }
            Err(ward_store::StoreError::NotFound("reset token")) => Err(VaultError::ResetInvalid),
            Err(e) => Err(e.into()),
        }
    }

    /// Changes the caller's password (a logged-in user, with its current password); every
    /// other session of the account ends, and the caller's own session is replaced (the
    /// session id changes at a privilege change).
    pub async fn change_password(
        &self,
        ctx: &RequestContext,
        change: PasswordChange,
    ) -> Result<super::LoginOut> {
        if ctx.principal.session.is_none() {
            return Err(VaultError::Forbidden {
                code: "session_required",
                reason: "passwords belong to users: log in to change yours".into(),
            });
        }
        password::check_rules(&change.new_password)?;
        let user = self
            .inner
            .store
            .user(ctx.principal.key_id)
            .await?
            .ok_or(VaultError::Unauthenticated)?;
        let current = Zeroizing::new(change.current_password);
        let stored = user.password_hash.clone();
        let new_pw = Zeroizing::new(change.new_password);
        let (ok, new_hash) = tokio::task::spawn_blocking(move || {
            let ok = password::verify(&current, &stored);
            (ok, ok.then(|| password::hash(&new_pw)))
        })
        .await
        .map_err(|_| VaultError::Integrity)?;
        let Some(new_hash) = new_hash.filter(|_| ok) else {
            return Err(VaultError::invalid(
                "wrong_password",
                "the current password is wrong",
                Some("current_password"),
            ));
        };
        let now = self.now();
        let mut event = self.event(ctx, Action::PasswordChange, user.tenant);
        event.detail = Some(serde_json::json!({ "user": user.id }));
        let mut ops = vec![
            Op::People(PeopleOp::SetPassword {
                user: user.id,
                password_hash: new_hash?,
                at: now,
            }),
            Op::People(PeopleOp::RevokeUserSessions {
                user: user.id,
                at: now,
            }),
            Op::Audit(Box::new(event)),
        ];
        let (out, session_ops) = self.new_session(&user, now)?;
        ops.extend(session_ops);
        self.commit(ops).await?;
        self.forget_user_sessions(user.id);
        Ok(out)
    }

    /// The user with this e-mail address, under any held root key version.
    pub(crate) async fn find_user(&self, email: &Email) -> Result<Option<UserRow>> {
        for hash in self.inner.people.email_hashes(email) {
            if let Some(u) = self.inner.store.user_by_email_hash(&hash).await? {
                return Ok(Some(u));
            }
        }
        Ok(None)
    }

    pub(crate) fn user_out(&self, row: &UserRow) -> Result<UserOut> {
        let email = self
            .inner
            .people
            .open(row.id, "email", row.key_version, &row.email_sealed)?;
        Ok(UserOut {
            id: row.id,
            email: String::from_utf8(email.to_vec()).map_err(|_| VaultError::Integrity)?,
            role: Role::parse(&row.role)?,
            tenant: row.tenant,
            totp: row.totp_sealed.is_some(),
            created_at: row.created_at,
            disabled_at: row.disabled_at,
        })
    }

    /// An audit event of an administrative command (`by` names the command).
    fn admin_event(
        &self,
        by: &str,
        action: Action,
        tenant: Option<Uuid>,
        detail: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent::allowed(
            self.now(),
            format!("{by}-{}", Uuid::now_v7()),
            Actor::system(by),
            action,
            tenant,
        )
        .with_detail(detail)
    }
}

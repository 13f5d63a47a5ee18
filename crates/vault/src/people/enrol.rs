//! Self-enrolment in TOTP: a signed-in user without TOTP (an account made by an invitation,
//! or by `ward user add` without `--totp`) adds it in two steps.
//!
//! `POST /v1/auth/totp` hands out the `otpauth://` URI of the secret offered to this session
//! (derived, not stored: [`super::PeopleKeys::pending_totp_secret`]); `POST
//! /v1/auth/totp/confirm` with the first code the app shows activates it, returns ten
//! recovery codes once, ends every other session of the user and replaces the caller's: a
//! privilege change, after which every live session of the user was opened with the second
//! factor (what [`crate::Principal::second_factor`] relies on). A user with TOTP cannot
//! enrol again (409 `totp_enrolled`), so a stolen session cannot swap the secret of an
//! account that has one.

use serde::{Deserialize, Serialize};
use ward_audit::Action;
use ward_store::{Op, PeopleOp, UserRow};

use super::{LoginOut, totp};
use crate::{RequestContext, Result, Vault, VaultError};

/// What `POST /v1/auth/totp` returns.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TotpStart {
    /// The `otpauth://` URI to add to an authenticator app (as text or a QR code). The
    /// same session is offered the same secret until it confirms.
    pub otpauth_uri: String,
}

/// Body of `POST /v1/auth/totp/confirm`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirm {
    /// The six digits the authenticator app shows now.
    pub code: String,
}

/// What a confirmed enrolment returns: the new session (its cookie is set) and the recovery
/// codes, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TotpEnrolled {
    /// The session that replaces the caller's (new cookie, new CSRF token).
    #[serde(flatten)]
    pub session: LoginOut,
    /// Ten single-use recovery codes `xxxxx-xxxxx`; they are not shown again.
    pub recovery_codes: Vec<String>,
}

impl Vault {
    /// Starts the caller's TOTP enrolment: the URI of the secret offered to this session.
    pub async fn start_totp_enrolment(&self, ctx: &RequestContext) -> Result<TotpStart> {
        let (session, user) = self.enrolling_user(ctx).await?;
        let secret = self.inner.people.pending_totp_secret(user.id, session)?;
        let email = self.user_out(&user)?.email;
        let uri = totp::enrolment_uri(&secret, &email)?;
        let mut event = self.event(ctx, Action::TotpEnrol, ctx.principal.tenant);
        event.detail = Some(serde_json::json!({ "user": user.id, "stage": "started" }));
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(TotpStart {
            otpauth_uri: uri.to_string(),
        })
    }

    /// Confirms the caller's TOTP enrolment with a code of the offered secret.
    pub async fn confirm_totp_enrolment(
        &self,
        ctx: &RequestContext,
        confirm: TotpConfirm,
    ) -> Result<TotpEnrolled> {
        let code = confirm.code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VaultError::invalid(
                "invalid_totp",
                "code is the six digits the authenticator app shows",
                Some("code"),
            ));
        }
        let (session, mut user) = self.enrolling_user(ctx).await?;
        let secret = self.inner.people.pending_totp_secret(user.id, session)?;
        let now = self.now();
        let Some(step) = totp::check(&secret, code, now.unix_timestamp())? else {
            return Err(VaultError::invalid(
                "wrong_totp_code",
                "this is not the code the authenticator app shows now for the secret of \
                 POST /v1/auth/totp (in this session); check the device's clock",
                Some("code"),
            ));
        };
        let sealed = self
            .inner
            .people
            .seal_at(user.id, "totp", user.key_version, &secret)?;
        let (codes, code_hashes) = totp::recovery_codes()?;
        let mut event = self.event(ctx, Action::TotpEnrol, ctx.principal.tenant);
        event.detail = Some(serde_json::json!({ "user": user.id, "stage": "confirmed" }));
        user.totp_sealed = Some(sealed.clone());
        user.totp_last_step = Some(step);
        let mut ops = vec![
            Op::People(PeopleOp::EnrolTotp {
                user: user.id,
                totp_sealed: sealed,
                step,
                recovery_codes: code_hashes,
            }),
            // A privilege change: no session opened without the factor outlives it.
            Op::People(PeopleOp::RevokeUserSessions {
                user: user.id,
                at: now,
            }),
            Op::Audit(Box::new(event)),
        ];
        let (out, session_ops) = self.new_session(&user, now)?;
        ops.extend(session_ops);
        match self.commit(ops).await {
            Ok(_) => {}
            Err(ward_store::StoreError::NotFound("totp enrolment")) => return Err(enrolled()),
            Err(e) => return Err(e.into()),
        }
        self.forget_user_sessions(user.id);
        Ok(TotpEnrolled {
            session: out,
            recovery_codes: codes,
        })
    }

    /// The session and account of a caller who may enrol: a signed-in user without TOTP.
    async fn enrolling_user(&self, ctx: &RequestContext) -> Result<(uuid::Uuid, UserRow)> {
        let Some(session) = ctx.principal.session else {
            return Err(VaultError::Forbidden {
                code: "session_required",
                reason: "TOTP belongs to users: this request is authenticated by an API key".into(),
            });
        };
        let user = self
            .inner
            .store
            .user(ctx.principal.key_id)
            .await?
            .ok_or(VaultError::Unauthenticated)?;
        if user.totp_sealed.is_some() {
            return Err(enrolled());
        }
        Ok((session, user))
    }
}

fn enrolled() -> VaultError {
    VaultError::StateConflict {
        code: "totp_enrolled",
        reason: "this account has TOTP already".into(),
    }
}

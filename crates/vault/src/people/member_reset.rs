//! A tenant's owners and admins issue password reset tokens for the tenant's users.
//!
//! Ward sends no mail: the token is in the response, once, and whoever asked hands it over.
//! Role order is the one of memberships (owners reset anyone's, admins members' and
//! auditors'). An account that is also a user of another tenant is refused (409
//! `account_shared`): a reset sets the password every tenant of the account relies on, and one
//! tenant's owner must not be able to take over the account in another. The operator's `ward
//! user reset` resets those. TOTP is untouched: an account with TOTP still needs its code.

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::Action;
use ward_store::Op;

use crate::access::Operation;
use crate::{RequestContext, Result, Role, Vault, VaultError};

/// What issuing a reset returns; the token is shown here and nowhere else.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResetIssued {
    /// The user whose password the token resets.
    pub user: Uuid,
    /// The single-use token, for `POST /v1/auth/password/reset`.
    pub token: String,
    /// When it stops working (24 hours after issue).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl Vault {
    /// Issues a single-use reset token for user `user` of `tenant`; a token issued before for
    /// the account stops working.
    pub async fn issue_member_reset(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        user: Uuid,
    ) -> Result<ResetIssued> {
        let mut event = self.event(ctx, Action::UserUpdate, Some(tenant));
        let row = self.visible_tenant(ctx, tenant, &event).await?;
        let memberships = self.inner.store.memberships_of(user).await?;
        let target = memberships.iter().find(|m| m.tenant == tenant);
        // Someone not a user of the tenant is decided as the least role, then not found.
        let role = target
            .map(|m| Role::parse(&m.role))
            .transpose()?
            .unwrap_or(Role::Member);
        event.detail = Some(serde_json::json!({ "user": user, "role": role, "reset": true }));
        self.check(
            &self.tenant_access(ctx, &row, Operation::IssuePasswordReset { role }),
            &event,
        )
        .await?;
        if target.is_none() {
            return Err(VaultError::NotFound("user"));
        }
        if memberships.iter().any(|m| m.tenant != tenant) {
            return Err(VaultError::StateConflict {
                code: "account_shared",
                reason: "this account is also a user of another tenant; its password is \
                          reset by the operator (ward user reset)"
                    .into(),
            });
        }
        let (token, expires_at, op) = self.new_reset_token(user)?;
        event.detail = Some(serde_json::json!({
            "user": user,
            "role": role,
            "reset_token_expires_at": expires_at.unix_timestamp(),
        }));
        self.commit(vec![op, Op::Audit(Box::new(event))]).await?;
        Ok(ResetIssued {
            user,
            token: token.as_str().to_owned(),
            expires_at,
        })
    }
}

//! A tenant's own settings that guard its people: whether its users must sign in with TOTP.
//!
//! They live in the tenant row's `settings` JSON (beside retention overrides), so adding one
//! needs no migration. Only the tenant's owners change them, in both directions: an admin
//! cannot relax what an owner required (the permission table gives `update tenant settings`
//! to owners alone). Turning the TOTP requirement on from a session without TOTP is refused
//! (409 `totp_not_enrolled`) so that an owner cannot lock itself out; every change is audited
//! with its old and new value.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;
use ward_audit::Action;
use ward_store::{Op, TenantRow};

use crate::access::{Operation, needs_totp_fact};
use crate::{RequestContext, Result, Vault, VaultError};

/// The settings key of the TOTP requirement.
const REQUIRE_TOTP: &str = "require_totp";

/// Body of `PATCH /v1/tenants/{tenant}/settings`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    /// Whether the tenant's users must sign in with TOTP: a session opened with a password
    /// alone is then refused on every route of the tenant (403 `totp_required`). API keys are
    /// not affected.
    pub require_totp: bool,
}

/// A tenant's settings as shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantSettings {
    /// Whether the tenant's users must sign in with TOTP.
    pub require_totp: bool,
}

/// Whether the tenant requires its users to sign in with TOTP. Settings that do not parse
/// are treated as empty (no requirement), as retention overrides are.
pub(crate) fn requires_totp(row: &TenantRow) -> bool {
    serde_json::from_str::<Value>(&row.settings)
        .ok()
        .and_then(|s| s.get(REQUIRE_TOTP).and_then(Value::as_bool))
        .unwrap_or(false)
}

impl Vault {
    /// Changes the tenant's settings (its owners only).
    pub async fn update_tenant_settings(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        change: SettingsChange,
    ) -> Result<TenantSettings> {
        let mut event = self.event(ctx, Action::TenantSettingsUpdate, Some(tenant));
        let row = self.visible_tenant(ctx, tenant, &event).await?;
        let old = requires_totp(&row);
        let new = change.require_totp;
        event.detail = Some(json!({ REQUIRE_TOTP: { "old": old, "new": new } }));
        let operation = Operation::UpdateSettings {
            enables_totp_without_own: new && needs_totp_fact(&ctx.principal),
        };
        self.check(&self.tenant_access(ctx, &row, operation), &event)
            .await?;
        // Set whatever the key holds now: the audited `old` may then be off by a change that
        // raced this one, but the result (and its own event) is exact.
        self.commit(vec![
            Op::PatchTenantSettings {
                id: tenant,
                path: vec![REQUIRE_TOTP.to_owned()],
                value: Value::Bool(new),
                expect: None,
            },
            Op::Audit(Box::new(event)),
        ])
        .await?;
        self.forget_tenant_row(tenant);
        Ok(TenantSettings { require_totp: new })
    }

    /// Whether `tenant` requires TOTP, as a fact for an access decision built by hand: read
    /// (from the short-lived tenant cache) only when it can matter, for a session opened
    /// without a second factor, so API keys and TOTP sessions pay nothing for it.
    pub(crate) async fn totp_fact(&self, ctx: &RequestContext, tenant: Uuid) -> Result<bool> {
        if !needs_totp_fact(&ctx.principal) {
            return Ok(false);
        }
        match self.tenant_row_cached(tenant).await {
            Ok(row) => Ok(requires_totp(&row)),
            // No tenant: the decision hides it for its own reasons.
            Err(VaultError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

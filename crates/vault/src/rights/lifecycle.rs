//! The tenant lifecycle: cancelling and reactivating a tenant. Apart because it acts on a
//! whole tenant rather than one subject.

use uuid::Uuid;
use ward_audit::Action;
use ward_store::{Op, TenantRow, TenantStatus};

use crate::access::Operation;
use crate::{RequestContext, Result, Vault, VaultError};

impl Vault {
    /// Cancels a tenant: data access stops at once; after the policy's grace period the
    /// retention engine destroys it by shredding its key. Owners and operators may cancel.
    pub async fn cancel_tenant(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
    ) -> Result<crate::TenantOut> {
        let event = self.event(ctx, Action::TenantCancel, Some(tenant));
        let trow = self.lifecycle_tenant(ctx, tenant, &event).await?;
        if trow.status != TenantStatus::Active {
            return Err(VaultError::conflict(format!("tenant is {}", trow.status)));
        }
        let now = self.now();
        let destroy_after = now + self.inner.policy.tenants.grace_period.as_duration();
        self.commit(vec![
            Op::SetTenantStatus {
                id: tenant,
                status: TenantStatus::Deactivated,
                at: now,
                destroy_after: Some(destroy_after),
            },
            Op::Audit(Box::new(event)),
        ])
        .await?;
        self.forget_tenant_row(tenant);
        Ok(crate::TenantOut {
            status: TenantStatus::Deactivated.as_str().to_owned(),
            destroy_after: Some(destroy_after),
            ..crate::tenants::tenant_out(&trow)
        })
    }

    /// Reactivates a cancelled tenant during its grace period.
    pub async fn reactivate_tenant(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
    ) -> Result<crate::TenantOut> {
        let event = self.event(ctx, Action::TenantReactivate, Some(tenant));
        let trow = self.lifecycle_tenant(ctx, tenant, &event).await?;
        let now = self.now();
        if trow.status != TenantStatus::Deactivated || trow.destroy_after.is_some_and(|d| d <= now)
        {
            return Err(VaultError::conflict(format!(
                "tenant is {} and cannot be reactivated",
                trow.status
            )));
        }
        self.commit(vec![
            Op::SetTenantStatus {
                id: tenant,
                status: TenantStatus::Active,
                at: now,
                destroy_after: None,
            },
            Op::Audit(Box::new(event)),
        ])
        .await?;
        self.forget_tenant_row(tenant);
        Ok(crate::TenantOut {
            status: TenantStatus::Active.as_str().to_owned(),
            destroy_after: None,
            ..crate::tenants::tenant_out(&trow)
        })
    }

    async fn lifecycle_tenant(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        event: &ward_audit::AuditEvent,
    ) -> Result<TenantRow> {
        let trow = self.visible_tenant(ctx, tenant, event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::ChangeLifecycle),
            event,
        )
        .await?;
        if trow.status == TenantStatus::Destroyed {
            return Err(VaultError::NotFound("tenant"));
        }
        Ok(trow)
    }
}

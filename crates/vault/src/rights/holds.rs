//! Litigation holds on a subject and per-tenant retention overrides: the two ways a tenant
//! changes how long data stays, kept apart from the rights that act on it now.

use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::Action;
use ward_policy::Period;
use ward_store::Op;

use crate::access::Operation;
use crate::records::tenant_retention_override;
use crate::{RequestContext, Result, Vault, VaultError};

use super::rfc3339;

impl Vault {
    /// Puts a subject under a litigation hold (or lifts it with `None`): retention and erasure
    /// leave the subject's data alone until then.
    pub async fn set_subject_hold(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        until: Option<OffsetDateTime>,
    ) -> Result<()> {
        let mut event = self.event(ctx, Action::SubjectHold, Some(tenant));
        event.subject = Some(subject);
        event.detail = Some(json!({ "hold_until": until.map(rfc3339) }));
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::ManageRights),
            &event,
        )
        .await?;
        if until.is_some_and(|u| u <= self.now()) {
            return Err(VaultError::invalid(
                "invalid_hold",
                "hold_until must be in the future",
                Some("until"),
            ));
        }
        self.commit(vec![
            Op::SetSubjectHold {
                tenant,
                subject,
                hold_until: until,
            },
            Op::Audit(Box::new(event)),
        ])
        .await?;
        Ok(())
    }

    /// Shortens a collection's retention for one tenant (never lengthens it); existing records'
    /// expiry moves earlier by the same amount.
    ///
    /// Two overrides of one collection racing each other: the second finds the first's value
    /// changed under it (`Conflict::Stale`) and is decided again on the new value, so the
    /// expiry shift always matches the override that stands.
    pub async fn set_retention(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        collection: &str,
        period: &str,
    ) -> Result<Value> {
        crate::retry::retrying(
            |e| e.is_store_conflict(&ward_store::Conflict::Stale),
            || self.forget_tenant_row(tenant),
            || self.set_retention_once(ctx, tenant, collection, period),
        )
        .await
    }

    async fn set_retention_once(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        collection: &str,
        period: &str,
    ) -> Result<Value> {
        let event = self.event(ctx, Action::RetentionRun, Some(tenant));
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::ManageRights),
            &event,
        )
        .await?;
        let coll = self.collection(collection)?;
        let Some(policy_retention) = &coll.retention else {
            return Err(VaultError::invalid(
                "no_retention",
                format!(
                    "collection {collection} has no retention in the policy; a tenant cannot add one through an override"
                ),
                Some("collection"),
            ));
        };
        let wanted = Period::parse(period).map_err(|e| {
            VaultError::invalid("invalid_period", e.to_string(), Some("retain_for"))
        })?;
        policy_retention.shortened(wanted).map_err(|_| {
            VaultError::invalid(
                "retention_extension_refused",
                format!("the policy keeps {collection} for {}; a tenant may shorten that, never lengthen it", policy_retention.retain_for),
                Some("retain_for"),
            )
        })?;
        let current = tenant_retention_override(&trow, collection)
            .filter(|p| *p < policy_retention.retain_for)
            .unwrap_or(policy_retention.retain_for);
        if wanted > current {
            return Err(VaultError::invalid(
                "retention_extension_refused",
                format!(
                    "{collection} is already kept for {current} in this tenant; an override may only shorten it"
                ),
                Some("retain_for"),
            ));
        }
        let stored = serde_json::from_str::<Value>(&trow.settings)
            .ok()
            .and_then(|s| s.get("retention")?.get(collection).cloned())
            .unwrap_or(Value::Null);
        let by = (current.as_duration() - wanted.as_duration()).whole_microseconds() as i64;
        let mut event = event;
        event.action = Action::RetentionOverride;
        event.collection = self.known_collection(collection);
        event.detail = Some(json!({ "retention_override": wanted.to_string() }));
        self.commit(vec![
            Op::PatchTenantSettings {
                id: tenant,
                path: vec!["retention".to_owned(), collection.to_owned()],
                value: Value::String(wanted.to_string()),
                expect: Some(stored),
            },
            Op::ShiftExpiry {
                tenant,
                collection: collection.to_owned(),
                by_micros: by,
            },
            Op::Audit(Box::new(event)),
        ])
        .await?;
        self.forget_tenant_row(tenant);
        Ok(json!({ "collection": collection, "retain_for": wanted.to_string() }))
    }
}

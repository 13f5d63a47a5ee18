//! Data-subject rights (access, portability, rectification, erasure, restriction), tracked
//! requests, litigation holds, per-tenant retention overrides and the tenant lifecycle.
//!
//! This file holds the request and response types and what every right shares; each family of
//! operations lives in its own submodule.

mod erasure;
mod export;
mod holds;
mod lifecycle;
mod requests;
mod restriction;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::Action;
use ward_store::TenantRow;

use crate::access::Operation;
use crate::{RequestContext, Result, Vault};

/// What an erasure did.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErasureOut {
    /// The erased subject's pseudonymous id.
    pub subject: Uuid,
    /// When the subject key was destroyed.
    #[serde(with = "time::serde::rfc3339")]
    pub erased_at: OffsetDateTime,
    /// Records deleted with the key.
    pub records_erased: u64,
    /// Collections kept under a legal hold: which, why, until when.
    pub kept: Vec<KeptOut>,
    /// True when the subject had already been erased (erasure is idempotent).
    pub already_erased: bool,
}

/// Records kept under a legal hold.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeptOut {
    /// Collection.
    pub collection: String,
    /// How many records.
    pub records: u64,
    /// The hold's reason from the policy.
    pub reason: String,
    /// When the last of them is deleted.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

/// A restriction (objection) request body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestrictionIn {
    /// Purposes to stop processing for (fideslang data-use keys).
    #[serde(default)]
    pub purposes: Vec<String>,
    /// Stop every purpose that is not essential (service delivery, legal obligations).
    #[serde(default)]
    pub all_non_essential: bool,
}

/// A data-subject request to open.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// access, portability, erasure, rectification or restriction.
    pub kind: String,
    /// The subject concerned.
    pub subject: Uuid,
    /// Who verified the requester's identity, and how (e.g. "support:jane via account login").
    pub verified_by: String,
    /// For restriction requests: the purposes.
    #[serde(default)]
    pub purposes: Vec<String>,
    /// For restriction requests: every non-essential purpose.
    #[serde(default)]
    pub all_non_essential: bool,
}

/// How to complete a request.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// Rectification: the record to correct.
    pub record: Option<Uuid>,
    /// Rectification: the corrected fields.
    #[schema(value_type = Object)]
    pub fields: Option<serde_json::Map<String, Value>>,
}

/// A tracked request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestOut {
    /// Request id.
    pub id: Uuid,
    /// Kind.
    pub kind: String,
    /// Subject.
    pub subject: Uuid,
    /// open, completed or rejected.
    pub status: String,
    /// Who verified identity.
    pub verified_by: String,
    /// Opened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Legal deadline (one month).
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// Closed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    /// Open and past its deadline.
    pub overdue: bool,
    /// Kind-specific detail and outcome.
    #[schema(value_type = Object)]
    pub detail: Value,
    /// The result of completing it (the export document for access/portability).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub result: Option<Value>,
}

impl Vault {
    /// The common start of a right exercised on one subject: its audit event, the tenant
    /// (isolation checked) and the access decision for rights handling.
    async fn rights_gate(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        action: Action,
    ) -> Result<(ward_audit::AuditEvent, TenantRow)> {
        let mut event = self.event(ctx, action, Some(tenant));
        event.subject = Some(subject);
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::ManageRights),
            &event,
        )
        .await?;
        Ok((event, trow))
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

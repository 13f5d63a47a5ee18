//! Support grants: how support staff reach a tenant's data, and only so.
//!
//! A support user asks (`POST /v1/tenants/{tenant}/support-grants`) with a ticket, a
//! justification, the collections and actions it needs and a duration of at most 72 hours;
//! an owner or admin of the tenant approves or denies it, and may revoke it early. A
//! break-glass request opens at once for at most 4 hours and is announced on the vault's
//! break-glass channel ([`Vault::subscribe_break_glass`]), which the server (or the
//! monitoring rules) turns into a notification of the tenant; the audit event is written
//! either way. Staff never decide grants (the permission table gives them no `decide`).
//!
//! Every action under a grant is audited with the actor `user:<id>/grant:<grant>` in the
//! tenant's own log, which is also how a grant's use count is found.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::broadcast;
use uuid::Uuid;
use ward_audit::Action;
use ward_policy::Period;
use ward_store::{AuditQuery, Op, PeopleOp, SupportGrantRow};

use crate::access::Operation;
use crate::{GrantAction, GrantScope, RequestContext, Result, Vault, VaultError, parse_list};

/// Longest grant that waits for approval.
const MAX_DURATION: time::Duration = time::Duration::hours(72);
/// Longest break-glass grant.
const MAX_BREAK_GLASS: time::Duration = time::Duration::hours(4);
/// Longest ticket reference and justification.
const MAX_TEXT: usize = 2_000;

/// Body of a support grant request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    /// The support ticket this access is for.
    pub ticket: String,
    /// Why the data is needed.
    pub justification: String,
    /// Collections to open (at least one, each a collection of the policy).
    pub collections: Vec<String>,
    /// Actions: `read`, `write`, `audit` (at least one).
    pub actions: Vec<String>,
    /// How long, e.g. `"4h"` (at most 72 h; at most 4 h for break-glass).
    pub duration: String,
    /// Open at once without approval; the tenant is notified.
    #[serde(default)]
    pub break_glass: bool,
}

/// A support grant as shown to the tenant and to its requester.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GrantOut {
    /// Grant id.
    pub id: Uuid,
    /// Tenant.
    pub tenant: Uuid,
    /// The support user who asked.
    pub requester: Uuid,
    /// Ticket reference.
    pub ticket: String,
    /// Justification.
    pub justification: String,
    /// Collections it opens.
    pub collections: Vec<String>,
    /// Actions it allows.
    pub actions: Vec<GrantAction>,
    /// Opened without approval.
    pub break_glass: bool,
    /// `requested`, `approved`, `denied` or `revoked`.
    pub status: String,
    /// Whether it works now (approved and not expired).
    pub live: bool,
    /// Requested duration in seconds.
    pub duration_secs: i64,
    /// Request time.
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// Decision time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// End of an opened grant.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Audited actions taken under the grant so far.
    pub use_count: u64,
}

/// What the break-glass channel carries: a grant opened without the tenant's approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassNotice {
    /// The grant.
    pub grant: Uuid,
    /// The tenant to notify.
    pub tenant: Uuid,
    /// The support user.
    pub requester: Uuid,
    /// When it ends.
    pub expires_at: OffsetDateTime,
    /// Index of the grant's audit event in the log.
    pub audit_index: Option<u64>,
}

/// A decision on a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantDecision {
    /// Open it for its duration from now.
    Approve,
    /// Refuse it.
    Deny,
    /// End an open grant early.
    Revoke,
}

impl Vault {
    /// Break-glass notices from now on. The receiver lags (and skips) when it falls more than
    /// 256 notices behind; the audit log has them all.
    pub fn subscribe_break_glass(&self) -> broadcast::Receiver<BreakGlassNotice> {
        self.inner.break_glass.subscribe()
    }

    /// A support user asks for access to a tenant (or opens it at once, break-glass).
    // Long on purpose: one linear sequence (gate, validate every field, seal, build the grant,
    // commit with its audit event, announce a break-glass); splitting it would scatter the
    // order in which a request is refused.
    pub async fn request_grant(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        new: NewGrant,
    ) -> Result<GrantOut> {
        let mut event = self.event(ctx, Action::GrantRequest, Some(tenant));
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::RequestGrant),
            &event,
        )
        .await?;
        let ticket = crate::text::parse(&new.ticket, "ticket", "invalid_grant", MAX_TEXT)?;
        let justification = crate::text::parse(
            &new.justification,
            "justification",
            "invalid_grant",
            MAX_TEXT,
        )?;
        if new.collections.is_empty()
            || new
                .collections
                .iter()
                .any(|c| self.inner.policy.collection(c).is_none())
        {
            return Err(VaultError::invalid(
                "invalid_grant",
                "collections must name at least one collection of the policy",
                Some("collections"),
            ));
        }
        let mut actions = Vec::new();
        for a in &new.actions {
            let a = GrantAction::parse(a).ok_or_else(|| {
                VaultError::invalid(
                    "invalid_grant",
                    "actions are read, write or audit",
                    Some("actions"),
                )
            })?;
            if !actions.contains(&a) {
                actions.push(a);
            }
        }
        if actions.is_empty() {
            return Err(VaultError::invalid(
                "invalid_grant",
                "actions must name at least one of read, write, audit",
                Some("actions"),
            ));
        }
        let max = if new.break_glass {
            MAX_BREAK_GLASS
        } else {
            MAX_DURATION
        };
        let duration = Period::parse(new.duration.trim())
            .map(|p| p.as_duration())
            .ok()
            .filter(|d| d.is_positive() && *d <= max)
            .ok_or_else(|| {
                VaultError::invalid(
                    "invalid_duration",
                    format!(
                        "duration is a period such as \"4h\", at most {} h{}",
                        max.whole_hours(),
                        if new.break_glass {
                            " for break-glass"
                        } else {
                            ""
                        }
                    ),
                    Some("duration"),
                )
            })?;
        let id = Uuid::now_v7();
        let now = self.now();
        let tk = self.inner.keys.tenant(&trow)?;
        let actions_text: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
        let row = SupportGrantRow {
            id,
            tenant,
            requester: ctx.principal.key_id,
            ticket: crate::sealed_text::seal(&tk, tenant, id, "ticket", ticket.as_str())?,
            justification: crate::sealed_text::seal(
                &tk,
                tenant,
                id,
                "justification",
                justification.as_str(),
            )?,
            collections: serde_json::to_string(&new.collections).unwrap_or_default(),
            actions: serde_json::to_string(&actions_text).unwrap_or_default(),
            break_glass: new.break_glass,
            status: if new.break_glass {
                "approved"
            } else {
                "requested"
            }
            .into(),
            duration_secs: duration.whole_seconds(),
            requested_at: now,
            decided_at: new.break_glass.then_some(now),
            decided_by: new.break_glass.then(|| "break-glass".to_owned()),
            expires_at: new.break_glass.then(|| now.saturating_add(duration)),
        };
        event.detail = Some(serde_json::json!({
            "grant": id,
            "break_glass": new.break_glass,
            "collections": new.collections,
            "actions": actions_text,
            "duration_secs": row.duration_secs,
            "notify": new.break_glass.then_some("tenant"),
        }));
        let committed = self
            .commit(vec![
                Op::People(PeopleOp::InsertGrant(row.clone())),
                Op::Audit(Box::new(event)),
            ])
            .await?;
        if new.break_glass {
            self.forget_all_sessions();
            // No subscriber is not an error: the audit event is the durable notice.
            let _ = self.inner.break_glass.send(BreakGlassNotice {
                grant: id,
                tenant,
                requester: row.requester,
                expires_at: row.expires_at.unwrap_or(now),
                audit_index: committed.audit_indices.first().copied(),
            });
        }
        self.grant_out(&row, &tk, 0)
    }

    /// An owner or admin approves, denies or revokes a grant of the tenant.
    pub async fn decide_grant(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        grant: Uuid,
        decision: GrantDecision,
    ) -> Result<GrantOut> {
        let mut event = self.event(ctx, Action::GrantDecide, Some(tenant));
        event.detail = Some(
            serde_json::json!({ "grant": grant, "decision": format!("{decision:?}").to_lowercase() }),
        );
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::DecideGrant),
            &event,
        )
        .await?;
        let mut row = self
            .inner
            .store
            .support_grant(tenant, grant)
            .await?
            .ok_or(VaultError::NotFound("support grant"))?;
        let now = self.now();
        let (from, to, expires_at) = match decision {
            GrantDecision::Approve => (
                "requested",
                "approved",
                Some(now.saturating_add(time::Duration::seconds(row.duration_secs))),
            ),
            GrantDecision::Deny => ("requested", "denied", None),
            GrantDecision::Revoke => ("approved", "revoked", Some(now)),
        };
        if row.status != from {
            return Err(VaultError::StateConflict {
                code: "grant_state",
                reason: format!("the grant is {}, not {from}", row.status),
            });
        }
        let by = ctx.principal.actor().id;
        self.commit(vec![
            Op::People(PeopleOp::DecideGrant {
                tenant,
                id: grant,
                from: from.into(),
                to: to.into(),
                by: by.clone(),
                at: now,
                expires_at,
            }),
            Op::Audit(Box::new(event)),
        ])
        .await?;
        self.forget_all_sessions();
        row.status = to.into();
        row.decided_at = Some(now);
        row.decided_by = Some(by);
        row.expires_at = expires_at.or(row.expires_at);
        let tk = self.inner.keys.tenant(&trow)?;
        let uses = self.grant_uses(&row).await?;
        self.grant_out(&row, &tk, uses)
    }

    /// The tenant's support grants with their use counts (owners, admins, auditors).
    pub async fn list_grants(&self, ctx: &RequestContext, tenant: Uuid) -> Result<Vec<GrantOut>> {
        let event = self.event(ctx, Action::GrantList, Some(tenant));
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::ListGrants),
            &event,
        )
        .await?;
        let rows = self.inner.store.support_grants(tenant).await?;
        let tk = self.inner.keys.tenant(&trow)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let uses = self.grant_uses(row).await?;
            out.push(self.grant_out(row, &tk, uses)?);
        }
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(out)
    }

    /// The live grants of a support user, as its principal carries them.
    pub(crate) async fn grant_scopes(&self, user: Uuid) -> Result<Vec<GrantScope>> {
        let now = self.now();
        Ok(self
            .inner
            .store
            .open_grants_of(user)
            .await?
            .into_iter()
            .filter_map(|g| {
                let expires_at = g.expires_at.filter(|e| *e > now)?;
                Some(GrantScope {
                    id: g.id,
                    tenant: g.tenant,
                    collections: parse_list(&g.collections),
                    actions: parse_list(&g.actions)
                        .iter()
                        .filter_map(|a| GrantAction::parse(a))
                        .collect(),
                    expires_at,
                })
            })
            .collect())
    }

    /// How many audited actions name the grant in its tenant's log.
    async fn grant_uses(&self, row: &SupportGrantRow) -> Result<u64> {
        let actor = format!("user:{}/grant:{}", row.requester, row.id);
        let mut after = None;
        let mut n = 0u64;
        loop {
            let page = self
                .inner
                .store
                .audit_query(&AuditQuery {
                    tenant: row.tenant,
                    since: None,
                    until: None,
                    actor: Some(actor.clone()),
                    subject: None,
                    action: None,
                    outcome: None,
                    after,
                    limit: 1_000,
                })
                .await?;
            n += page.len() as u64;
            match page.last() {
                Some(last) if page.len() == 1_000 => after = Some(last.idx),
                _ => return Ok(n),
            }
        }
    }

    fn grant_out(
        &self,
        row: &SupportGrantRow,
        tk: &crate::keys::TenantKeys,
        use_count: u64,
    ) -> Result<GrantOut> {
        let now = self.now();
        Ok(GrantOut {
            id: row.id,
            tenant: row.tenant,
            requester: row.requester,
            ticket: crate::sealed_text::open(tk, row.tenant, row.id, "ticket", &row.ticket)?,
            justification: crate::sealed_text::open(
                tk,
                row.tenant,
                row.id,
                "justification",
                &row.justification,
            )?,
            collections: parse_list(&row.collections),
            actions: parse_list(&row.actions)
                .iter()
                .filter_map(|a| GrantAction::parse(a))
                .collect(),
            break_glass: row.break_glass,
            live: row.status == "approved" && row.expires_at.is_some_and(|e| e > now),
            status: row.status.clone(),
            duration_secs: row.duration_secs,
            requested_at: row.requested_at,
            decided_at: row.decided_at,
            decided_by: row.decided_by.clone(),
            expires_at: row.expires_at,
            use_count,
        })
    }
}

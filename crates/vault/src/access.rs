//! The one place that decides every access (ARCHITECTURE.md, "Access decisions").
//!
//! `decide` is a pure function of the facts of a request, so every rule is unit-testable and
//! every caller gets the same answer. Callers turn a [`Denial`] into an audit event and an
//! error; nothing else in the vault may allow or refuse an access on its own.

use time::OffsetDateTime;
use uuid::Uuid;
use ward_policy::{Collection, Purpose};
use ward_store::TenantStatus;

use crate::permissions::{self, Action, Resource, Scope};
use crate::{GrantAction, Principal, Role, VaultError};

/// What is being attempted, coarsely: the rules differ by kind, not by endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Read tenant metadata.
    ReadTenant,
    /// Create, list or revoke API keys.
    ManageKeys,
    /// Create subjects, create/update/delete records.
    WriteData,
    /// Read records (needs a purpose).
    ReadData,
    /// Rectify a record: a write that states a purpose like a read, because the record it
    /// changes is personal data processed for that purpose.
    UpdateData,
    /// Data-subject rights and tenant lifecycle: export, erase, restrict, requests.
    ManageRights,
    /// Export the whole tenant (and each subject in it): portability for a customer that
    /// leaves, so it stays open while the tenant is cancelled, until it is destroyed.
    ExportTenant,
    /// Read the tenant's audit log.
    ReadAudit,
    /// Issue a tenant API key of `role`. Operators never do: a tenant's first owner claims
    /// an invitation, and the tenant's own keys issue the rest.
    IssueKey {
        /// The role of the key to issue.
        role: Role,
    },
    /// Revoke a tenant API key of `role`.
    RevokeKey {
        /// The role of the key to revoke.
        role: Role,
        /// Whether it is the tenant's last live owner key (which nobody may revoke).
        last_owner: bool,
    },
    /// Issue an invitation to become the tenant's first owner (operators only).
    IssueInvitation {
        /// Whether the tenant already has a live owner key (then no invitation is issued).
        has_owner: bool,
    },
    /// Sign an audit checkpoint on demand (operators and auditors).
    SignCheckpoint,
    /// Cancel or reactivate the tenant.
    ChangeLifecycle,
    /// Ask the tenant for a support grant (support staff).
    RequestGrant,
    /// Approve, deny or revoke a support grant of the tenant.
    DecideGrant,
    /// List the tenant's support grants.
    ListGrants,
    /// Invite a person to join the tenant as a user of `role`.
    InviteUser {
        /// The role of the membership the invitation gives.
        role: Role,
    },
    /// List the tenant's users and their memberships.
    ListUsers,
    /// Change a user's role in the tenant from `from` to `to`.
    ChangeMembership {
        /// The user's present role.
        from: Role,
        /// The role asked for.
        to: Role,
        /// Whether the change would leave the tenant without an owner.
        last_owner: bool,
    },
    /// Remove a user of `role` from the tenant.
    RemoveMembership {
        /// The user's role.
        role: Role,
        /// Whether the removal would leave the tenant without an owner.
        last_owner: bool,
    },
    /// Issue a password reset token for a user of `role` in the tenant.
    IssuePasswordReset {
        /// The user's role.
        role: Role,
    },
    /// List the tenant's alerts.
    ReadAlerts,
    /// Acknowledge or resolve one of the tenant's alerts.
    DecideAlerts,
    /// Create, list, delete or test the tenant's alert webhooks, read their delivery log.
    ManageWebhooks,
    /// List or read the incidents that affect the tenant, and their draft notifications.
    ReadIncidents,
    /// Open an incident of the tenant, add to its timeline, mark the tenant notified, close it.
    ManageIncidents {
        /// Whether the change is a note or a closing of an incident the operator opened: the
        /// tenant only marks itself notified of those; their timeline is the operator's.
        operator_incident: bool,
    },
    /// Change the tenant's settings (whether its users need TOTP).
    UpdateSettings {
        /// Whether the change turns the TOTP requirement on while the caller is a user
        /// without TOTP (who would lock itself out).
        enables_totp_without_own: bool,
    },
}

impl Operation {
    /// The permission the operation needs, as the table in [`crate::permissions`] names it.
    pub fn permission(self) -> (Action, Resource) {
        match self {
            Self::ReadTenant => (Action::Read, Resource::Tenant),
            Self::ManageKeys => (Action::Manage, Resource::Keys),
            Self::WriteData => (Action::Create, Resource::Records),
            Self::ReadData => (Action::Read, Resource::Records),
            Self::UpdateData => (Action::Update, Resource::Records),
            Self::ManageRights | Self::ExportTenant => (Action::Manage, Resource::Rights),
            Self::ReadAudit => (Action::Read, Resource::Audit),
            Self::IssueKey { .. } => (Action::Issue, Resource::Keys),
            Self::RevokeKey { .. } => (Action::Revoke, Resource::Keys),
            Self::IssueInvitation { .. } => (Action::Issue, Resource::Invitations),
            Self::SignCheckpoint => (Action::Sign, Resource::Checkpoints),
            Self::ChangeLifecycle => (Action::Update, Resource::Lifecycle),
            Self::RequestGrant => (Action::Request, Resource::SupportGrants),
            Self::DecideGrant => (Action::Decide, Resource::SupportGrants),
            Self::ListGrants => (Action::Read, Resource::SupportGrants),
            Self::InviteUser { .. } => (Action::Issue, Resource::Users),
            Self::ListUsers => (Action::Read, Resource::Users),
            Self::ChangeMembership { .. } => (Action::Update, Resource::Users),
            Self::RemoveMembership { .. } => (Action::Revoke, Resource::Users),
            Self::IssuePasswordReset { .. } => (Action::Update, Resource::Users),
            Self::ReadAlerts => (Action::Read, Resource::Alerts),
            Self::DecideAlerts => (Action::Decide, Resource::Alerts),
            Self::UpdateSettings { .. } => (Action::Update, Resource::Settings),
            Self::ManageWebhooks => (Action::Manage, Resource::Webhooks),
            Self::ReadIncidents => (Action::Read, Resource::Incidents),
            Self::ManageIncidents { .. } => (Action::Manage, Resource::Incidents),
        }
    }

    /// Whether the operation stays open on a tenant that is `status` (not active): what a
    /// leaving customer needs — its metadata and lifecycle, its audit log and alerts — and,
    /// until the tenant is destroyed, taking its data with it.
    fn open_on(self, status: TenantStatus) -> bool {
        match self {
            Self::ReadTenant
            | Self::ChangeLifecycle
            | Self::ReadAudit
            | Self::ReadAlerts
            | Self::DecideAlerts
            // A breach of a tenant that is leaving is still notified in 72 hours.
            | Self::ReadIncidents
            | Self::ManageIncidents { .. } => true,
            Self::ExportTenant => status == TenantStatus::Deactivated,
            _ => false,
        }
    }

    /// The support-grant action that covers this operation, if any does.
    fn grant_action(self) -> Option<GrantAction> {
        match self {
            Self::ReadTenant | Self::ReadData => Some(GrantAction::Read),
            Self::WriteData | Self::UpdateData => Some(GrantAction::Write),
            Self::ReadAudit => Some(GrantAction::Audit),
            _ => None,
        }
    }
}

/// What is attempted on the platform itself, outside any tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformOperation {
    /// Create a tenant.
    CreateTenant,
    /// Rotate tenant keys, start record rotations, read key status.
    RotateKeys,
    /// Run retention across tenants.
    RunRetention,
    /// List every alert.
    ReadAlerts,
    /// Acknowledge or resolve any alert.
    DecideAlerts,
    /// Create, list, delete or test the operator's alert webhooks.
    ManageWebhooks,
    /// Examine the deployment (`GET /v1/doctor`).
    ExamineDeployment,
    /// List or read the operator's incidents and their draft notifications.
    ReadIncidents,
    /// Open an operator incident, add to its timeline, mark tenants notified, close it.
    ManageIncidents,
}

impl PlatformOperation {
    fn permission(self) -> (Action, Resource) {
        match self {
            Self::CreateTenant => (Action::Create, Resource::Tenants),
            Self::RotateKeys => (Action::Run, Resource::KeyRotation),
            Self::RunRetention => (Action::Run, Resource::Retention),
            Self::ReadAlerts => (Action::Read, Resource::PlatformAlerts),
            Self::DecideAlerts => (Action::Decide, Resource::PlatformAlerts),
            Self::ManageWebhooks => (Action::Manage, Resource::PlatformWebhooks),
            Self::ExamineDeployment => (Action::Read, Resource::Deployment),
            Self::ReadIncidents => (Action::Read, Resource::PlatformIncidents),
            Self::ManageIncidents => (Action::Manage, Resource::PlatformIncidents),
        }
    }
}

/// Allows or refuses a platform operation: the permission table decides, outright only.
pub fn decide_platform(p: &Principal, op: PlatformOperation) -> Result<(), Denial> {
    let (action, resource) = op.permission();
    match permissions::lookup(p.role, action, resource) {
        Some(Scope::Always) => Ok(()),
        _ => Err(forbidden(
            "role_not_permitted",
            format!("role {} may not {action} {resource}", p.role),
        )),
    }
}

/// Whether a request of `p` may learn anything about `tenant` before the decision: a tenant
/// role only of its own tenant (a user: of a tenant it has a membership of, live or ended,
/// the decision then telling an ended one "not found"); platform staff of any (the decision then hides what they
/// may not see).
pub fn reaches(p: &Principal, tenant: Uuid) -> bool {
    p.role.is_platform() || p.tenant == Some(tenant) || p.membership(tenant).is_some()
}

/// Whether `p` may see a destroyed tenant's remains (its row): platform staff only.
pub fn sees_destroyed(p: &Principal) -> bool {
    p.role.is_platform()
}

/// The facts of one access.
#[derive(Debug, Clone)]
pub struct Access<'a> {
    /// The caller.
    pub principal: &'a Principal,
    /// Tenant addressed by the request.
    pub tenant: Uuid,
    /// Status of that tenant (`active`, `deactivated`, `destroyed`).
    pub tenant_status: TenantStatus,
    /// What is attempted.
    pub operation: Operation,
    /// The collection touched, when known.
    pub collection: Option<&'a Collection>,
    /// The stated purpose, when any.
    pub purpose: Option<&'a Purpose>,
    /// The subject's restricted purposes (objections), when a subject is involved.
    pub restrictions: &'a [String],
    /// The record's expiry, when a record is involved.
    pub expires_at: Option<OffsetDateTime>,
    /// The time of the decision.
    pub now: OffsetDateTime,
    /// Whether the tenant requires its users to sign in with TOTP (its `require_totp`
    /// setting). Callers may leave it `false` when the principal could not be refused for it
    /// ([`needs_totp_fact`]), which spares the hot path a read.
    pub tenant_requires_totp: bool,
}

/// Whether the tenant's `require_totp` setting can change the decision for `p`: only for a
/// session opened without a second factor. API keys are applications, not people, and are
/// not affected; a session of a user with TOTP has it.
pub fn needs_totp_fact(p: &Principal) -> bool {
    p.session.is_some() && !p.second_factor
}

/// Why an access is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// Reported as "not found": the caller must not learn that the thing exists.
    Hidden {
        /// What to call the missing thing.
        what: &'static str,
        /// The real reason, for the audit log only.
        reason: String,
    },
    /// Reported as 403 with the reason.
    Forbidden {
        /// Stable code.
        code: &'static str,
        /// Names the purpose, role or rule.
        reason: String,
    },
    /// Reported as 409: allowed for this role, but not in the tenant's present state.
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Names the state that refuses it.
        reason: String,
    },
}

impl Denial {
    /// A stable code for the kind of denial, bounded (a metric label): the code of a 403 or
    /// 409, `hidden` for what is answered as not found.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Hidden { .. } => "hidden",
            Self::Forbidden { code, .. } | Self::Conflict { code, .. } => code,
        }
    }

    /// The reason as written to the audit log.
    pub fn reason(&self) -> &str {
        match self {
            Self::Hidden { reason, .. }
            | Self::Forbidden { reason, .. }
            | Self::Conflict { reason, .. } => reason,
        }
    }

    /// The error returned to the caller.
    pub fn into_error(self) -> VaultError {
        match self {
            Self::Hidden { what, .. } => VaultError::NotFound(what),
            Self::Forbidden { code, reason } => VaultError::Forbidden { code, reason },
            Self::Conflict { code, reason } => VaultError::StateConflict { code, reason },
        }
    }
}

/// Proof that [`decide`] allowed field values of one collection (or, for a data-subject
/// export, of every collection) to leave the vault at one moment.
///
/// Only [`grant_disclosure`] makes one, and the only function that turns a sealed record into
/// field values for a caller (`disclosure::disclose`) takes one. So a new path that returns
/// values cannot skip the decision: without a grant it has nothing to pass.
#[derive(Debug, Clone)]
#[must_use]
pub struct DisclosureGrant {
    /// The collection decided on; `None` when the decision covered the whole subject.
    collection: Option<String>,
    /// The decision's time: records expired by then are refused at disclosure too.
    now: OffsetDateTime,
}

impl DisclosureGrant {
    /// Whether this grant was decided for records of `collection`.
    pub fn covers_collection(&self, collection: &str) -> bool {
        self.collection.as_deref().is_none_or(|c| c == collection)
    }

    /// Whether a record expiring at `expires_at` was still alive at the decision.
    pub fn covers_expiry(&self, expires_at: Option<OffsetDateTime>) -> bool {
        expires_at.is_none_or(|e| e > self.now)
    }
}

/// Decides a disclosure of field values: a read for a purpose ([`Operation::ReadData`]) or a
/// data-subject export ([`Operation::ManageRights`], [`Operation::ExportTenant`]). Any other operation is refused, so a
/// write's permission can never be spent on reading.
pub fn grant_disclosure(a: &Access<'_>) -> Result<DisclosureGrant, Denial> {
    if !matches!(
        a.operation,
        Operation::ReadData | Operation::ManageRights | Operation::ExportTenant
    ) {
        return Err(forbidden(
            "role_not_permitted",
            format!("{} does not disclose field values", describe(a.operation)),
        ));
    }
    decide(a)?;
    if a.operation == Operation::ReadData && a.collection.is_none() {
        // A purpose read is decided per collection; without one there is nothing to bind.
        return Err(forbidden(
            "purpose_not_allowed",
            "a read is decided for one collection",
        ));
    }
    Ok(DisclosureGrant {
        collection: a.collection.map(|c| c.name.as_str().to_owned()),
        now: a.now,
    })
}

/// Marker in a subject's restrictions meaning "every purpose that is not essential".
pub const ALL_NON_ESSENTIAL: &str = "all_non_essential";

/// Allows or refuses one access. Rules are checked from the most to the least fundamental, so
/// the reason given is the one that matters.
// Long on purpose: the rules are one ordered sequence, most fundamental first, and the order
// decides which reason a refusal gives; split into functions, the order would be scattered.
pub fn decide(a: &Access<'_>) -> Result<(), Denial> {
    // A user acts in the tenant with its membership's role, while the membership lasts.
    let scoped = a.principal.in_tenant(a.tenant, a.now);
    let p: &Principal = &scoped;
    let (action, resource) = a.operation.permission();
    let held = permissions::lookup(p.role, action, resource);
    // Personal data, its rights and its audit trail: a platform role that may not touch them
    // is told they do not exist, like a stranger.
    let data = matches!(
        resource,
        Resource::Records | Resource::Rights | Resource::Audit | Resource::Tenant | Resource::Users
    );
    match p.role {
        // 1. Tenant isolation: a tenant key never learns about another tenant.
        r if !r.is_platform() && p.tenant != Some(a.tenant) => {
            let reason = if p.membership(a.tenant).is_some() {
                "membership expired"
            } else if p.session.is_some() {
                "user is not a member of the tenant"
            } else {
                "key belongs to another tenant"
            };
            return Err(Denial::Hidden {
                what: "tenant",
                reason: reason.into(),
            });
        }
        // 2. Operators run the platform; personal data is not theirs to see, and neither is a
        //    key that would show it to them: they invite a tenant's first owner instead.
        Role::Operator if held.is_none() => {
            if data {
                return Err(Denial::Hidden {
                    what: "tenant",
                    reason: "operators do not access personal data or audit logs".into(),
                });
            }
            if matches!(a.operation, Operation::IssueKey { .. }) {
                return Err(forbidden(
                    "role_not_permitted",
                    "operators do not issue tenant keys: a tenant's first owner claims an \
                     invitation, and the tenant's own keys issue the rest",
                ));
            }
        }
        // 2b. Support staff reach tenant data only under a live grant of the tenant that
        //     covers the action and the collection; anything else does not exist for them.
        Role::Support => match held {
            Some(Scope::UnderGrant) => {
                let covered = p.live_grant(a.tenant, a.now).filter(|g| {
                    a.operation
                        .grant_action()
                        .is_some_and(|act| g.actions.contains(&act))
                        && a.collection
                            .is_none_or(|c| g.collections.iter().any(|n| n == c.name.as_str()))
                });
                if covered.is_none() {
                    return Err(Denial::Hidden {
                        what: "tenant",
                        reason: "no live support grant covers this access".into(),
                    });
                }
            }
            None if data => {
                return Err(Denial::Hidden {
                    what: "tenant",
                    reason: "support staff reach tenant data only under a support grant".into(),
                });
            }
            _ => {}
        },
        _ => {}
    }
    // 2c. A tenant that requires two-step verification refuses a session opened without it,
    //     whatever the role: a stolen password alone reaches nothing of the tenant. API keys
    //     are applications, not people, and are not affected.
    if a.tenant_requires_totp && needs_totp_fact(p) {
        return Err(forbidden(
            "totp_required",
            "this tenant requires two-step verification: enrol TOTP with POST /v1/auth/totp \
             and POST /v1/auth/totp/confirm, then use the session the confirmation returns \
             (or log in again with a code)",
        ));
    }
    // 3. A cancelled tenant is frozen: no data access until reactivated, except what its
    //    leaving owner needs (`Operation::open_on`).
    if a.tenant_status != TenantStatus::Active && !a.operation.open_on(a.tenant_status) {
        if a.tenant_status == TenantStatus::Destroyed {
            return Err(Denial::Hidden {
                what: "tenant",
                reason: "tenant destroyed".into(),
            });
        }
        return Err(forbidden(
            "tenant_inactive",
            format!("tenant is {}; data access is suspended", a.tenant_status),
        ));
    }
    // 4. The permission table permits the kind of operation.
    if held.is_none() {
        return Err(forbidden(
            "role_not_permitted",
            format!("role {} may not {}", p.role, describe(a.operation)),
        ));
    }
    // 4b. Role order: a key manages only keys of its own rank or below (operators, outside
    //     the order, only revoke). Then the tenant's state: it always keeps an owner, and an
    //     invitation is only for a tenant without one.
    match a.operation {
        Operation::IssueKey { role } | Operation::RevokeKey { role, .. }
            if p.role != Role::Operator && !p.role.may_manage(role) =>
        {
            return Err(forbidden(
                "role_not_permitted",
                format!(
                    "role {} may not {} of role {role}: a key manages only keys of its role \
                     or below (owner > admin > member, auditor)",
                    p.role,
                    describe(a.operation)
                ),
            ));
        }
        Operation::InviteUser { role }
        | Operation::RemoveMembership { role, .. }
        | Operation::IssuePasswordReset { role }
            if !p.role.may_grant(role) =>
        {
            return Err(forbidden(
                "role_not_permitted",
                format!(
                    "role {} may not {} of role {role}: owners give any role, others only \
                     roles below their own (owner > admin > member, auditor)",
                    p.role,
                    describe(a.operation)
                ),
            ));
        }
        Operation::ChangeMembership { from, to, .. }
            if !p.role.may_grant(from) || !p.role.may_grant(to) =>
        {
            return Err(forbidden(
                "role_not_permitted",
                format!(
                    "role {} may not change a role from {from} to {to}: owners give any role, \
                     others only roles below their own (owner > admin > member, auditor)",
                    p.role
                ),
            ));
        }
        Operation::ChangeMembership {
            last_owner: true, ..
        }
        | Operation::RemoveMembership {
            last_owner: true, ..
        } => {
            return Err(Denial::Conflict {
                code: "last_owner",
                reason: "this user is the tenant's last owner; make another owner first".into(),
            });
        }
        Operation::RevokeKey {
            last_owner: true, ..
        } => {
            return Err(Denial::Conflict {
                code: "last_owner",
                reason: "this is the tenant's last owner key; issue another owner key first".into(),
            });
        }
        Operation::UpdateSettings {
            enables_totp_without_own: true,
        } => {
            return Err(Denial::Conflict {
                code: "totp_not_enrolled",
                reason: "you have no TOTP yourself: enrol it first (POST /v1/auth/totp and \
                         POST /v1/auth/totp/confirm), so that requiring it does not lock you out"
                    .into(),
            });
        }
        Operation::ManageIncidents {
            operator_incident: true,
        } => {
            return Err(forbidden(
                "operator_incident",
                "the operator opened this incident: a tenant marks itself notified of it; its \
                 timeline and closing are the operator's",
            ));
        }
        Operation::IssueInvitation { has_owner: true } => {
            return Err(Denial::Conflict {
                code: "owner_exists",
                reason: "the tenant has an owner; its owners issue keys, so no invitation is \
                         needed"
                    .into(),
            });
        }
        _ => {}
    }
    // 5. Purpose binding.
    if matches!(a.operation, Operation::ReadData | Operation::UpdateData) {
        let Some(purpose) = a.purpose else {
            return Err(forbidden(
                "purpose_required",
                format!("{} requires a stated purpose", describe(a.operation)),
            ));
        };
        if let Some(c) = a.collection
            && !c.allows_purpose(purpose)
        {
            return Err(forbidden(
                "purpose_not_allowed",
                format!(
                    "purpose {purpose} is not allowed for collection {} (allowed: {})",
                    c.name,
                    join(c.purposes.iter())
                ),
            ));
        }
        if p.role == Role::Member && !p.purposes.contains(purpose) {
            return Err(forbidden(
                "purpose_not_allowed",
                format!(
                    "this key may not process data for purpose {purpose} (key purposes: {})",
                    join(p.purposes.iter())
                ),
            ));
        }
        if is_restricted(a.restrictions, purpose) {
            return Err(forbidden(
                "processing_restricted",
                format!("the data subject restricted processing for purpose {purpose}"),
            ));
        }
    }
    if a.operation == Operation::WriteData
        && p.role == Role::Member
        && let Some(c) = a.collection
        && !p.purposes.iter().any(|kp| c.allows_purpose(kp))
    {
        return Err(forbidden(
            "purpose_not_allowed",
            format!(
                "this key's purposes ({}) do not cover collection {}",
                join(p.purposes.iter()),
                c.name
            ),
        ));
    }
    // 6. Expired records are gone for every reader, swept or not.
    if let Some(expires) = a.expires_at
        && expires <= a.now
    {
        return Err(Denial::Hidden {
            what: "record",
            reason: "record expired".into(),
        });
    }
    Ok(())
}

/// Whether a subject's restrictions cover `purpose`. Essential purposes (service delivery and
/// legal obligations) survive an `all_non_essential` objection; an explicit restriction of a
/// named purpose always applies.
pub fn is_restricted(restrictions: &[String], purpose: &Purpose) -> bool {
    restrictions.iter().any(|r| {
        r == purpose.as_str()
            || (r == ALL_NON_ESSENTIAL && !purpose.is_essential())
            || purpose
                .as_str()
                .strip_prefix(r.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
            // Reading for a broader purpose would include the restricted narrower one.
            || r.strip_prefix(purpose.as_str()).is_some_and(|rest| rest.starts_with('.'))
    })
}

fn forbidden(code: &'static str, reason: impl Into<String>) -> Denial {
    Denial::Forbidden {
        code,
        reason: reason.into(),
    }
}

fn describe(op: Operation) -> &'static str {
    match op {
        Operation::ReadTenant => "read the tenant",
        Operation::ManageKeys => "manage API keys",
        Operation::WriteData => "write personal data",
        Operation::ReadData => "read personal data",
        Operation::UpdateData => "rectify personal data",
        Operation::ManageRights => "handle data-subject rights or the tenant lifecycle",
        Operation::ExportTenant => "export the tenant",
        Operation::ReadAudit => "read the audit log",
        Operation::IssueKey { .. } => "issue API keys",
        Operation::RevokeKey { .. } => "revoke API keys",
        Operation::IssueInvitation { .. } => "issue owner invitations",
        Operation::SignCheckpoint => "sign audit checkpoints",
        Operation::ChangeLifecycle => "cancel or reactivate the tenant",
        Operation::RequestGrant => "request support grants",
        Operation::DecideGrant => "approve, deny or revoke support grants",
        Operation::ListGrants => "list support grants",
        Operation::InviteUser { .. } => "invite users",
        Operation::ListUsers => "list the tenant's users",
        Operation::ChangeMembership { .. } => "change users' roles",
        Operation::RemoveMembership { .. } => "remove users",
        Operation::IssuePasswordReset { .. } => "issue password resets",
        Operation::ReadAlerts => "list alerts",
        Operation::DecideAlerts => "acknowledge or resolve alerts",
        Operation::UpdateSettings { .. } => "change the tenant's settings",
        Operation::ManageWebhooks => "manage webhooks",
        Operation::ReadIncidents => "read incidents",
        Operation::ManageIncidents { .. } => "manage incidents",
    }
}

fn join<'a>(items: impl Iterator<Item = &'a Purpose>) -> String {
    let v: Vec<&str> = items.map(Purpose::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests;

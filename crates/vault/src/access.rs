//! The one place that decides every access (DESIGN.md "Access decisions").
//!
//! `decide` is a pure function of the facts of a request, so every rule is unit-testable and
//! every caller gets the same answer. Callers turn a [`Denial`] into an audit event and an
//! error; nothing else in the vault may allow or refuse an access on its own.

use time::OffsetDateTime;
use uuid::Uuid;
use ward_policy::{Collection, Purpose};

use crate::{Principal, Role, VaultError};

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
    /// Data-subject rights and tenant lifecycle: export, erase, restrict, requests.
    ManageRights,
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
}

/// The facts of one access.
#[derive(Debug, Clone)]
pub struct Access<'a> {
    /// The caller.
    pub principal: &'a Principal,
    /// Tenant addressed by the request.
    pub tenant: Uuid,
    /// Status of that tenant (`active`, `deactivated`, `destroyed`).
    pub tenant_status: &'a str,
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

/// Marker in a subject's restrictions meaning "every purpose that is not essential".
pub const ALL_NON_ESSENTIAL: &str = "all_non_essential";

/// Allows or refuses one access. Rules are checked from the most to the least fundamental, so
/// the reason given is the one that matters.
pub fn decide(a: &Access<'_>) -> Result<(), Denial> {
    let p = a.principal;
    // 1. Tenant isolation: a tenant key never learns about another tenant.
    if p.role != Role::Operator && p.tenant != Some(a.tenant) {
        return Err(Denial::Hidden {
            what: "tenant",
            reason: "key belongs to another tenant".into(),
        });
    }
    // 2. Operators run the platform; personal data is not theirs to see, and neither is a
    //    key that would show it to them: they invite a tenant's first owner instead.
    if p.role == Role::Operator {
        match a.operation {
            Operation::ReadTenant
            | Operation::ManageKeys
            | Operation::RevokeKey { .. }
            | Operation::IssueInvitation { .. }
            | Operation::SignCheckpoint => {}
            Operation::IssueKey { .. } => {
                return Err(forbidden(
                    "role_not_permitted",
                    "operators do not issue tenant keys: a tenant's first owner claims an \
                     invitation, and the tenant's own keys issue the rest",
                ));
            }
            _ => {
                return Err(forbidden(
                    "role_not_permitted",
                    "operators manage tenants and keys but cannot access personal data or audit logs",
                ));
            }
        }
    }
    // 3. A cancelled tenant is frozen: no data access until reactivated.
    if a.tenant_status != "active" && a.operation != Operation::ReadTenant {
        if a.tenant_status == "destroyed" {
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
    // 4. Role permits the kind of operation.
    let permitted = match a.operation {
        Operation::ReadTenant => true,
        Operation::ManageKeys => matches!(p.role, Role::Operator | Role::Owner | Role::Admin),
        Operation::WriteData | Operation::ReadData => {
            matches!(p.role, Role::Owner | Role::Admin | Role::Member)
        }
        Operation::ManageRights => matches!(p.role, Role::Owner | Role::Admin),
        Operation::ReadAudit => matches!(p.role, Role::Owner | Role::Admin | Role::Auditor),
        Operation::IssueKey { .. } => matches!(p.role, Role::Owner | Role::Admin),
        Operation::RevokeKey { .. } => matches!(p.role, Role::Operator | Role::Owner | Role::Admin),
        Operation::IssueInvitation { .. } => p.role == Role::Operator,
        Operation::SignCheckpoint => matches!(p.role, Role::Operator | Role::Auditor),
    };
    if !permitted {
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
        Operation::RevokeKey {
            last_owner: true, ..
        } => {
            return Err(Denial::Conflict {
                code: "last_owner",
                reason: "this is the tenant's last owner key; issue another owner key first".into(),
            });
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
    if a.operation == Operation::ReadData {
        let Some(purpose) = a.purpose else {
            return Err(forbidden("purpose_required", "reads must state a purpose"));
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
                    "this key may not read for purpose {purpose} (key purposes: {})",
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
        Operation::ManageRights => "handle data-subject rights or the tenant lifecycle",
        Operation::ReadAudit => "read the audit log",
        Operation::IssueKey { .. } => "issue API keys",
        Operation::RevokeKey { .. } => "revoke API keys",
        Operation::IssueInvitation { .. } => "issue owner invitations",
        Operation::SignCheckpoint => "sign audit checkpoints",
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
mod tests {
    use super::*;

    fn principal(role: Role, tenant: Uuid) -> Principal {
        Principal {
            key_id: Uuid::nil(),
            tenant: (role != Role::Operator).then_some(tenant),
            role,
            purposes: Default::default(),
        }
    }

    fn decide_as(role: Role, operation: Operation) -> Result<(), Denial> {
        let tenant = Uuid::from_u128(1);
        let p = principal(role, tenant);
        decide(&Access {
            principal: &p,
            tenant,
            tenant_status: "active",
            operation,
            collection: None,
            purpose: None,
            restrictions: &[],
            expires_at: None,
            now: OffsetDateTime::UNIX_EPOCH,
        })
    }

    fn code(r: Result<(), Denial>) -> &'static str {
        match r {
            Ok(()) => "ok",
            Err(Denial::Hidden { .. }) => "hidden",
            Err(Denial::Forbidden { code, .. } | Denial::Conflict { code, .. }) => code,
        }
    }

    const ROLES: [Role; 5] = [
        Role::Operator,
        Role::Owner,
        Role::Admin,
        Role::Member,
        Role::Auditor,
    ];

    #[test]
    fn keys_are_issued_only_by_owners_and_admins_at_or_below_their_rank() {
        for issuer in ROLES {
            for target in [Role::Owner, Role::Admin, Role::Member, Role::Auditor] {
                let allowed =
                    matches!(issuer, Role::Owner | Role::Admin) && issuer.may_manage(target);
                let got = code(decide_as(issuer, Operation::IssueKey { role: target }));
                assert_eq!(got == "ok", allowed, "{issuer} issuing {target}: {got}");
                if !allowed {
                    assert_eq!(got, "role_not_permitted");
                }
            }
        }
    }

    #[test]
    fn revocation_follows_the_order_and_keeps_the_last_owner() {
        let revoke = |role, last_owner| Operation::RevokeKey { role, last_owner };
        assert_eq!(
            code(decide_as(Role::Admin, revoke(Role::Owner, false))),
            "role_not_permitted"
        );
        assert_eq!(
            code(decide_as(Role::Admin, revoke(Role::Admin, false))),
            "ok"
        );
        assert_eq!(
            code(decide_as(Role::Owner, revoke(Role::Owner, false))),
            "ok"
        );
        assert_eq!(
            code(decide_as(Role::Operator, revoke(Role::Owner, false))),
            "ok"
        );
        for role in [Role::Operator, Role::Owner] {
            assert_eq!(
                code(decide_as(role, revoke(Role::Owner, true))),
                "last_owner"
            );
        }
        // The order is checked first: an admin is told it may not, not that it is the last.
        assert_eq!(
            code(decide_as(Role::Admin, revoke(Role::Owner, true))),
            "role_not_permitted"
        );
        for role in [Role::Member, Role::Auditor] {
            assert_eq!(
                code(decide_as(role, revoke(Role::Member, false))),
                "role_not_permitted"
            );
        }
    }

    #[test]
    fn invitations_are_for_operators_and_tenants_without_an_owner() {
        let issue = |has_owner| Operation::IssueInvitation { has_owner };
        assert_eq!(code(decide_as(Role::Operator, issue(false))), "ok");
        assert_eq!(code(decide_as(Role::Operator, issue(true))), "owner_exists");
        for role in [Role::Owner, Role::Admin, Role::Member, Role::Auditor] {
            assert_eq!(code(decide_as(role, issue(false))), "role_not_permitted");
        }
    }

    #[test]
    fn checkpoints_are_signed_by_operators_and_auditors() {
        for role in ROLES {
            let allowed = matches!(role, Role::Operator | Role::Auditor);
            assert_eq!(
                code(decide_as(role, Operation::SignCheckpoint)) == "ok",
                allowed,
                "{role}"
            );
        }
    }
}

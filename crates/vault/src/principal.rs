//! Who is calling: an authenticated API key or logged-in user, the role it carries and, for
//! support staff, the support grants it holds.

use std::collections::BTreeSet;
use std::fmt;

use uuid::Uuid;
use ward_audit::Actor;
use ward_policy::Purpose;

use crate::{Result, VaultError};

/// The roles of ARCHITECTURE.md "Access decisions", held by API keys and by users alike (platform
/// staff are users only: `support` has no API key). What each may do is the permission table
/// in [`crate::permissions`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Platform operator: manages tenants and keys, never sees personal data.
    Operator,
    /// Tenant owner: everything in the tenant.
    Owner,
    /// Tenant admin: everything but issuing owner keys.
    Admin,
    /// Application or staff key: reads and writes for its named purposes only.
    Member,
    /// Reads the tenant's audit log and nothing else.
    Auditor,
    /// Platform support staff: no access of its own, tenant data only under a support grant
    /// the tenant approved (or a break-glass grant the tenant is notified of).
    Support,
}

impl Role {
    /// Parses the API spelling.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "operator" => Ok(Self::Operator),
            "owner" => Ok(Self::Owner),
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            "auditor" => Ok(Self::Auditor),
            "support" => Ok(Self::Support),
            _ => Err(VaultError::invalid(
                "invalid_role",
                format!("unknown role {s:?}; expected owner, admin, member or auditor"),
                Some("role"),
            )),
        }
    }

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Auditor => "auditor",
            Self::Support => "support",
        }
    }
}

impl Role {
    /// Rank in the order of tenant roles: owner > admin > member = auditor. A key may issue
    /// or revoke only keys ranked at or below its own, so no key can hand out (or take away)
    /// more power than it holds. Members and auditors rank alike: each is limited in a
    /// different way, neither above the other. Operators hold no tenant role and have no rank.
    pub fn rank(self) -> Option<u8> {
        match self {
            Self::Operator | Self::Support => None,
            Self::Owner => Some(3),
            Self::Admin => Some(2),
            Self::Member | Self::Auditor => Some(1),
        }
    }

    /// Whether a user of this role may give a person role `target` (invite, change a role to
    /// or from it, remove a membership of it): owners any tenant role, everyone else only
    /// roles ranked strictly below their own, so an admin cannot make (or unmake) an admin.
    pub fn may_grant(self, target: Self) -> bool {
        match (self, self.rank(), target.rank()) {
            (Self::Owner, _, Some(_)) => true,
            (_, Some(own), Some(other)) => other < own,
            _ => false,
        }
    }

    /// Whether a key of this role may issue or revoke a key of role `target`: both are tenant
    /// roles and `target` ranks at or below this one.
    pub fn may_manage(self, target: Self) -> bool {
        match (self.rank(), target.rank()) {
            (Some(own), Some(other)) => other <= own,
            _ => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Role {
    /// Whether the role belongs to platform staff rather than to a tenant.
    pub fn is_platform(self) -> bool {
        matches!(self, Self::Operator | Self::Support)
    }

    /// Every role, in the order the permission table prints them.
    pub const ALL: [Self; 6] = [
        Self::Operator,
        Self::Support,
        Self::Owner,
        Self::Admin,
        Self::Member,
        Self::Auditor,
    ];
}

/// What a support grant lets its holder do, one action at a time.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum GrantAction {
    /// Read the tenant and records of the granted collections (for a stated purpose).
    Read,
    /// Create and rectify records of the granted collections.
    Write,
    /// Read the tenant's audit log.
    Audit,
}

impl GrantAction {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Audit => "audit",
        }
    }

    /// Parses the API spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "audit" => Some(Self::Audit),
            _ => None,
        }
    }
}

/// A live support grant as its holder carries it: which tenant, which collections, which
/// actions, until when. Loaded with the session; [`crate::access::decide`] checks the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantScope {
    /// Grant id (every action under the grant is audited with it).
    pub id: Uuid,
    /// The tenant it opens.
    pub tenant: Uuid,
    /// Collections it opens.
    pub collections: Vec<String>,
    /// What it allows.
    pub actions: Vec<GrantAction>,
    /// When it stops working.
    pub expires_at: time::OffsetDateTime,
}

/// A user's membership of a tenant as its session carries it: the role and purposes it acts
/// with there, until when. Loaded with the session; [`crate::access::decide`] checks the time,
/// so an ended membership gives nothing (the tenant is "not found", as without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The tenant.
    pub tenant: Uuid,
    /// The role there.
    pub role: Role,
    /// Purposes a member may state.
    pub purposes: BTreeSet<Purpose>,
    /// When it ends.
    pub expires_at: Option<time::OffsetDateTime>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The credential's holder: the API key's id, or the user's id for a logged-in user.
    pub key_id: Uuid,
    /// The tenant the key belongs to; `None` for operators.
    pub tenant: Option<Uuid>,
    /// The key's role.
    pub role: Role,
    /// Purposes a member key may state (empty for other roles: they are not limited).
    pub purposes: BTreeSet<Purpose>,
    /// The login session, for a user (`None` for an API key).
    pub session: Option<Uuid>,
    /// Whether the session was opened with a second factor: its user has TOTP. Login asks
    /// every user with TOTP for a code, and enrolling ends every other session of the user
    /// and replaces the enrolling one, so every live session of a user with TOTP was opened
    /// with it and the store need not remember how each began. `false` for API keys, which
    /// tenant TOTP requirements do not concern.
    pub second_factor: bool,
    /// The support grants a support user holds (empty for everyone else).
    pub grants: Vec<GrantScope>,
    /// The tenant memberships of a tenant user (empty for keys and platform staff). A user's
    /// own `tenant` is `None`: it acts in a tenant only through a live membership of it
    /// ([`Self::in_tenant`]).
    pub memberships: Vec<Membership>,
}

impl Principal {
    /// An API key's principal.
    pub fn api_key(
        key_id: Uuid,
        tenant: Option<Uuid>,
        role: Role,
        purposes: BTreeSet<Purpose>,
    ) -> Self {
        Self {
            key_id,
            tenant,
            role,
            purposes,
            session: None,
            second_factor: false,
            grants: Vec::new(),
            memberships: Vec::new(),
        }
    }

    /// The principal as it acts in `tenant` at `now`: a user with a live membership of the
    /// tenant takes that tenant, role and purposes; anyone else is unchanged (a user without
    /// one keeps no tenant, so the decision hides the tenant from it).
    pub fn in_tenant(&self, tenant: Uuid, now: time::OffsetDateTime) -> std::borrow::Cow<'_, Self> {
        match self.membership(tenant) {
            Some(m) if m.expires_at.is_none_or(|e| e > now) => std::borrow::Cow::Owned(Self {
                key_id: self.key_id,
                tenant: Some(tenant),
                role: m.role,
                purposes: m.purposes.clone(),
                session: self.session,
                second_factor: self.second_factor,
                grants: Vec::new(),
                memberships: Vec::new(),
            }),
            _ => std::borrow::Cow::Borrowed(self),
        }
    }

    /// The principal's membership of `tenant`, live or ended.
    pub fn membership(&self, tenant: Uuid) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.tenant == tenant)
    }

    /// The grant that opens `tenant` at `now`, if the principal holds one.
    pub fn live_grant(&self, tenant: Uuid, now: time::OffsetDateTime) -> Option<&GrantScope> {
        self.grants
            .iter()
            .find(|g| g.tenant == tenant && g.expires_at > now)
    }

    /// How the principal appears in the audit events of `tenant` at `now`: a support user
    /// acting under a grant is named with the grant, so the tenant's log shows every action
    /// taken under it.
    pub fn actor_in(&self, tenant: Option<Uuid>, now: time::OffsetDateTime) -> Actor {
        let mut actor = match tenant {
            Some(t) => self.in_tenant(t, now).actor(),
            None => self.actor(),
        };
        if let Some(g) = tenant.and_then(|t| self.live_grant(t, now)) {
            actor.id = format!("{}/grant:{}", actor.id, g.id);
        }
        actor
    }

    /// How the principal appears in audit events.
    pub fn actor(&self) -> Actor {
        let id = match (self.role, self.session) {
            (_, Some(_)) => format!("user:{}", self.key_id),
            (Role::Operator, None) => format!("operator:{}", self.key_id),
            _ => format!("key:{}", self.key_id),
        };
        Actor {
            id,
            role: self.role.as_str().to_owned(),
        }
    }
}

/// Per-request facts that end up in audit events.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The caller.
    pub principal: Principal,
    /// Request id (from `x-request-id` or generated).
    pub request_id: String,
    /// Client address, only ever stored as a keyed hash.
    pub client_ip: Option<std::net::IpAddr>,
}

#[cfg(test)]
mod tests {
    use super::Role;

    const TENANT_ROLES: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Auditor];

    #[test]
    fn owners_manage_every_tenant_role() {
        for r in TENANT_ROLES {
            assert!(Role::Owner.may_manage(r), "owner over {r}");
        }
    }

    #[test]
    fn admins_manage_their_rank_and_below_but_not_owners() {
        assert!(!Role::Admin.may_manage(Role::Owner));
        for r in [Role::Admin, Role::Member, Role::Auditor] {
            assert!(Role::Admin.may_manage(r), "admin over {r}");
        }
    }

    #[test]
    fn members_and_auditors_rank_alike_and_below_admins() {
        for low in [Role::Member, Role::Auditor] {
            assert!(!low.may_manage(Role::Owner));
            assert!(!low.may_manage(Role::Admin));
            assert!(low.may_manage(Role::Member));
            assert!(low.may_manage(Role::Auditor));
        }
    }

    #[test]
    fn owners_grant_every_tenant_role_others_only_below_their_own() {
        for r in TENANT_ROLES {
            assert!(Role::Owner.may_grant(r), "owner grants {r}");
        }
        assert!(!Role::Admin.may_grant(Role::Owner));
        assert!(!Role::Admin.may_grant(Role::Admin));
        assert!(Role::Admin.may_grant(Role::Member));
        assert!(Role::Admin.may_grant(Role::Auditor));
        for low in [Role::Member, Role::Auditor] {
            for r in TENANT_ROLES {
                assert!(!low.may_grant(r), "{low} grants {r}");
            }
        }
        assert!(!Role::Owner.may_grant(Role::Operator));
        assert!(!Role::Operator.may_grant(Role::Member));
    }

    #[test]
    fn operators_are_outside_the_tenant_order() {
        for r in TENANT_ROLES {
            assert!(!Role::Operator.may_manage(r), "operator over {r}");
            assert!(!r.may_manage(Role::Operator), "{r} over operator");
        }
        assert_eq!(Role::Operator.rank(), None);
        assert!(Role::Owner.rank() > Role::Admin.rank());
        assert!(Role::Admin.rank() > Role::Member.rank());
        assert_eq!(Role::Member.rank(), Role::Auditor.rank());
    }
}

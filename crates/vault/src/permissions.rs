//! The one permission table: which role may take which action on which resource.
//!
//! [`crate::access::decide`] reads it for every access and `ward roles` prints it; no other
//! code asks what a role may do. A row's [`Scope`] says whether the role holds the permission
//! outright or only under a live support grant of the tenant (support staff), in which case
//! the grant's own scope (tenant, collections, actions, expiry) narrows it further.

use std::fmt;

use crate::Role;

/// What is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Look at something.
    Read,
    /// Create something.
    Create,
    /// Change something that exists.
    Update,
    /// Issue a credential.
    Issue,
    /// Revoke a credential.
    Revoke,
    /// List or otherwise administer a set of things.
    Manage,
    /// Sign something.
    Sign,
    /// Run a platform job.
    Run,
    /// Ask for something someone else decides.
    Request,
    /// Approve, deny or revoke what was asked for.
    Decide,
}

/// What it is done to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The set of tenants (creating one).
    Tenants,
    /// One tenant's metadata.
    Tenant,
    /// A tenant's lifecycle (cancel, reactivate).
    Lifecycle,
    /// A tenant's API keys.
    Keys,
    /// Owner invitations.
    Invitations,
    /// Subjects and records: personal data.
    Records,
    /// Data-subject rights: export, erasure, restriction, requests, holds, retention.
    Rights,
    /// A tenant's audit log.
    Audit,
    /// Signed audit checkpoints.
    Checkpoints,
    /// Root and tenant key rotation jobs.
    KeyRotation,
    /// Retention runs across tenants.
    Retention,
    /// Support grants of a tenant.
    SupportGrants,
    /// A tenant's users: their memberships (invited, listed, role changed, removed). Issuing
    /// one is inviting a person; role order narrows which roles each may give.
    Users,
    /// A tenant's alerts of the detection rules.
    Alerts,
    /// Every alert of the platform.
    PlatformAlerts,
    /// A tenant's settings that guard its people (whether its users need TOTP): its owners'
    /// alone, so an admin cannot relax what an owner required.
    Settings,
    /// A tenant's alert webhooks (where its alerts are sent, and their delivery log).
    Webhooks,
    /// The operator's alert webhooks (every alert of the platform).
    PlatformWebhooks,
    /// The deployment's health: the doctor's findings about files, keys, storage, audit log,
    /// backups and clock (no tenant data).
    Deployment,
    /// A tenant's personal-data breach incidents (its own, and the operator's that affect it).
    Incidents,
    /// The operator's incidents, which may affect several tenants.
    PlatformIncidents,
}

/// How a role holds a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Always (within the role's own tenant, for tenant roles).
    Always,
    /// Only under a live support grant of the tenant that covers the action.
    UnderGrant,
}

/// One permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    /// Who.
    pub role: Role,
    /// Does what.
    pub action: Action,
    /// To what.
    pub resource: Resource,
    /// Outright or under a grant.
    pub scope: Scope,
}

const fn p(role: Role, action: Action, resource: Resource, scope: Scope) -> Permission {
    Permission {
        role,
        action,
        resource,
        scope,
    }
}

use Action as A;
use Resource as R;
use Role::{Admin, Auditor, Member, Operator, Owner, Support};
use Scope::{Always, UnderGrant};

/// The table. A permission not listed is refused.
pub const TABLE: &[Permission] = &[
    // Platform operator: tenants and keys, never data or audit logs.
    p(Operator, A::Create, R::Tenants, Always),
    p(Operator, A::Read, R::Tenant, Always),
    p(Operator, A::Update, R::Lifecycle, Always),
    p(Operator, A::Manage, R::Keys, Always),
    p(Operator, A::Revoke, R::Keys, Always),
    p(Operator, A::Issue, R::Invitations, Always),
    p(Operator, A::Sign, R::Checkpoints, Always),
    p(Operator, A::Run, R::KeyRotation, Always),
    p(Operator, A::Run, R::Retention, Always),
    p(Operator, A::Read, R::Alerts, Always),
    p(Operator, A::Decide, R::Alerts, Always),
    p(Operator, A::Read, R::PlatformAlerts, Always),
    p(Operator, A::Decide, R::PlatformAlerts, Always),
    p(Operator, A::Manage, R::PlatformWebhooks, Always),
    p(Operator, A::Read, R::Deployment, Always),
    p(Operator, A::Read, R::PlatformIncidents, Always),
    p(Operator, A::Manage, R::PlatformIncidents, Always),
    // Support: asks for grants; reads and writes data only under one.
    p(Support, A::Request, R::SupportGrants, Always),
    p(Support, A::Read, R::Tenant, UnderGrant),
    p(Support, A::Read, R::Records, UnderGrant),
    p(Support, A::Create, R::Records, UnderGrant),
    p(Support, A::Update, R::Records, UnderGrant),
    p(Support, A::Read, R::Audit, UnderGrant),
    // Owner: everything in the tenant.
    p(Owner, A::Read, R::Tenant, Always),
    p(Owner, A::Update, R::Lifecycle, Always),
    p(Owner, A::Manage, R::Keys, Always),
    p(Owner, A::Issue, R::Keys, Always),
    p(Owner, A::Revoke, R::Keys, Always),
    p(Owner, A::Read, R::Records, Always),
    p(Owner, A::Create, R::Records, Always),
    p(Owner, A::Update, R::Records, Always),
    p(Owner, A::Manage, R::Rights, Always),
    p(Owner, A::Read, R::Audit, Always),
    p(Owner, A::Read, R::SupportGrants, Always),
    p(Owner, A::Decide, R::SupportGrants, Always),
    p(Owner, A::Read, R::Users, Always),
    p(Owner, A::Issue, R::Users, Always),
    p(Owner, A::Update, R::Users, Always),
    p(Owner, A::Revoke, R::Users, Always),
    p(Owner, A::Read, R::Alerts, Always),
    p(Owner, A::Decide, R::Alerts, Always),
    p(Owner, A::Update, R::Settings, Always),
    p(Owner, A::Manage, R::Webhooks, Always),
    p(Owner, A::Read, R::Incidents, Always),
    p(Owner, A::Manage, R::Incidents, Always),
    // Admin: everything but the tenant's lifecycle (and, by role order, owner keys).
    p(Admin, A::Read, R::Tenant, Always),
    p(Admin, A::Manage, R::Keys, Always),
    p(Admin, A::Issue, R::Keys, Always),
    p(Admin, A::Revoke, R::Keys, Always),
    p(Admin, A::Read, R::Records, Always),
    p(Admin, A::Create, R::Records, Always),
    p(Admin, A::Update, R::Records, Always),
    p(Admin, A::Manage, R::Rights, Always),
    p(Admin, A::Read, R::Audit, Always),
    p(Admin, A::Read, R::SupportGrants, Always),
    p(Admin, A::Decide, R::SupportGrants, Always),
    p(Admin, A::Read, R::Users, Always),
    p(Admin, A::Issue, R::Users, Always),
    p(Admin, A::Update, R::Users, Always),
    p(Admin, A::Revoke, R::Users, Always),
    p(Admin, A::Read, R::Alerts, Always),
    p(Admin, A::Manage, R::Webhooks, Always),
    p(Admin, A::Read, R::Incidents, Always),
    p(Admin, A::Manage, R::Incidents, Always),
    // Member: data for its named purposes.
    p(Member, A::Read, R::Tenant, Always),
    p(Member, A::Read, R::Records, Always),
    p(Member, A::Create, R::Records, Always),
    p(Member, A::Update, R::Records, Always),
    // Auditor: the audit log (and signing checkpoints of it).
    p(Auditor, A::Read, R::Tenant, Always),
    p(Auditor, A::Read, R::Audit, Always),
    p(Auditor, A::Sign, R::Checkpoints, Always),
    p(Auditor, A::Read, R::SupportGrants, Always),
    p(Auditor, A::Read, R::Users, Always),
    p(Auditor, A::Read, R::Alerts, Always),
    p(Auditor, A::Read, R::Incidents, Always),
];

/// How `role` holds `action` on `resource`, or `None` when it does not.
pub fn lookup(role: Role, action: Action, resource: Resource) -> Option<Scope> {
    TABLE
        .iter()
        .find(|p| p.role == role && p.action == action && p.resource == resource)
        .map(|p| p.scope)
}

/// Every (action, resource) pair the table mentions, in table order, without repeats.
pub fn rows() -> Vec<(Action, Resource)> {
    let mut out: Vec<(Action, Resource)> = Vec::new();
    for p in TABLE {
        if !out.contains(&(p.action, p.resource)) {
            out.push((p.action, p.resource));
        }
    }
    out.sort_by_key(|(a, r)| (*r as u8, *a as u8));
    out
}

/// The table as text, one line per (action, resource), one column per role: `yes`, `grant`
/// (only under a live support grant) or `-`. What `ward roles` prints.
pub fn render() -> String {
    let mut out = format!("{:<28}", "ACTION ON RESOURCE");
    for role in Role::ALL {
        out.push_str(&format!("{:<10}", role.as_str()));
    }
    out = out.trim_end().to_owned();
    out.push('\n');
    for (action, resource) in rows() {
        let mut line = format!("{:<28}", format!("{action} {resource}"));
        for role in Role::ALL {
            let cell = match lookup(role, action, resource) {
                Some(Scope::Always) => "yes",
                Some(Scope::UnderGrant) => "grant",
                None => "-",
            };
            line.push_str(&format!("{cell:<10}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Create => "create",
            Self::Update => "update",
            Self::Issue => "issue",
            Self::Revoke => "revoke",
            Self::Manage => "manage",
            Self::Sign => "sign",
            Self::Run => "run",
            Self::Request => "request",
            Self::Decide => "decide",
        })
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tenants => "tenants",
            Self::Tenant => "tenant",
            Self::Lifecycle => "tenant lifecycle",
            Self::Keys => "api keys",
            Self::Invitations => "invitations",
            Self::Records => "records",
            Self::Rights => "data-subject rights",
            Self::Audit => "audit log",
            Self::Checkpoints => "checkpoints",
            Self::KeyRotation => "key rotation",
            Self::Retention => "retention",
            Self::SupportGrants => "support grants",
            Self::Users => "users",
            Self::Alerts => "alerts",
            Self::PlatformAlerts => "platform alerts",
            Self::Settings => "tenant settings",
            Self::Webhooks => "webhooks",
            Self::PlatformWebhooks => "platform webhooks",
            Self::Deployment => "deployment health",
            Self::Incidents => "incidents",
            Self::PlatformIncidents => "platform incidents",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_permission_is_listed_twice() {
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                assert!(
                    !(a.role == b.role && a.action == b.action && a.resource == b.resource),
                    "{a:?} twice"
                );
            }
        }
    }

    #[test]
    fn staff_hold_no_data_permission_outright() {
        for p in TABLE {
            if matches!(
                p.resource,
                Resource::Records | Resource::Audit | Resource::Rights | Resource::Users
            ) {
                assert!(
                    !(p.role == Operator) && (p.role != Support || p.scope == UnderGrant),
                    "{p:?}"
                );
            }
        }
    }

    #[test]
    fn the_rendered_table_has_a_column_per_role_and_a_line_per_permission() {
        let text = render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), rows().len() + 1);
        for role in Role::ALL {
            assert!(lines[0].contains(role.as_str()));
        }
        assert!(text.contains("grant"));
    }
}

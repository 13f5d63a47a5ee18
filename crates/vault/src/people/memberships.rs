//! Tenant users: people join a tenant by invitation and act in it through a membership (role,
//! member purposes, optional end) that its owners and admins list, change and remove.
//!
//! A membership is what [`crate::access::decide`] sees of a user in a tenant
//! ([`crate::Principal::in_tenant`]): an ended or removed one makes the tenant "not found",
//! like no membership at all. Every change of a user's privilege (a membership added, its role
//! changed, removed) ends every session of the user in the same commit and drops them from
//! the cache, so an old cookie cannot carry the new privilege: the user logs in again and
//! gets a new session id. Role order: owners give any tenant role, admins only member and
//! auditor; the tenant never loses its last owner (an owner key or an owner membership
//! without end), checked again by the store in the commit.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::Action;
use ward_crypto::Zeroizing;
use ward_policy::Purpose;
use ward_store::{InvitationRow, MembershipRow, Op, PeopleOp, UserRow};

use super::{Email, UserOut, password};
use crate::access::Operation;
use crate::tenants::{NewInvitation, purposes_json, role_purposes};
use crate::{
    InvitationOut, Membership, RequestContext, Result, Role, Vault, VaultError, parse_list,
};

/// A tenant's user as its owners, admins and auditors see it: never a password, TOTP or
/// recovery material.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberOut {
    /// User id.
    pub id: Uuid,
    /// Login e-mail address.
    pub email: String,
    /// Role in the tenant.
    pub role: Role,
    /// Purposes a member may state.
    pub purposes: Vec<String>,
    /// When the membership ends (an ended one gives nothing).
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When the user joined the tenant.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What claiming a person's invitation returns.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Joined {
    /// The account (new, or the existing one that joined).
    pub user: UserOut,
    /// The tenant joined.
    pub tenant: Uuid,
    /// The role there.
    pub role: Role,
    /// When the membership ends.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// Body of `PATCH /v1/tenants/{tenant}/users/{user}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipChange {
    /// The new role: `owner`, `admin`, `member` or `auditor`.
    pub role: String,
    /// The purposes of a member (required when a non-member becomes one; a member keeps its
    /// purposes when none are given).
    #[serde(default)]
    pub purposes: Option<Vec<String>>,
}

impl Vault {
    /// Invites a person to join `tenant` with a role (owners; admins for member and auditor).
    pub(crate) async fn invite_user(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        new: NewInvitation,
    ) -> Result<InvitationOut> {
        let event = self.event(ctx, Action::InvitationCreate, Some(tenant));
        let row = self.visible_tenant(ctx, tenant, &event).await?;
        let role = new.role.as_deref().map(Role::parse).unwrap_or_else(|| {
            Err(VaultError::invalid(
                "role_required",
                "an invitation with purposes or a membership end needs a role",
                Some("role"),
            ))
        });
        // An unparsable role is decided as the least one, so a caller who may not invite
        // anyone is refused (and audited) before validation.
        let asked = match &role {
            Ok(r) if !r.is_platform() => *r,
            _ => Role::Member,
        };
        self.check(
            &self.tenant_access(ctx, &row, Operation::InviteUser { role: asked }),
            &event,
        )
        .await?;
        let role = role?;
        if role.is_platform() {
            return Err(VaultError::invalid(
                "invalid_role",
                "a person joins a tenant as owner, admin, member or auditor",
                Some("role"),
            ));
        }
        let purposes = role_purposes(role, &new.purposes, "user")?;
        if new.membership_expires_at.is_some_and(|e| e <= self.now()) {
            return Err(VaultError::invalid(
                "invalid_membership_expires_at",
                "a membership's end must be in the future",
                Some("membership_expires_at"),
            ));
        }
        let (out, inv_row, inv_event) = self.new_invitation(
            ctx,
            tenant,
            Some((role, &purposes, new.membership_expires_at)),
        )?;
        self.commit(vec![
            Op::InsertInvitation(inv_row),
            Op::Audit(Box::new(inv_event)),
        ])
        .await?;
        Ok(out)
    }

    /// Claims a person's invitation (already checked valid): a new account is made, or, when
    /// the e-mail address has one, its password is verified and it joins the tenant too.
    // Long on purpose: one linear sequence (role, existing account or new one, password check,
    // membership and claim in one commit, its conflicts mapped to answers); splitting it would
    // scatter which check runs before which write.
    pub(crate) async fn join_tenant(
        &self,
        inv: InvitationRow,
        email: Email,
        password: Zeroizing<String>,
        request_id: &str,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<Joined> {
        let role = Role::parse(inv.role.as_deref().unwrap_or_default())?;
        let now = self.now();
        let existing = self.find_user(&email).await?;
        let membership = MembershipRow {
            user: Uuid::nil(),
            tenant: inv.tenant,
            role: role.as_str().into(),
            purposes: inv.purposes.clone().unwrap_or_else(|| "[]".into()),
            expires_at: inv.membership_expires_at,
            created_at: now,
        };
        let mut ops = vec![Op::ClaimInvitation {
            tenant: inv.tenant,
            id: inv.id,
            at: now,
        }];
        let user = match existing {
            Some(user) => {
                if password.len() > password::MAX_BYTES {
                    return Err(VaultError::LoginFailed);
                }
                let stored = user.password_hash.clone();
                let pw = password.clone();
                let ok = tokio::task::spawn_blocking(move || password::verify(&pw, &stored))
                    .await
                    .map_err(|_| VaultError::Integrity)?;
                let platform = Role::parse(&user.role)?.is_platform();
                if !ok || user.disabled_at.is_some() || platform {
                    let (source, key) =
                        self.throttle_keys(client_ip, Some(&self.inner.people.email_hash(&email)));
                    self.record_auth_failure(
                        source,
                        key,
                        request_id,
                        "invitation claimed with a wrong password",
                        now,
                    )
                    .await?;
                    return Err(VaultError::LoginFailed);
                }
                let memberships = self.inner.store.memberships_of(user.id).await?;
                if memberships.iter().any(|m| m.tenant == inv.tenant) {
                    return Err(VaultError::StateConflict {
                        code: "already_member",
                        reason: "this account already belongs to the tenant".into(),
                    });
                }
                // A privilege change: the account's sessions end, it logs in again.
                ops.push(Op::People(PeopleOp::RevokeUserSessions {
                    user: user.id,
                    at: now,
                }));
                user
            }
            None => {
                password::check_rules(&password)?;
                let pw = password.clone();
                let password_hash = tokio::task::spawn_blocking(move || password::hash(&pw))
                    .await
                    .map_err(|_| VaultError::Integrity)??;
                let id = Uuid::now_v7();
                let people = &self.inner.people;
                let row = UserRow {
                    id,
                    email_hash: people.email_hash(&email),
                    email_sealed: people.seal(id, "email", email.as_str().as_bytes())?,
                    role: role.as_str().into(),
                    tenant: Some(inv.tenant),
                    password_hash,
                    totp_sealed: None,
                    totp_last_step: None,
                    key_version: people.current(),
                    reset_hash: None,
                    reset_expires_at: None,
                    created_at: now,
                    password_changed_at: now,
                    disabled_at: None,
                };
                ops.push(Op::People(PeopleOp::InsertUser {
                    user: Box::new(row.clone()),
                    recovery_codes: Vec::new(),
                }));
                row
            }
        };
        ops.push(Op::People(PeopleOp::InsertMembership(MembershipRow {
            user: user.id,
            ..membership
        })));
        ops.push(Op::Audit(Box::new(self.claim_event(
            &inv,
            request_id,
            client_ip,
            now,
            serde_json::json!({
                "invitation": inv.id,
                "user": user.id,
                "role": role,
                "membership_expires_at": inv.membership_expires_at.map(|e| e.unix_timestamp()),
            }),
        ))));
        match self.commit(ops).await {
            Ok(_) => {}
            // Claimed by a concurrent request since it was read.
            Err(ward_store::StoreError::NotFound("invitation")) => {
                return Err(VaultError::InvitationInvalid);
            }
            Err(ward_store::StoreError::Conflict(_)) => {
                return Err(VaultError::StateConflict {
                    code: "already_member",
                    reason: "this account already belongs to the tenant, or was just made".into(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.forget_user_sessions(user.id);
        Ok(Joined {
            user: self.user_out(&user)?,
            tenant: inv.tenant,
            role,
            expires_at: inv.membership_expires_at,
        })
    }

    /// A tenant's users with their roles (owners, admins, auditors).
    pub async fn list_members(&self, ctx: &RequestContext, tenant: Uuid) -> Result<Vec<MemberOut>> {
        let event = self.event(ctx, Action::MembershipList, Some(tenant));
        let row = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(&self.tenant_access(ctx, &row, Operation::ListUsers), &event)
            .await?;
        let mut out = Vec::new();
        for m in self.inner.store.memberships(tenant).await? {
            if let Some(user) = self.inner.store.user(m.user).await? {
                out.push(member_out(&m, &self.user_out(&user)?.email)?);
            }
        }
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(out)
    }

    /// Changes a user's role in the tenant; the user's sessions end at once.
    pub async fn change_member_role(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        user: Uuid,
        change: MembershipChange,
    ) -> Result<MemberOut> {
        let mut event = self.event(ctx, Action::MembershipUpdate, Some(tenant));
        let row = self.visible_tenant(ctx, tenant, &event).await?;
        let target = self.member(tenant, user).await?;
        let to = Role::parse(&change.role);
        let asked = match &to {
            Ok(r) if !r.is_platform() => *r,
            _ => Role::Member,
        };
        // Someone not a user of the tenant is decided as the least role: the store then
        // answers "not found".
        let from = target
            .as_ref()
            .map(|m| Role::parse(&m.role))
            .transpose()?
            .unwrap_or(Role::Member);
        let last_owner = from == Role::Owner
            && asked != Role::Owner
            && self.owners_besides(tenant, Some(user)).await? == 0;
        event.detail = Some(serde_json::json!({ "user": user, "from": from, "to": asked }));
        self.check(
            &self.tenant_access(
                ctx,
                &row,
                Operation::ChangeMembership {
                    from,
                    to: asked,
                    last_owner,
                },
            ),
            &event,
        )
        .await?;
        let to = to?;
        if to.is_platform() {
            return Err(VaultError::invalid(
                "invalid_role",
                "a user's role in a tenant is owner, admin, member or auditor",
                Some("role"),
            ));
        }
        let Some(mut target) = target else {
            return Err(VaultError::NotFound("user"));
        };
        let purposes = match (&change.purposes, to, from) {
            (None, Role::Member, Role::Member) => parse_list(&target.purposes),
            (None, _, _) => Vec::new(),
            (Some(p), _, _) => p.clone(),
        };
        let purposes = purposes_json(&role_purposes(to, &purposes, "user")?);
        let now = self.now();
        let mut ops = vec![Op::People(PeopleOp::SetMembershipRole {
            tenant,
            user,
            role: to.as_str().into(),
            purposes: purposes.clone(),
        })];
        if from == Role::Owner {
            ops.push(Op::AssertOwnerRemains { tenant });
        }
        ops.push(Op::People(PeopleOp::RevokeUserSessions { user, at: now }));
        ops.push(Op::Audit(Box::new(event)));
        self.commit_membership(ops).await?;
        self.forget_user_sessions(user);
        target.role = to.as_str().into();
        target.purposes = purposes;
        let email = self.member_email(user).await?;
        member_out(&target, &email)
    }

    /// Removes a user from the tenant; the user's sessions end at once.
    pub async fn remove_member(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        user: Uuid,
    ) -> Result<()> {
        let mut event = self.event(ctx, Action::MembershipRemove, Some(tenant));
        let row = self.visible_tenant(ctx, tenant, &event).await?;
        let target = self.member(tenant, user).await?;
        let role = target
            .as_ref()
            .map(|m| Role::parse(&m.role))
            .transpose()?
            .unwrap_or(Role::Member);
        let last_owner = role == Role::Owner && self.owners_besides(tenant, Some(user)).await? == 0;
        event.detail = Some(serde_json::json!({ "user": user, "role": role }));
        self.check(
            &self.tenant_access(ctx, &row, Operation::RemoveMembership { role, last_owner }),
            &event,
        )
        .await?;
        if target.is_none() {
            return Err(VaultError::NotFound("user"));
        }
        let now = self.now();
        let mut ops = vec![Op::People(PeopleOp::DeleteMembership { tenant, user })];
        if role == Role::Owner {
            ops.push(Op::AssertOwnerRemains { tenant });
        }
        ops.push(Op::People(PeopleOp::RevokeUserSessions { user, at: now }));
        ops.push(Op::Audit(Box::new(event)));
        self.commit_membership(ops).await?;
        self.forget_user_sessions(user);
        Ok(())
    }

    /// The tenant's owners other than user `except`: live owner keys and owner memberships
    /// without end (one that ends cannot be relied on to keep the tenant owned).
    pub(crate) async fn owners_besides(&self, tenant: Uuid, except: Option<Uuid>) -> Result<usize> {
        let keys = self
            .inner
            .store
            .api_keys(Some(tenant))
            .await?
            .iter()
            .filter(|k| {
                k.role == Role::Owner.as_str() && k.revoked_at.is_none() && k.expires_at.is_none()
            })
            .count();
        let users = self
            .inner
            .store
            .memberships(tenant)
            .await?
            .iter()
            .filter(|m| {
                m.role == Role::Owner.as_str() && m.expires_at.is_none() && Some(m.user) != except
            })
            .count();
        Ok(keys + users)
    }

    /// A user's memberships as its sessions carry them.
    pub(crate) async fn membership_scopes(&self, user: Uuid) -> Result<Vec<Membership>> {
        let mut out = Vec::new();
        for m in self.inner.store.memberships_of(user).await? {
            let purposes: BTreeSet<Purpose> = parse_list(&m.purposes)
                .iter()
                .filter_map(|p| Purpose::parse(p).ok())
                .collect();
            out.push(Membership {
                tenant: m.tenant,
                role: Role::parse(&m.role)?,
                purposes,
                expires_at: m.expires_at,
            });
        }
        Ok(out)
    }

    async fn member(&self, tenant: Uuid, user: Uuid) -> Result<Option<MembershipRow>> {
        Ok(self
            .inner
            .store
            .memberships_of(user)
            .await?
            .into_iter()
            .find(|m| m.tenant == tenant))
    }

    async fn member_email(&self, user: Uuid) -> Result<String> {
        let row = self
            .inner
            .store
            .user(user)
            .await?
            .ok_or(VaultError::NotFound("user"))?;
        Ok(self.user_out(&row)?.email)
    }

    async fn commit_membership(&self, ops: Vec<Op>) -> Result<()> {
        match self.commit(ops).await {
            Ok(_) => Ok(()),
            Err(ward_store::StoreError::NotFound("membership")) => {
                Err(VaultError::NotFound("user"))
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn member_out(m: &MembershipRow, email: &str) -> Result<MemberOut> {
    Ok(MemberOut {
        id: m.user,
        email: email.to_owned(),
        role: Role::parse(&m.role)?,
        purposes: parse_list(&m.purposes),
        expires_at: m.expires_at,
        created_at: m.created_at,
    })
}

//! Tenants, API keys and authentication.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, Actor, AuditEvent};
use ward_crypto::{Token, token_hash};
use ward_policy::Purpose;
use ward_store::{ApiKeyRow, InvitationRow, Op, TenantRow};

use crate::access::{Access, Operation};
use crate::{RequestContext, Result, Role, Vault, VaultError, parse_list};
use ward_store::TenantStatus;

/// Longest tenant or key name accepted.
const MAX_NAME: usize = 200;

/// A tenant to create.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewTenant {
    /// Organization name.
    pub name: String,
    /// Hosting region label (must be one of the policy's hosting regions when given).
    pub region: Option<String>,
}

/// A tenant as shown by the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantOut {
    /// Tenant id.
    pub id: Uuid,
    /// Organization name.
    pub name: String,
    /// `active`, `deactivated` or `destroyed`.
    pub status: String,
    /// Hosting region.
    pub region: Option<String>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When a deactivated tenant will be destroyed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub destroy_after: Option<OffsetDateTime>,
    /// Whether the tenant's users must sign in with TOTP (its owners set it with
    /// `PATCH /v1/tenants/{tenant}/settings`).
    pub require_totp: bool,
}

/// A tenant just created, with the invitation for its first owner.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedTenant {
    /// The tenant.
    #[serde(flatten)]
    pub tenant: TenantOut,
    /// Hand this to the tenant's first owner: claiming it yields the owner key.
    pub invitation: InvitationOut,
}

/// Body of `POST /v1/tenants/{tenant}/invitations`. Empty (or without `role`): an invitation
/// to become the tenant's first owner, which yields an API key (operators, for a tenant
/// without an owner). With `role`: an invitation for a person to join the tenant as a user of
/// that role (owners; admins for roles below admin).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    /// `owner`, `admin`, `member` or `auditor`: the role of the membership it gives.
    #[serde(default)]
    pub role: Option<String>,
    /// Purposes a member may state (required for members, refused for other roles).
    #[serde(default)]
    pub purposes: Vec<String>,
    /// When the membership it gives ends (RFC 3339, in the future); without, it lasts until
    /// removed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub membership_expires_at: Option<OffsetDateTime>,
}

/// An invitation: to become a tenant's first owner, or for a person to join it. The token is
/// shown once, here.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InvitationOut {
    /// Invitation id (appears in audit events).
    pub id: Uuid,
    /// The tenant.
    pub tenant: Uuid,
    /// The invitation token (`ward_inv_…`), shown once; claim it with
    /// `POST /v1/invitations/claim`.
    pub token: String,
    /// After this time the invitation cannot be claimed.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The role a person joins with (absent for a first-owner invitation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// When the membership it gives ends.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub membership_expires_at: Option<OffsetDateTime>,
}

/// Body of `POST /v1/invitations/claim`: `invitation` (or `token`) and `name` for a
/// first-owner invitation; `token`, `email` and `password` for a person's invitation.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimInvitation {
    /// The invitation token (`ward_inv_…`).
    #[serde(alias = "token")]
    pub invitation: String,
    /// Label of the owner key, e.g. "Jane Doe (owner)" (first-owner invitations).
    #[serde(default)]
    pub name: Option<String>,
    /// The person's login e-mail address (a person's invitation).
    #[serde(default)]
    pub email: Option<String>,
    /// The password of a new account (at least 12 characters), or of the existing account
    /// with this e-mail address, which then joins the tenant too.
    #[serde(default)]
    pub password: Option<String>,
}

/// What claiming an invitation gives: the first owner's API key, or a person's membership.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Claimed {
    /// The tenant's owner key (a first-owner invitation).
    Key(KeyOut),
    /// The person's membership (log in with `POST /v1/auth/login`).
    Member(crate::people::Joined),
}

/// An API key to issue.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewKey {
    /// Label, e.g. "billing backend".
    pub name: String,
    /// `owner`, `admin`, `member` or `auditor`.
    pub role: String,
    /// Purposes a member key may state (required for members, refused for other roles).
    #[serde(default)]
    pub purposes: Vec<String>,
    /// When the key stops authenticating (RFC 3339, in the future); without, it lasts until
    /// revoked. A key with an end does not count as the owner that keeps a tenant owned.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// An issued key; `token` is present only in the response that created it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyOut {
    /// Key id (appears in audit events).
    pub id: Uuid,
    /// Tenant.
    pub tenant: Option<Uuid>,
    /// Label.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Member purposes.
    pub purposes: Vec<String>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Revocation time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// When the key stops authenticating; `null`: not until revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// The bearer token, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl Vault {
    /// Issues the platform operator key if none exists yet; returns its token (to be shown once).
    pub async fn bootstrap_operator(&self) -> Result<Option<Token>> {
        if !self.inner.store.api_keys(None).await?.is_empty() {
            return Ok(None);
        }
        let token = Token::generate("ward_op")?;
        let now = self.now();
        let row = ApiKeyRow {
            id: Uuid::now_v7(),
            tenant: None,
            token_hash: token_hash(token.as_str()),
            name: "bootstrap operator".into(),
            role: Role::Operator.as_str().into(),
            purposes: "[]".into(),
            created_at: now,
            revoked_at: None,
            expires_at: None,
        };
        let event = AuditEvent::allowed(
            now,
            "bootstrap",
            Actor::system("bootstrap"),
            Action::KeyCreate,
            None,
        )
        .with_detail(serde_json::json!({ "key": row.id, "role": "operator" }));
        self.commit(vec![Op::InsertApiKey(row), Op::Audit(Box::new(event))])
            .await?;
        Ok(Some(token))
    }

    /// Creates a tenant with its own key and an invitation for its first owner (operator
    /// only). The operator never holds a key of the tenant: the invitation's claimant does.
    pub async fn create_tenant(
        &self,
        ctx: &RequestContext,
        new: NewTenant,
    ) -> Result<CreatedTenant> {
        let id = Uuid::now_v7();
        let mut event = self.event(ctx, Action::TenantCreate, Some(id));
        self.check_platform(ctx, crate::PlatformOperation::CreateTenant, &event)
            .await?;
        let name = crate::text::parse(&new.name, "name", "invalid_name", MAX_NAME)?;
        let name = name.as_str();
        let region = new
            .region
            .as_deref()
            .map(|r| crate::text::parse(r, "region", "invalid_region", MAX_NAME))
            .transpose()?
            .map(ward_policy::FreeText::into_string);
        if let Some(region) = &region {
            let hosting = &self.inner.policy.regions.hosting;
            if !hosting.is_empty() && !hosting.iter().any(|h| h == region) {
                return Err(VaultError::invalid(
                    "invalid_region",
                    format!(
                        "region {region:?} is not a hosting region of the policy ({})",
                        hosting.join(", ")
                    ),
                    Some("region"),
                ));
            }
        }
        let (wrapped, root_version) = self.inner.keys.new_tenant_key(id)?;
        let now = self.now();
        let row = TenantRow {
            id,
            name: name.to_owned(),
            status: TenantStatus::Active,
            region,
            wrapped_key: Some(wrapped),
            root_key_version: root_version,
            key_version: 1,
            settings: "{}".into(),
            created_at: now,
            status_changed_at: now,
            destroy_after: None,
        };
        let out = tenant_out(&row);
        event.at = now;
        let (invitation, inv_row, inv_event) = self.new_invitation(ctx, id, None)?;
        self.commit(vec![
            Op::InsertTenant(row),
            Op::Audit(Box::new(event)),
            Op::InsertInvitation(inv_row),
            Op::Audit(Box::new(inv_event)),
        ])
        .await?;
        Ok(CreatedTenant {
            tenant: out,
            invitation,
        })
    }

    /// A fresh invitation for `tenant`: what to show, what to store, what to audit.
    pub(crate) fn new_invitation(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        person: Option<(Role, &BTreeSet<Purpose>, Option<OffsetDateTime>)>,
    ) -> Result<(InvitationOut, InvitationRow, AuditEvent)> {
        let token = Token::generate("ward_inv")?;
        let now = self.now();
        let ttl = time::Duration::try_from(self.inner.limits.invitation_ttl)
            .unwrap_or(time::Duration::hours(72));
        let row = InvitationRow {
            id: Uuid::now_v7(),
            tenant,
            token_hash: token_hash(token.as_str()),
            created_at: now,
            expires_at: now.saturating_add(ttl),
            used_at: None,
            role: person.map(|(r, _, _)| r.as_str().to_owned()),
            purposes: person.map(|(_, p, _)| purposes_json(p)),
            membership_expires_at: person.and_then(|(_, _, e)| e),
        };
        let mut event = self.event(ctx, Action::InvitationCreate, Some(tenant));
        event.at = now;
        event.detail = Some(serde_json::json!({
            "invitation": row.id,
            "expires_at": row.expires_at.unix_timestamp(),
            "role": person.map(|(r, _, _)| r),
            "membership_expires_at": row.membership_expires_at.map(|e| e.unix_timestamp()),
        }));
        let out = InvitationOut {
            id: row.id,
            tenant,
            token: token.as_str().to_owned(),
            expires_at: row.expires_at,
            role: person.map(|(r, _, _)| r),
            membership_expires_at: row.membership_expires_at,
        };
        Ok((out, row, event))
    }

    /// Issues an invitation. Without a role: to become the first owner of a tenant that has no
    /// live owner (operator only); earlier unclaimed first-owner invitations of the tenant stop
    /// working. With a role: for a person to join the tenant ([`Self::invite_user`]).
    pub async fn issue_invitation(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        new: NewInvitation,
    ) -> Result<InvitationOut> {
        if new.role.is_some() || !new.purposes.is_empty() || new.membership_expires_at.is_some() {
            return self.invite_user(ctx, tenant, new).await;
        }
        let event = self.event(ctx, Action::InvitationCreate, Some(tenant));
        let row = self.visible_tenant(ctx, tenant, &event).await?;
        let has_owner = self.owners_besides(tenant, None).await? > 0;
        self.check(
            &self.tenant_access(ctx, &row, Operation::IssueInvitation { has_owner }),
            &event,
        )
        .await?;
        let (out, inv_row, inv_event) = self.new_invitation(ctx, tenant, None)?;
        self.commit(vec![
            Op::InsertInvitation(inv_row),
            Op::Audit(Box::new(inv_event)),
        ])
        .await?;
        Ok(out)
    }

    /// The audit event of a claimed invitation (by a first owner or an invited person): the
    /// invitation is the actor, the tenant's log holds it. `detail` says what the claim made.
    pub(crate) fn claim_event(
        &self,
        inv: &InvitationRow,
        request_id: &str,
        client_ip: Option<std::net::IpAddr>,
        now: OffsetDateTime,
        detail: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent::allowed(
            now,
            request_id,
            Actor {
                id: format!("invitation:{}", inv.id),
                role: "invitee".into(),
            },
            Action::InvitationClaim,
            Some(inv.tenant),
        )
        .with_client(client_ip.map(|ip| self.client_hash(ip)))
        .with_detail(detail)
    }

    /// Claims an invitation: the only credential is the invitation itself, and the result is
    /// the tenant's owner key. Every failure is the same [`VaultError::InvitationInvalid`] and
    /// writes nothing, so guessing costs the deployment no storage.
    pub async fn claim_invitation(
        &self,
        claim: ClaimInvitation,
        request_id: &str,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<Claimed> {
        let name = claim
            .name
            .as_deref()
            .map(|n| crate::text::parse(n, "name", "invalid_name", MAX_NAME))
            .transpose()?;
        let email = claim
            .email
            .as_deref()
            .map(crate::people::Email::parse)
            .transpose()?;
        let hash = token_hash(claim.invitation.trim());
        let now = self.now();
        // An unauthenticated caller guessing invitations is throttled and audited like one
        // guessing API keys.
        let (source, token_key) = self.throttle_keys(client_ip, Some(&hash));
        self.check_throttle(source.as_deref(), token_key.as_ref())?;
        let found = self.inner.store.invitation_by_hash(&hash).await?;
        // The stored hash is the lookup key, so it matched; the comparison is constant-time
        // anyway, like every comparison of secrets.
        let valid = match found {
            Some(inv)
                if ward_crypto::ct_eq(&inv.token_hash, &hash)
                    && inv.used_at.is_none()
                    && inv.expires_at > now =>
            {
                match self.inner.store.tenant(inv.tenant).await? {
                    Some(t) if t.status == TenantStatus::Active => Some(inv),
                    _ => None,
                }
            }
            _ => None,
        };
        let Some(inv) = valid else {
            self.record_auth_failure(source, token_key, request_id, "invalid invitation", now)
                .await?;
            return Err(VaultError::InvitationInvalid);
        };
        if inv.role.is_some() {
            let (Some(email), Some(password)) = (email, claim.password) else {
                return Err(VaultError::invalid(
                    "email_required",
                    "an invitation to join a tenant is claimed with an e-mail address and a \
                     password",
                    Some(if claim.email.is_none() {
                        "email"
                    } else {
                        "password"
                    }),
                ));
            };
            return self
                .join_tenant(
                    inv,
                    email,
                    ward_crypto::Zeroizing::new(password),
                    request_id,
                    client_ip,
                )
                .await
                .map(Claimed::Member);
        }
        let Some(name) = name else {
            return Err(VaultError::invalid(
                "name_required",
                "a first-owner invitation is claimed with a name for the owner key",
                Some("name"),
            ));
        };
        let name = name.as_str();
        let token = Token::generate("ward_key")?;
        let key = ApiKeyRow {
            id: Uuid::now_v7(),
            tenant: Some(inv.tenant),
            token_hash: token_hash(token.as_str()),
            name: name.to_owned(),
            role: Role::Owner.as_str().into(),
            purposes: "[]".into(),
            created_at: now,
            revoked_at: None,
            expires_at: None,
        };
        let event = self.claim_event(
            &inv,
            request_id,
            client_ip,
            now,
            serde_json::json!({
                "invitation": inv.id,
                "key": key.id,
                "role": "owner",
            }),
        );
        let mut out = key_out(&key)?;
        out.token = Some(token.as_str().to_owned());
        let committed = self
            .commit(vec![
                Op::ClaimInvitation {
                    tenant: inv.tenant,
                    id: inv.id,
                    at: now,
                },
                Op::InsertApiKey(key),
                Op::Audit(Box::new(event)),
            ])
            .await;
        match committed {
            Ok(_) => Ok(Claimed::Key(out)),
            // Claimed (or replaced) by a concurrent request since it was read.
            Err(ward_store::StoreError::NotFound("invitation")) => {
                Err(VaultError::InvitationInvalid)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a tenant.
    pub async fn tenant(&self, ctx: &RequestContext, id: Uuid) -> Result<TenantOut> {
        let event = self.event(ctx, Action::TenantRead, Some(id));
        let row = self.visible_tenant(ctx, id, &event).await?;
        self.check(
            &self.tenant_access(ctx, &row, Operation::ReadTenant),
            &event,
        )
        .await?;
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(tenant_out(&row))
    }

    /// Issues an API key for a tenant; the token is in the result and nowhere else.
    pub async fn create_key(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        new: NewKey,
    ) -> Result<KeyOut> {
        let mut event = self.event(ctx, Action::KeyCreate, Some(tenant));
        let row = self.visible_tenant(ctx, tenant, &event).await?;
        // The requested role is a fact of the decision; an unparsable one is decided as the
        // least role, so an operator or a member is refused (and audited) before validation.
        let role = Role::parse(&new.role);
        let asked = match &role {
            Ok(r) if !r.is_platform() => *r,
            _ => Role::Member,
        };
        self.check(
            &self.tenant_access(ctx, &row, Operation::IssueKey { role: asked }),
            &event,
        )
        .await?;
        let role = role?;
        if role.is_platform() {
            return Err(VaultError::invalid(
                "invalid_role",
                "tenant keys cannot be operator or support keys",
                Some("role"),
            ));
        }
        let name = crate::text::parse(&new.name, "name", "invalid_name", MAX_NAME)?;
        let name = name.as_str();
        let purposes = role_purposes(role, &new.purposes, "key")?;
        let now = self.now();
        if new.expires_at.is_some_and(|e| e <= now) {
            return Err(VaultError::invalid(
                "invalid_expires_at",
                "a key's end must be in the future",
                Some("expires_at"),
            ));
        }
        let token = Token::generate("ward_key")?;
        let purposes: Vec<String> = purposes.iter().map(|p| p.as_str().to_owned()).collect();
        let key = ApiKeyRow {
            id: Uuid::now_v7(),
            tenant: Some(tenant),
            token_hash: token_hash(token.as_str()),
            name: name.to_owned(),
            role: role.as_str().into(),
            purposes: serde_json::to_string(&purposes).unwrap_or_else(|_| "[]".into()),
            created_at: now,
            revoked_at: None,
            expires_at: new.expires_at,
        };
        let mut detail = serde_json::json!({ "key": key.id, "role": role });
        if let Some(end) = key.expires_at {
            detail["expires_at"] = end.unix_timestamp().into();
        }
        event.detail = Some(detail);
        let mut out = key_out(&key)?;
        out.token = Some(token.as_str().to_owned());
        self.commit(vec![Op::InsertApiKey(key), Op::Audit(Box::new(event))])
            .await?;
        Ok(out)
    }

    /// Lists a tenant's keys (never their tokens).
    pub async fn list_keys(&self, ctx: &RequestContext, tenant: Uuid) -> Result<Vec<KeyOut>> {
        let event = self.event(ctx, Action::KeyList, Some(tenant));
        let row = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &row, Operation::ManageKeys),
            &event,
        )
        .await?;
        let keys = self.inner.store.api_keys(Some(tenant)).await?;
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        keys.iter().map(key_out).collect()
    }

    /// Revokes a tenant key at once.
    pub async fn revoke_key(&self, ctx: &RequestContext, tenant: Uuid, key: Uuid) -> Result<()> {
        let mut event = self.event(ctx, Action::KeyRevoke, Some(tenant));
        event.detail = Some(serde_json::json!({ "key": key }));
        let row = self.visible_tenant(ctx, tenant, &event).await?;
        let keys = self.inner.store.api_keys(Some(tenant)).await?;
        // Owner keys and owner users without end alike keep the tenant owned.
        let live_owners = self.owners_besides(tenant, None).await?;
        // A key that is not the tenant's (or already revoked) is decided as the least role:
        // the store then answers "not found".
        let target = keys
            .iter()
            .find(|k| k.id == key && k.revoked_at.is_none())
            .map(|k| Role::parse(&k.role))
            .transpose()?;
        let role = target.unwrap_or(Role::Member);
        event.detail = Some(serde_json::json!({ "key": key, "role": role }));
        let last_owner = role == Role::Owner && live_owners <= 1;
        self.check(
            &self.tenant_access(ctx, &row, Operation::RevokeKey { role, last_owner }),
            &event,
        )
        .await?;
        let at = self.now();
        let mut ops = vec![Op::RevokeApiKey {
            tenant: Some(tenant),
            id: key,
            at,
        }];
        if role == Role::Owner {
            // Two owners revoking each other at once both passed the decision above; the
            // store lets only one of them through.
            ops.push(Op::AssertOwnerRemains { tenant });
        }
        ops.push(Op::Audit(Box::new(event)));
        self.commit(ops).await?;
        self.inner
            .auth_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, c| c.principal.key_id != key);
        Ok(())
    }

    /// Stops every cached authentication of a tenant's keys (tenant destroyed).
    pub(crate) fn forget_tenant_tokens(&self, tenant: Uuid) {
        self.inner
            .auth_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, c| c.principal.tenant != Some(tenant));
    }

    /// The tenant row if the caller may know it exists; otherwise a hidden denial, audited.
    pub(crate) async fn visible_tenant(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        event: &AuditEvent,
    ) -> Result<TenantRow> {
        self.isolate(ctx, id, event).await?;
        let p = &ctx.principal;
        match self.inner.store.tenant(id).await? {
            Some(t) if t.status != TenantStatus::Destroyed || crate::access::sees_destroyed(p) => {
                Ok(t)
            }
            _ => Err(VaultError::NotFound("tenant")),
        }
    }

    /// Tenant isolation, before any query: a key of another tenant is told "not found", and
    /// the attempt is audited.
    pub(crate) async fn isolate(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        event: &AuditEvent,
    ) -> Result<()> {
        let p = &ctx.principal;
        if !crate::access::reaches(p, id) {
            return Err(self
                .deny(
                    event.clone(),
                    crate::Denial::Hidden {
                        what: "tenant",
                        reason: "key belongs to another tenant".into(),
                    },
                )
                .await);
        }
        Ok(())
    }

    pub(crate) fn tenant_access<'a>(
        &self,
        ctx: &'a RequestContext,
        row: &'a TenantRow,
        operation: Operation,
    ) -> Access<'a> {
        Access {
            principal: &ctx.principal,
            tenant: row.id,
            tenant_status: row.status,
            operation,
            collection: None,
            purpose: None,
            restrictions: &[],
            expires_at: None,
            now: self.now(),
            tenant_requires_totp: crate::tenant_settings::requires_totp(row),
        }
    }
}

/// The purposes of a member key or membership (`what` names which), validated: required for
/// members, refused for other roles.
pub(crate) fn role_purposes(role: Role, list: &[String], what: &str) -> Result<BTreeSet<Purpose>> {
    let mut purposes = BTreeSet::new();
    for p in list {
        let purpose = Purpose::parse(p).map_err(|e| {
            VaultError::invalid("invalid_purpose", format!("{p:?}: {e}"), Some("purposes"))
        })?;
        purposes.insert(purpose);
    }
    match role {
        Role::Member if purposes.is_empty() => Err(VaultError::invalid(
            "purposes_required",
            format!("member {what}s must name the purposes they may state"),
            Some("purposes"),
        )),
        Role::Member => Ok(purposes),
        _ if !purposes.is_empty() => Err(VaultError::invalid(
            "purposes_not_applicable",
            format!("only member {what}s are limited to purposes; a {role} {what} is not"),
            Some("purposes"),
        )),
        _ => Ok(purposes),
    }
}

/// A set of purposes as the store keeps it: a JSON array.
pub(crate) fn purposes_json(p: &BTreeSet<Purpose>) -> String {
    let v: Vec<&str> = p.iter().map(Purpose::as_str).collect();
    serde_json::to_string(&v).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn tenant_out(row: &TenantRow) -> TenantOut {
    TenantOut {
        id: row.id,
        name: row.name.clone(),
        status: row.status.as_str().to_owned(),
        region: row.region.clone(),
        created_at: row.created_at,
        destroy_after: row.destroy_after,
        require_totp: crate::tenant_settings::requires_totp(row),
    }
}

fn key_out(row: &ApiKeyRow) -> Result<KeyOut> {
    Ok(KeyOut {
        id: row.id,
        tenant: row.tenant,
        name: row.name.clone(),
        role: Role::parse(&row.role)?,
        purposes: parse_list(&row.purposes),
        created_at: row.created_at,
        revoked_at: row.revoked_at,
        expires_at: row.expires_at,
        token: None,
    })
}

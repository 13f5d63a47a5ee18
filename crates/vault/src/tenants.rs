//! Tenants, API keys and authentication.

use std::collections::BTreeSet;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, Actor, AuditEvent, Outcome};
use ward_crypto::{Token, token_hash};
use ward_policy::Purpose;
use ward_store::{ApiKeyRow, Op, TenantRow};

use crate::access::{Access, Operation};
use crate::{Principal, RequestContext, Result, Role, Vault, VaultError, parse_list};

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
        };
        let event = AuditEvent {
            at: now,
            request_id: "bootstrap".into(),
            actor: Actor::system("bootstrap"),
            tenant: None,
            subject: None,
            record: None,
            collection: None,
            purpose: None,
            action: Action::KeyCreate,
            outcome: Outcome::Allowed,
            reason: None,
            client: None,
            detail: Some(serde_json::json!({ "key": row.id, "role": "operator" })),
        };
        self.inner
            .store
            .commit(vec![Op::InsertApiKey(row), Op::Audit(Box::new(event))])
            .await?;
        Ok(Some(token))
    }

    /// Resolves a bearer token to its principal. Failures are audited (without the token).
    pub async fn authenticate(
        &self,
        token: Option<&str>,
        request_id: &str,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<Principal> {
        let hash = token.map(token_hash);
        if let Some(h) = &hash {
            let cache = self
                .inner
                .auth_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some((p, at)) = cache.get(h)
                && at.elapsed() < crate::AUTH_CACHE_TTL
            {
                return Ok(p.clone());
            }
        }
        let row = match &hash {
            Some(h) => self.inner.store.api_key_by_hash(h).await?,
            None => None,
        };
        let principal = match row {
            Some(r) if r.revoked_at.is_none() => Some(Principal {
                key_id: r.id,
                tenant: r.tenant,
                role: Role::parse(&r.role)?,
                purposes: parse_list(&r.purposes)
                    .iter()
                    .filter_map(|p| Purpose::parse(p).ok())
                    .collect(),
            }),
            _ => None,
        };
        let Some(principal) = principal else {
            let event = AuditEvent {
                at: self.now(),
                request_id: request_id.to_owned(),
                actor: Actor {
                    id: "anonymous".into(),
                    role: "none".into(),
                },
                tenant: None,
                subject: None,
                record: None,
                collection: None,
                purpose: None,
                action: Action::Authenticate,
                outcome: Outcome::Denied,
                reason: Some(
                    if token.is_some() {
                        "unknown or revoked API key"
                    } else {
                        "no API key"
                    }
                    .into(),
                ),
                client: client_ip.map(|ip| self.client_hash(ip)),
                detail: None,
            };
            self.inner
                .store
                .commit(vec![Op::Audit(Box::new(event))])
                .await?;
            return Err(VaultError::Unauthenticated);
        };
        if let Some(h) = hash {
            let mut cache = self
                .inner
                .auth_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(h, (principal.clone(), Instant::now()));
        }
        Ok(principal)
    }

    /// Creates a tenant with its own key (operator only).
    pub async fn create_tenant(&self, ctx: &RequestContext, new: NewTenant) -> Result<TenantOut> {
        let id = Uuid::now_v7();
        let mut event = self.event(ctx, Action::TenantCreate, Some(id));
        if ctx.principal.role != Role::Operator {
            return Err(self
                .deny(
                    event,
                    crate::Denial::Forbidden {
                        code: "role_not_permitted",
                        reason: format!("role {} may not create tenants", ctx.principal.role),
                    },
                )
                .await);
        }
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
            status: "active".into(),
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
        self.inner
            .store
            .commit(vec![Op::InsertTenant(row), Op::Audit(Box::new(event))])
            .await?;
        Ok(out)
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
        self.inner
            .store
            .commit(vec![Op::Audit(Box::new(event))])
            .await?;
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
        self.check(
            &self.tenant_access(ctx, &row, Operation::ManageKeys),
            &event,
        )
        .await?;
        let role = Role::parse(&new.role)?;
        if role == Role::Operator {
            return Err(VaultError::invalid(
                "invalid_role",
                "tenant keys cannot be operator keys",
                Some("role"),
            ));
        }
        if role == Role::Owner && ctx.principal.role == Role::Admin {
            return Err(self
                .deny(
                    event,
                    crate::Denial::Forbidden {
                        code: "role_not_permitted",
                        reason: "role admin may not issue owner keys".into(),
                    },
                )
                .await);
        }
        let name = crate::text::parse(&new.name, "name", "invalid_name", MAX_NAME)?;
        let name = name.as_str();
        let mut purposes = BTreeSet::new();
        for p in &new.purposes {
            let purpose = Purpose::parse(p).map_err(|e| {
                VaultError::invalid("invalid_purpose", format!("{p:?}: {e}"), Some("purposes"))
            })?;
            purposes.insert(purpose);
        }
        match role {
            Role::Member if purposes.is_empty() => {
                return Err(VaultError::invalid(
                    "purposes_required",
                    "member keys must name the purposes they may state",
                    Some("purposes"),
                ));
            }
            Role::Member => {}
            _ if !purposes.is_empty() => {
                return Err(VaultError::invalid(
                    "purposes_not_applicable",
                    format!("only member keys are limited to purposes; a {role} key is not"),
                    Some("purposes"),
                ));
            }
            _ => {}
        }
        let token = Token::generate("ward_key")?;
        let now = self.now();
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
        };
        event.detail = Some(serde_json::json!({ "key": key.id, "role": role }));
        let mut out = key_out(&key)?;
        out.token = Some(token.as_str().to_owned());
        self.inner
            .store
            .commit(vec![Op::InsertApiKey(key), Op::Audit(Box::new(event))])
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
        self.inner
            .store
            .commit(vec![Op::Audit(Box::new(event))])
            .await?;
        keys.iter().map(key_out).collect()
    }

    /// Revokes a tenant key at once.
    pub async fn revoke_key(&self, ctx: &RequestContext, tenant: Uuid, key: Uuid) -> Result<()> {
        let mut event = self.event(ctx, Action::KeyRevoke, Some(tenant));
        let row = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &row, Operation::ManageKeys),
            &event,
        )
        .await?;
        event.detail = Some(serde_json::json!({ "key": key }));
        let at = self.now();
        self.inner
            .store
            .commit(vec![
                Op::RevokeApiKey {
                    tenant: Some(tenant),
                    id: key,
                    at,
                },
                Op::Audit(Box::new(event)),
            ])
            .await?;
        self.inner
            .auth_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (p, _)| p.key_id != key);
        Ok(())
    }

    /// Stops every cached authentication of a tenant's keys (tenant destroyed).
    pub(crate) fn forget_tenant_tokens(&self, tenant: Uuid) {
        self.inner
            .auth_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (p, _)| p.tenant != Some(tenant));
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
            Some(t) if t.status != "destroyed" || p.role == Role::Operator => Ok(t),
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
        if p.role != Role::Operator && p.tenant != Some(id) {
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
            tenant_status: &row.status,
            operation,
            collection: None,
            purpose: None,
            restrictions: &[],
            expires_at: None,
            now: self.now(),
        }
    }
}

pub(crate) fn tenant_out(row: &TenantRow) -> TenantOut {
    TenantOut {
        id: row.id,
        name: row.name.clone(),
        status: row.status.clone(),
        region: row.region.clone(),
        created_at: row.created_at,
        destroy_after: row.destroy_after,
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
        token: None,
    })
}

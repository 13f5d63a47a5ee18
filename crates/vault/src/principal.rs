//! Who is calling: an authenticated API key and the role it carries.

use std::collections::BTreeSet;
use std::fmt;

use uuid::Uuid;
use ward_audit::Actor;
use ward_policy::Purpose;

use crate::{Result, VaultError};

/// The roles of DESIGN.md "Access decisions". Human logins arrive later; today every role is
/// held by an API key.
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
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The API key's id.
    pub key_id: Uuid,
    /// The tenant the key belongs to; `None` for operators.
    pub tenant: Option<Uuid>,
    /// The key's role.
    pub role: Role,
    /// Purposes a member key may state (empty for other roles: they are not limited).
    pub purposes: BTreeSet<Purpose>,
}

impl Principal {
    /// How the principal appears in audit events.
    pub fn actor(&self) -> Actor {
        let id = match self.role {
            Role::Operator => format!("operator:{}", self.key_id),
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

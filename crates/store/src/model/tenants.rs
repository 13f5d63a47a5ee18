//! Tenants, the keys and invitations that give access to one, and the store statistics by
//! tenant.

use super::*;

/// Where a tenant is in its lifecycle. Stored as its name (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenantStatus {
    /// In use.
    Active,
    /// Cancelled: frozen for its grace period, then destroyed; may be reactivated until then.
    Deactivated,
    /// Its key shredded: nothing of its data can be read any more.
    Destroyed,
}

impl TenantStatus {
    /// Every status.
    pub const ALL: [Self; 3] = [Self::Active, Self::Deactivated, Self::Destroyed];

    /// The stored and shown name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
            Self::Destroyed => "destroyed",
        }
    }

    /// The status named `s`, if any.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Decodes a stored name; anything else is a corrupt row.
    pub(crate) fn decode(s: &str) -> crate::Result<Self> {
        Self::parse(s).ok_or_else(|| crate::StoreError::Corrupt(format!("tenant status {s:?}")))
    }
}

impl std::fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant (an organization, the data controller).
#[derive(Debug, Clone)]
pub struct TenantRow {
    /// Tenant id.
    pub id: Uuid,
    /// Display name (an organization name, not personal data).
    pub name: String,
    /// Where it is in its lifecycle.
    pub status: TenantStatus,
    /// Hosting region label.
    pub region: Option<String>,
    /// Tenant key sealed under the root key; `None` once destroyed (crypto-shredded).
    pub wrapped_key: Option<Vec<u8>>,
    /// Root key version that wraps `wrapped_key`.
    pub root_key_version: u32,
    /// Version of the tenant key itself.
    pub key_version: u32,
    /// Per-tenant settings as JSON (retention overrides).
    pub settings: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last status change.
    pub status_changed_at: OffsetDateTime,
    /// When a deactivated tenant is to be destroyed.
    pub destroy_after: Option<OffsetDateTime>,
}

/// An API key; the token itself is never stored, only its SHA-256.
#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    /// Key id (shown in audit events).
    pub id: Uuid,
    /// Owning tenant; `None` for platform operator keys.
    pub tenant: Option<Uuid>,
    /// SHA-256 of the bearer token.
    pub token_hash: [u8; 32],
    /// Label chosen by whoever created it.
    pub name: String,
    /// `operator`, `owner`, `admin`, `member` or `auditor`.
    pub role: String,
    /// JSON array of purposes a member key may state.
    pub purposes: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Revocation time, if revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// When the key stops authenticating on its own; `None`: not until revoked.
    pub expires_at: Option<OffsetDateTime>,
}

/// An invitation: to become a tenant's first owner (an API key), or, with a `role`, for a
/// person to join the tenant as a user. The token is never stored, only its SHA-256, so a
/// copy of the database cannot be used to claim it.
#[derive(Debug, Clone)]
pub struct InvitationRow {
    /// Invitation id (appears in audit events).
    pub id: Uuid,
    /// The tenant whose owner key the invitation yields.
    pub tenant: Uuid,
    /// SHA-256 of the invitation token.
    pub token_hash: [u8; 32],
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// After this time the invitation cannot be claimed.
    pub expires_at: OffsetDateTime,
    /// When it was claimed; an invitation is claimed once.
    pub used_at: Option<OffsetDateTime>,
    /// The role of the membership it gives a person; `None` for a first-owner invitation.
    pub role: Option<String>,
    /// JSON array of the purposes a member may state (`None` without a role).
    pub purposes: Option<String>,
    /// When the membership it gives ends; `None` for a membership without end.
    pub membership_expires_at: Option<OffsetDateTime>,
}

/// What `/metrics` reports of the stored data: counts only, never a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Every tenant (destroyed ones included, with what they still hold) and its size.
    pub tenants: Vec<TenantSize>,
    /// The newest audit checkpoint: its tree size and when it was made.
    pub last_checkpoint: Option<(u64, OffsetDateTime)>,
}

/// How much one tenant stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantSize {
    /// Tenant id.
    pub tenant: Uuid,
    /// Its subjects (erased ones included until their rows go).
    pub subjects: u64,
    /// Its live records.
    pub records: u64,
}

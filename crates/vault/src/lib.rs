//! Ward's domain: tenants, subjects, records, access decisions and the audit trail of them.
//!
//! The [`Vault`] is what the HTTP server and the CLI talk to. It owns the policy, the key
//! hierarchy and a [`Store`]; every public method authenticates nothing (the caller passes an
//! already authenticated [`RequestContext`]), decides access through [`access::decide`],
//! validates input against the policy, seals data, and commits the change *together with its
//! audit event* in one store transaction. A method that returns an error has written nothing
//! except, for a denial, the denial's audit event.
#![warn(missing_docs)]

pub mod access;
mod audit_log;
mod auth_guard;
mod authn;
mod backup_events;
mod batch;
mod clock;
mod disclosure;
mod error;
pub mod gauges;
mod incidents;
mod keys;
mod monitor;
mod people;
pub mod permissions;
mod platform_keys;
mod principal;
mod record_rotation;
mod record_seal;
mod records;
mod request_state;
mod restore_check;
pub mod retention;
mod retry;
mod rights;
mod rotation;
mod sealed_text;
mod sealing;
mod tenant_settings;
mod tenants;
mod text;
pub mod webhook_target;
mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, AuditEvent, Outcome, SigningKey};
use ward_crypto::{Hasher, RootKeyring};
use ward_policy::Policy;
use ward_store::{Op, Store, TenantRow};

pub use access::{Denial, DisclosureGrant, Operation, PlatformOperation};
pub use audit_log::{
    AuditFilter, AuditPage, ConsistencyProof, InclusionProof, LogVerifyError, MAX_AUDIT_CURSOR,
    MAX_AUDIT_PAGE, VerifyReport, check_exported_checkpoint, consistency_from_store,
    event_leaf_hash, inclusion_from_store, verify_log, verify_tail,
};
pub use backup_events::{BackupJob, backup_event};
pub use batch::{BatchItem, BatchOutcome};
pub use clock::{Clock, ManualClock, SystemClock};
pub use disclosure::RecordOut;
pub use error::{Conflict, Result, VaultError};
pub use incidents::{
    AffectedTenantOut, CategoryOut, ContactOut, IncidentOut, MAX_INCIDENT_NOTE, MAX_INCIDENT_PAGE,
    MAX_INCIDENT_REFS, MAX_INCIDENT_TITLE, NOTIFICATION_DEADLINE, NOTIFICATION_DUE, NewIncident,
    NotificationDraft, TimelineOut,
};
pub use monitor::{AlertChange, AlertOut, MAX_ALERT_PAGE, evaluate_rules};
pub use people::{
    ARGON2_M_COST_KIB, ARGON2_P_COST, ARGON2_T_COST, BreakGlassNotice, CSRF_HEADER, CreatedUser,
    Email, GrantDecision, GrantOut, Joined, Login, LoginOut, MemberOut, MembershipChange, NewGrant,
    NewUser, PasswordChange, PasswordReset, ResetIssued, SESSION_COOKIE, SessionOut, TotpConfirm,
    TotpEnrolled, TotpStart, UserOut, totp_code,
};
pub use principal::{GrantAction, GrantScope, Membership, Principal, RequestContext, Role};
pub use record_rotation::KeyJob;
pub use records::{SubjectOut, WriteOptions};
pub use restore_check::DecryptionSample;
pub use retention::{Counts, RetentionOptions, RetentionReport};
pub use rights::{CompleteRequest, ErasureOut, KeptOut, NewRequest, RequestOut, RestrictionIn};
pub use rotation::{KeyStatus, RotationReport};
pub use tenant_settings::{SettingsChange, TenantSettings};
pub use tenants::{
    ClaimInvitation, Claimed, CreatedTenant, InvitationOut, KeyOut, NewInvitation, NewKey,
    NewTenant, TenantOut,
};
pub use webhooks::{
    ClaimedDelivery, CreatedWebhook, DeliveryOut, MAX_DELIVERY_ATTEMPTS, MAX_DELIVERY_PAGE,
    MAX_WEBHOOK_URL, MAX_WEBHOOKS, WEBHOOK_SECRET_LEN, WebhookOut, validate_webhook_url,
};

/// Everything a vault needs to start.
pub struct VaultConfig {
    /// Where data lives.
    pub store: Arc<dyn Store>,
    /// The loaded, validated policy.
    pub policy: Policy,
    /// Root key material from the key provider.
    pub root_keys: RootKeyring,
    /// Signs audit checkpoints.
    pub signing_key: SigningKey,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Name of this log in signed checkpoints (e.g. the deployment's host name).
    pub origin: String,
    /// Limits that have a sensible default ([`Limits::default`]).
    pub limits: Limits,
}

/// Deployment limits with defaults.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long an owner invitation can be claimed (default 72 hours).
    pub invitation_ttl: std::time::Duration,
    /// Least time between two checkpoints signed on request (default 60 s): signing costs a
    /// signature and a stored row, so callers may not make the deployment do it at will.
    pub checkpoint_interval: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            invitation_ttl: std::time::Duration::from_secs(72 * 3600),
            checkpoint_interval: std::time::Duration::from_secs(60),
        }
    }
}

/// The vault. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
    keys: keys::Keys,
    signer: SigningKey,
    origin: String,
    limits: Limits,
    /// Keyed hash of client IPs in audit events and the auth throttle: a random key held only
    /// in memory and replaced every `ip_hash_window` (numbered by the window it serves), so
    /// a stored hash cannot be traced back to an address once its window has passed.
    clients: Mutex<(i64, Hasher)>,
    /// Failed-authentication throttle and per-source failure counts.
    auth_guard: auth_guard::AuthGuard,
    /// Recently authenticated tokens; short-lived so a revocation on another server lands soon.
    auth_cache: Mutex<HashMap<[u8; 32], authn::CachedKey>>,
    /// Recently authenticated login sessions, by the SHA-256 of their id.
    session_cache: Mutex<HashMap<[u8; 32], people::sessions::CachedSession>>,
    /// Keys of people's sealed values (e-mail addresses, TOTP secrets).
    people: people::PeopleKeys,
    /// The platform keys operator webhook secrets are sealed under.
    webhook_keys: platform_keys::PlatformKeys,
    /// Wakes the webhook delivery worker after a commit queued deliveries.
    webhook_wake: tokio::sync::Notify,
    /// The platform keys operator incidents' title and notes are sealed under.
    incident_keys: platform_keys::PlatformKeys,
    /// Break-glass grants as they open, for whoever notifies tenants.
    break_glass: tokio::sync::broadcast::Sender<BreakGlassNotice>,
    /// Recently read tenant rows, for key material and settings on the write path. Access
    /// decisions never use the cached status: they read it fresh with the subject (or, for a
    /// new record without a purpose, from a remembered subject the commit checks again).
    tenant_cache: Mutex<HashMap<Uuid, (TenantRow, Instant)>>,
    /// Subjects new records were written for lately (see `records/remembered.rs`).
    subjects: records::RememberedSubjects,
    /// When this vault last set the stored-state gauges (`gauges`).
    gauges_at: Mutex<Option<Instant>>,
    /// Detection rules over the audit stream ([`monitor`]).
    monitor: monitor::Monitor,
    /// Alert writes of this process, one at a time, and the hits not yet written of alerts
    /// written lately (see `monitor/alerts.rs`).
    alert_writes: tokio::sync::Mutex<monitor::Recent>,
}

/// Which `ip_hash_window` `now` falls in: the client-IP key changes with it.
fn ip_hash_epoch(now: OffsetDateTime, policy: &Policy) -> i64 {
    let window = policy
        .security
        .ip_hash_window
        .as_duration()
        .whole_seconds()
        .max(1);
    now.unix_timestamp().div_euclid(window)
}

/// How long a cached tenant row is used (settings changed on another server apply after it).
const TENANT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a positive authentication is reused without asking the store again. Revocations
/// through this server take effect at once; through another server within this window.
const AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl Vault {
    /// Builds a vault over an opened store.
    pub fn new(config: VaultConfig) -> Result<Self> {
        let security = &config.policy.security;
        let clients = (
            ip_hash_epoch(config.clock.now(), &config.policy),
            Hasher::new(&ward_crypto::SecretKey::generate()?),
        );
        let auth_guard = auth_guard::AuthGuard::new(
            security.lockout_threshold,
            security.lockout_window.as_duration(),
            security.ip_hash_window.as_duration(),
        );
        let monitor = monitor::Monitor::new(&config.policy.monitoring);
        Ok(Self {
            inner: Arc::new(Inner {
                monitor,
                keys: keys::Keys::new(&config.root_keys)?,
                store: config.store,
                policy: Arc::new(config.policy),
                clock: config.clock,
                signer: config.signing_key,
                origin: config.origin,
                limits: config.limits,
                clients: Mutex::new(clients),
                auth_guard,
                auth_cache: Mutex::new(HashMap::new()),
                session_cache: Mutex::new(HashMap::new()),
                people: people::PeopleKeys::new(&config.root_keys)?,
                webhook_keys: platform_keys::PlatformKeys::new(
                    &config.root_keys,
                    ward_crypto::WEBHOOK_SECRET_KEY_LABEL,
                )?,
                webhook_wake: tokio::sync::Notify::new(),
                incident_keys: platform_keys::PlatformKeys::new(
                    &config.root_keys,
                    ward_crypto::INCIDENT_TEXT_KEY_LABEL,
                )?,
                break_glass: tokio::sync::broadcast::channel(256).0,
                tenant_cache: Mutex::new(HashMap::new()),
                subjects: records::RememberedSubjects::default(),
                gauges_at: Mutex::new(None),
                alert_writes: tokio::sync::Mutex::new(monitor::Recent::default()),
            }),
        })
    }

    /// Lets the vault reload the root keyring from `provider` when another process rotated
    /// it (an unknown root version appears, or before sealing a new tenant's material).
    pub fn set_key_provider(&self, provider: Arc<dyn ward_crypto::KeyProvider>) {
        self.inner.keys.set_provider(provider);
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The store (for maintenance tools).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Now, by the vault's clock, at the microsecond precision the store keeps (so a value
    /// returned on write equals the value read back).
    pub fn now(&self) -> OffsetDateTime {
        let t = self.inner.clock.now();
        t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
            .unwrap_or(t)
    }

    /// A new audit event for this request, allowed until said otherwise.
    fn event(&self, ctx: &RequestContext, action: Action, tenant: Option<Uuid>) -> AuditEvent {
        AuditEvent::allowed(
            self.now(),
            ctx.request_id.clone(),
            ctx.principal.actor_in(tenant, self.now()),
            action,
            tenant,
        )
        .with_client(ctx.client_ip.map(|ip| self.client_hash(ip)))
    }

    fn client_hash(&self, ip: std::net::IpAddr) -> String {
        let epoch = ip_hash_epoch(self.now(), &self.inner.policy);
        let mut clients = self.inner.clients.lock().unwrap_or_else(|p| p.into_inner());
        if clients.0 != epoch {
            // Should the RNG fail, the old key serves on and the swap is retried next time.
            if let Ok(key) = ward_crypto::SecretKey::generate() {
                *clients = (epoch, Hasher::new(&key));
            }
        }
        let h = clients.1.keyed("client-ip", ip.to_string().as_bytes());
        hex::encode(&h[..16])
    }

    /// Records a denial in the audit log (durably) and returns the caller's error.
    async fn deny(&self, mut event: AuditEvent, denial: Denial) -> VaultError {
        metrics::counter!("ward_access_denials_total", "code" => denial.code()).increment(1);
        event.outcome = Outcome::Denied;
        event.reason = Some(denial.reason().to_owned());
        match self.commit(vec![Op::Audit(Box::new(event))]).await {
            Ok(_) => denial.into_error(),
            // A denial that cannot be logged still denies; the store error is what to report.
            Err(e) => e.into(),
        }
    }

    /// The tenant row from the short-lived cache, reading it on a miss.
    async fn tenant_row_cached(&self, id: Uuid) -> Result<TenantRow> {
        if let Some((row, at)) = self
            .inner
            .tenant_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            && at.elapsed() < TENANT_CACHE_TTL
        {
            return Ok(row.clone());
        }
        let row = self.tenant_row(id).await?;
        let mut cache = self
            .inner
            .tenant_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(id, (row.clone(), Instant::now()));
        Ok(row)
    }

    /// Forgets a cached tenant row, and the tenant's remembered subjects, after this process
    /// changed the tenant (so its own next write decides on what it just did).
    fn forget_tenant_row(&self, id: Uuid) {
        self.inner
            .tenant_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.inner.subjects.forget_tenant(id);
    }

    /// Forgets a subject's unwrapped key and the subject itself as remembered for new
    /// records, after this process replaced or destroyed its key: a write prepared from
    /// either would only lose at commit and be prepared again.
    fn forget_subject(&self, tenant: Uuid, subject: Uuid) {
        self.inner.keys.forget_subject(tenant, subject);
        self.inner.subjects.forget(tenant, subject);
    }

    /// The tenant row, or a hidden-not-found denial.
    async fn tenant_row(&self, id: Uuid) -> Result<TenantRow> {
        self.inner
            .store
            .tenant(id)
            .await?
            .ok_or(VaultError::NotFound("tenant"))
    }

    /// Decides a platform operation (outside any tenant), and on denial audits it.
    pub(crate) async fn check_platform(
        &self,
        ctx: &RequestContext,
        op: PlatformOperation,
        event: &AuditEvent,
    ) -> Result<()> {
        match access::decide_platform(&ctx.principal, op) {
            Ok(()) => Ok(()),
            Err(denial) => Err(self.deny(event.clone(), denial).await),
        }
    }

    /// Decides a platform operation for a route that does the work itself. An allowed
    /// operation is recorded by the work's own events; a refusal is audited here (in the
    /// platform log), like every denial, so that probing staff routes with a tenant key is
    /// seen and counted by the repeated-denials rule.
    ///
    /// # Errors
    /// `Forbidden` when the permission table does not give the role the operation.
    pub async fn authorize_platform(
        &self,
        ctx: &RequestContext,
        op: PlatformOperation,
    ) -> Result<()> {
        let action = match op {
            PlatformOperation::CreateTenant => Action::TenantCreate,
            PlatformOperation::RotateKeys => Action::KeyRotate,
            PlatformOperation::RunRetention => Action::RetentionRun,
            PlatformOperation::ReadAlerts => Action::AlertRead,
            PlatformOperation::DecideAlerts => Action::AlertResolve,
            PlatformOperation::ManageWebhooks => Action::WebhookRead,
            PlatformOperation::ExamineDeployment => Action::DeploymentExamine,
            PlatformOperation::ReadIncidents => Action::IncidentRead,
            PlatformOperation::ManageIncidents => Action::IncidentNote,
        };
        let event = self.event(ctx, action, None);
        self.check_platform(ctx, op, &event).await
    }

    /// Decides, and on denial audits and returns the error.
    async fn check(&self, access: &access::Access<'_>, event: &AuditEvent) -> Result<()> {
        match access::decide(access) {
            Ok(()) => Ok(()),
            Err(denial) => Err(self.deny(event.clone(), denial).await),
        }
    }

    /// Like [`Self::check`], for an access that discloses field values: the grant it returns
    /// is what [`disclosure::disclose`] requires.
    async fn check_disclosure(
        &self,
        access: &access::Access<'_>,
        event: &AuditEvent,
    ) -> Result<access::DisclosureGrant> {
        match access::grant_disclosure(access) {
            Ok(grant) => Ok(grant),
            Err(denial) => Err(self.deny(event.clone(), denial).await),
        }
    }
}

fn parse_list(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

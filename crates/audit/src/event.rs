//! Audit events: what one access or change looked like, without the data it touched.
//!
//! An event names who acted, on what, for which purpose and with what outcome. It never holds
//! a personal-data value, so it survives the erasure of the subject it mentions and can be
//! shown to the tenant's auditors as it is. Its canonical bytes (the JSON serialization of
//! this struct, fields in declaration order) are the Merkle leaf data.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// One appended event. Field order is part of the leaf encoding: do not reorder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When the event happened (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The request that caused it, so a tenant can correlate with its own logs.
    pub request_id: String,
    /// The authenticated key or process that acted.
    pub actor: Actor,
    /// The organization whose data was touched, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Uuid>,
    /// The data subject concerned, by pseudonymous id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Uuid>,
    /// The record concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Uuid>,
    /// The collection concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// The stated purpose of a read (a fideslang data-use key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// What was attempted.
    pub action: Action,
    /// Whether it was allowed.
    pub outcome: Outcome,
    /// Why it was denied, in words that name the rule (never a data value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Keyed hash of the client IP: lets a tenant see that two accesses came from the same
    /// place without Ward keeping the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Counts and identifiers only (records affected, collections kept under hold, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl AuditEvent {
    /// An allowed event: `actor` did `action` in `tenant` at `at`, and nothing more is said
    /// yet; the caller fills in what applies (subject, purpose, client, detail, a denial).
    #[must_use]
    pub fn allowed(
        at: OffsetDateTime,
        request_id: impl Into<String>,
        actor: Actor,
        action: Action,
        tenant: Option<Uuid>,
    ) -> Self {
        Self {
            at,
            request_id: request_id.into(),
            actor,
            tenant,
            subject: None,
            record: None,
            collection: None,
            purpose: None,
            action,
            outcome: Outcome::Allowed,
            reason: None,
            client: None,
            detail: None,
        }
    }

    /// The event with `detail` (counts and identifiers only).
    #[must_use]
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// The event with the keyed hash of the client's address, when known.
    #[must_use]
    pub fn with_client(mut self, client: Option<String>) -> Self {
        self.client = client;
        self
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// API key id, `operator:<key id>`, or `system:<job>` for scheduled work.
    pub id: String,
    /// The role the actor held when acting.
    pub role: String,
}

impl Actor {
    /// Ward itself, acting on schedule (retention, checkpoints).
    pub fn system(job: &str) -> Self {
        Self {
            id: format!("system:{job}"),
            role: "system".into(),
        }
    }
}

/// Every audited kind of action.
macro_rules! actions {
    ($($(#[doc = $doc:literal])* $name:ident => $s:literal,)*) => {
        /// Every audited kind of action.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum Action {
            $($(#[doc = $doc])* $name,)*
        }

        impl Action {
            /// Every action, in declaration order: what a test that must cover each one
            /// iterates, so a new action is covered without editing the test.
            pub const ALL: &'static [Self] = &[$(Self::$name,)*];

            /// The snake_case name used in storage, filters and metrics.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$name => $s,)*
                }
            }

            /// Parses a snake_case name (audit filters).
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($s => Some(Self::$name),)*
                    _ => None,
                }
            }
        }
    };
}

actions! {
    /// A request whose credentials were missing, unknown or revoked.
    Authenticate => "authenticate",
    /// Tenant created.
    TenantCreate => "tenant_create",
    /// Tenant settings read.
    TenantRead => "tenant_read",
    /// Tenant cancelled (deactivated for its grace period).
    TenantCancel => "tenant_cancel",
    /// Tenant reactivated during its grace period.
    TenantReactivate => "tenant_reactivate",
    /// Tenant destroyed by shredding its key.
    TenantDestroy => "tenant_destroy",
    /// Full tenant archive exported.
    TenantExport => "tenant_export",
    /// A tenant's settings changed by its owner (detail: the setting, old and new value).
    TenantSettingsUpdate => "tenant_settings_update",
    /// API key issued.
    KeyCreate => "key_create",
    /// API key revoked.
    KeyRevoke => "key_revoke",
    /// API keys listed.
    KeyList => "key_list",
    /// Subject created.
    SubjectCreate => "subject_create",
    /// Subject found by external reference.
    SubjectLookup => "subject_lookup",
    /// Record created.
    RecordCreate => "record_create",
    /// One record read.
    RecordRead => "record_read",
    /// A subject's records listed (one event per record returned).
    RecordList => "record_list",
    /// Record changed (rectification).
    RecordUpdate => "record_update",
    /// Record deleted.
    RecordDelete => "record_delete",
    /// Exact-match search through a blind index.
    Lookup => "lookup",
    /// Everything about a subject exported (access / portability).
    SubjectExport => "subject_export",
    /// Subject erased by crypto-shredding.
    SubjectErase => "subject_erase",
    /// Processing restricted for some purposes (objection).
    SubjectRestrict => "subject_restrict",
    /// A restriction lifted.
    SubjectUnrestrict => "subject_unrestrict",
    /// Subject put under or released from a litigation hold.
    SubjectHold => "subject_hold",
    /// Data-subject request opened.
    RequestCreate => "request_create",
    /// Data-subject request read or listed.
    RequestRead => "request_read",
    /// Data-subject request completed or rejected.
    RequestUpdate => "request_update",
    /// A tenant shortened a collection's retention.
    RetentionOverride => "retention_override",
    /// Retention sweep (one summary event per run and tenant).
    RetentionRun => "retention_run",
    /// A record deleted on expiry.
    RecordExpire => "record_expire",
    /// A record anonymized on expiry.
    RecordAnonymize => "record_anonymize",
    /// Audit log read by a tenant.
    AuditRead => "audit_read",
    /// Key rotated.
    KeyRotate => "key_rotate",
    /// The deployment examined (`GET /v1/doctor`); only refusals are written, the report
    /// itself holds no tenant data.
    DeploymentExamine => "deployment_examine",
    /// Invitation issued: to become a tenant's first owner, or for a person to join it.
    InvitationCreate => "invitation_create",
    /// Invitation claimed: the tenant's owner key was issued to its bearer, or a person
    /// joined the tenant as a user.
    InvitationClaim => "invitation_claim",
    /// Audit checkpoint signed on request.
    CheckpointSign => "checkpoint_sign",
    /// Inclusion or consistency proof requested.
    AuditProof => "audit_proof",
    /// A scheduled backup ran (detail: result, snapshots, bytes per location, failures).
    BackupRun => "backup_run",
    /// A scheduled backup verification and restore drill ran (detail: result, problems).
    BackupVerify => "backup_verify",
    /// Expired backup snapshots were deleted (detail: snapshots and objects deleted).
    BackupPrune => "backup_prune",
    /// A change that a crash left half-applied was rolled back at the next start.
    CrashRecovery => "crash_recovery",
    /// User account created.
    UserCreate => "user_create",
    /// User account disabled, enabled, or its password reset token issued.
    UserUpdate => "user_update",
    /// A user logged in (or a login was refused).
    Login => "login",
    /// A user logged out or ended one of its sessions.
    Logout => "logout",
    /// A user changed or reset its password.
    PasswordChange => "password_change",
    /// A user enrolled in TOTP by itself (detail: the user and the `stage`: `started` when
    /// the secret is handed out, `confirmed` when it is activated).
    TotpEnrol => "totp_enrol",
    /// Support grant requested (or opened as break-glass).
    GrantRequest => "grant_request",
    /// Support grant approved, denied or revoked.
    GrantDecide => "grant_decide",
    /// A tenant's support grants listed.
    GrantList => "grant_list",
    /// A tenant's users (memberships) listed.
    MembershipList => "membership_list",
    /// A user's role in a tenant changed.
    MembershipUpdate => "membership_update",
    /// A user removed from a tenant.
    MembershipRemove => "membership_remove",
    /// A detection rule opened an alert (detail: alert id, rule, scope, severity).
    AlertOpen => "alert_open",
    /// Alerts listed.
    AlertRead => "alert_read",
    /// An alert acknowledged.
    AlertAcknowledge => "alert_acknowledge",
    /// An alert resolved.
    AlertResolve => "alert_resolve",
    /// A webhook created (detail: webhook id and URL; never the secret).
    WebhookCreate => "webhook_create",
    /// Webhooks or a webhook's delivery log listed.
    WebhookRead => "webhook_read",
    /// A webhook deleted.
    WebhookDelete => "webhook_delete",
    /// A test delivery queued for a webhook.
    WebhookTest => "webhook_test",
    /// An incident opened (detail: incident id, counts of tenants, subjects and alerts; never
    /// its title).
    IncidentOpen => "incident_open",
    /// Incidents listed or one read.
    IncidentRead => "incident_read",
    /// A line added to an incident's timeline (detail: incident, seq, kind; never the text).
    IncidentNote => "incident_note",
    /// A tenant marked notified of an incident.
    IncidentNotified => "incident_notified",
    /// An incident closed.
    IncidentClose => "incident_close",
    /// An incident's draft notification read for a tenant.
    IncidentNotificationRead => "incident_notification_read",
}

/// Whether the action went ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The access decision allowed it and it happened.
    Allowed,
    /// The access decision refused it.
    Denied,
}

impl Outcome {
    /// The snake_case name used in storage and filters.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
        }
    }
}

impl AuditEvent {
    /// The canonical bytes hashed into the Merkle tree.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing a struct of strings, numbers and JSON values cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

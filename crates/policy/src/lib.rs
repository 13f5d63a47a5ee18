//! Ward's policy as code.
//!
//! A SaaS company writes down what it promises about personal data in one TOML file (see
//! [`EXAMPLE_POLICY`]). This crate turns that file into a [`Policy`] whose types make the
//! promises checkable: every name, purpose, data category, period and anonymization strategy
//! is a validated value, so the rest of Ward never re-checks a string. The same [`Policy`]
//! validates each incoming record ([`Collection::validate`]) and prints itself back as the
//! human-readable privacy notice, the GDPR Art. 30 record of processing activities and the
//! subprocessor table ([`Policy::render`]), so the published policy cannot drift from what the
//! system enforces.
//!
//! The crate never touches storage, keys or the network: it is pure parsing, validation and
//! rendering, which is why every other Ward crate can depend on it.
//!
//! ```
//! use ward_policy::{EXAMPLE_POLICY, Policy, ValidationMode, ViolationCode};
//!
//! let policy = Policy::parse(EXAMPLE_POLICY, "saas-policy.toml")?;
//! let contact = policy.collection("contact").expect("the example declares `contact`");
//!
//! let record = serde_json::json!({"name": "Ann", "email": "Ann@Example.ORG"});
//! let normalized = contact.validate(record.as_object().unwrap(), ValidationMode::Create)?;
//! assert_eq!(normalized["email"], "Ann@example.org");
//!
//! let card = serde_json::json!({"name": "Ann", "email": "a@b.example", "company": "4111 1111 1111 1111"});
//! let refused = contact.validate(card.as_object().unwrap(), ValidationMode::Create).unwrap_err();
//! assert_eq!(refused.code, ViolationCode::CardDataRefused);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

mod anonymize;
mod card;
mod collection;
mod error;
mod load;
mod monitoring;
mod names;
mod period;
mod render;
mod taxonomy;
mod text;
mod types;

pub use crate::anonymize::{Anonymize, DateGranularity};
pub use crate::card::{contains_card_number, json_contains_card_number};
pub use crate::collection::{
    Art9Condition, Collection, Field, LegalBasis, LegalHold, OnExpiry, Retention, RetentionStart,
    ValidationMode,
};
pub use crate::error::{
    Diagnostic, FieldViolation, NameError, PolicyError, RetentionError, ValueError, ViolationCode,
};
pub use crate::monitoring::{
    MAX_RULE_THRESHOLD, MAX_RULE_WINDOW_SECONDS, MonitoringSettings, RuleName, RuleSettings,
    Severity,
};
pub use crate::names::{CollectionName, FieldName};
pub use crate::period::{Period, PeriodError};
pub use crate::taxonomy::{DataCategory, DataSubject, Purpose, SpecialCategory};
pub use crate::text::{FreeText, TextError, is_control_char};
pub use crate::types::{DEFAULT_MAX_LENGTH, FieldType, MAX_JSON_BYTES, index_form};

/// The example policy shipped with Ward, modelled on five real SaaS privacy policies.
///
/// It is embedded so `ward init` can write a starting point and so tests of every crate can
/// run against a realistic policy without reading files.
pub const EXAMPLE_POLICY: &str = include_str!("../../../examples/saas-policy.toml");

/// A loaded, fully validated policy file.
///
/// Holding a `Policy` is proof that the file passed every load check (names, taxonomy keys,
/// Art. 9 conditions, retention fields, anonymization compatibility, subprocessor
/// references), so callers can rely on those invariants without checking again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// Who the controller is and how data subjects reach it (GDPR Art. 13(1)(a)-(b)).
    pub organization: Organization,
    /// Every kind of record Ward may store, keyed by name.
    pub collections: BTreeMap<CollectionName, Collection>,
    /// How long audit events are kept and how often the log is checkpointed.
    pub audit: AuditSettings,
    /// What happens when a tenant cancels.
    pub tenants: TenantSettings,
    /// Retention of security data (hashed client IPs, server logs) and login protection.
    pub security: SecuritySettings,
    /// Detection rules over the audit stream (`[monitoring]`; defaults when absent).
    pub monitoring: MonitoringSettings,
    /// Third parties that receive personal data, as published in the subprocessor table.
    pub subprocessors: Vec<Subprocessor>,
    /// Where data and backups are kept, for the notice and for transfer records.
    pub regions: Regions,
}

/// The controller named in the notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    /// Legal name of the company publishing the policy.
    pub name: String,
    /// Privacy contact e-mail, validated as an address because the notice must be actionable.
    pub contact: String,
    /// Data protection officer, when one is appointed (GDPR Art. 37).
    pub dpo: Option<String>,
}

/// Audit-log settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditSettings {
    /// Events older than this are pruned (the Codific policy promises two months).
    pub retain_for: Period,
    /// How often a signed checkpoint of the Merkle log is written; bounds how much of the log
    /// an attacker could rewrite undetected.
    pub checkpoint_interval: Period,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            retain_for: Period::from_days_const(60),
            checkpoint_interval: Period::from_seconds_const(5 * 60),
        }
    }
}

/// Tenant lifecycle settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantSettings {
    /// How long a cancelled tenant stays deactivated (and recoverable) before its key is
    /// shredded; Dokos promises four weeks.
    pub grace_period: Period,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            grace_period: Period::from_days_const(28),
        }
    }
}

/// Security-data retention and login protection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecuritySettings {
    /// How long keyed hashes of client IPs are kept for brute-force protection.
    pub ip_hash_window: Period,
    /// How long server logs (IP, user agent, path) are kept.
    pub server_log_retain_for: Period,
    /// An idle session ends after this long, limiting what a stolen cookie is worth.
    pub session_idle_timeout: Period,
    /// A session ends this long after login however active it is.
    pub session_max_age: Period,
    /// Failed logins (per account or per IP) tolerated within `lockout_window`.
    pub lockout_threshold: u32,
    /// The sliding window over which failed logins are counted.
    pub lockout_window: Period,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        Self {
            ip_hash_window: Period::from_days_const(7),
            server_log_retain_for: Period::from_days_const(14),
            session_idle_timeout: Period::from_seconds_const(30 * 60),
            session_max_age: Period::from_seconds_const(12 * 3600),
            lockout_threshold: 10,
            lockout_window: Period::from_seconds_const(15 * 60),
        }
    }
}

/// A third party that receives personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subprocessor {
    /// Name as published; collections refer to it in `recipients`.
    pub name: String,
    /// Why data goes there, in words for the subprocessor table.
    pub purpose: String,
    /// Categories of data the subprocessor receives or stores.
    pub data_shared: Vec<DataCategory>,
    /// Where it processes data, including the transfer safeguard (e.g. "US (EU SCCs)").
    pub location: String,
}

/// How backups actually run in a deployment (from its server config), for the notice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupFacts {
    /// Number of locations every backup is written to.
    pub locations: usize,
    /// Regions of those locations, where configured.
    pub regions: Vec<String>,
    /// How often a backup is taken (`None`: not on a schedule).
    pub every: Option<String>,
    /// How often a backup is restored and verified.
    pub verify_every: String,
    /// Longest a data backup is kept.
    pub max_age: String,
    /// How long key backups are kept: after this, erased data is unrecoverable from any
    /// backup.
    pub key_window: String,
}

/// Hosting and backup locations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Regions {
    /// Where live data is hosted.
    pub hosting: Vec<String>,
    /// Where backups are replicated, which may differ from hosting.
    pub backups: Vec<String>,
}

/// The documents [`Policy::render`] can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RenderFormat {
    /// The Markdown privacy notice for data subjects (GDPR Art. 13/14 information).
    Notice,
    /// The GDPR Art. 30 record of processing activities, for the controller and regulators.
    Ropa,
    /// The subprocessor table published alongside the notice.
    Subprocessors,
}

impl Policy {
    /// Parses and validates a policy from TOML text.
    ///
    /// `origin` is only used to name the file in diagnostics. Every problem found is reported
    /// in one [`PolicyError`], so an operator fixes a file in one pass instead of one error per
    /// run.
    pub fn parse(source: &str, origin: &str) -> Result<Self, PolicyError> {
        load::parse(source, origin)
    }

    /// Reads and parses a policy file.
    ///
    /// A file that cannot be read is reported as a diagnostic too, so the CLI has one error
    /// path for every way a policy can be unusable.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let origin = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(source) => Self::parse(&source, &origin),
            Err(err) => Err(PolicyError {
                diagnostics: vec![Diagnostic {
                    file: origin,
                    line: 1,
                    column: 1,
                    message: format!("cannot read policy file: {err}"),
                }],
            }),
        }
    }

    /// Looks a collection up by its name as it appears in requests.
    pub fn collection(&self, name: &str) -> Option<&Collection> {
        self.collections.get(name)
    }

    /// Looks a subprocessor up by its published name.
    pub fn subprocessor(&self, name: &str) -> Option<&Subprocessor> {
        self.subprocessors.iter().find(|s| s.name == name)
    }

    /// Renders the policy as a human-readable document, generated from the same data Ward
    /// enforces so the published text cannot drift from the system's behaviour.
    pub fn render(&self, format: RenderFormat) -> String {
        self.render_with_backups(format, None)
    }

    /// Like [`Policy::render`], with the deployment's real backup configuration stated in
    /// the notice (schedule, locations and their regions, how long data and key backups
    /// are kept) instead of the policy's declared backup regions alone.
    #[must_use]
    pub fn render_with_backups(
        &self,
        format: RenderFormat,
        backups: Option<&BackupFacts>,
    ) -> String {
        match format {
            RenderFormat::Notice => render::notice(self, backups),
            RenderFormat::Ropa => render::ropa(self),
            RenderFormat::Subprocessors => render::subprocessors(self),
        }
    }
}

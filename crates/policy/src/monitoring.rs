//! The `[monitoring]` section: which detection rules watch the audit stream, and how hard.
//!
//! Every built-in rule has a default (the thresholds the issue names: bulk read 500 distinct
//! subjects in 10 minutes, 20 denials by one principal in 5 minutes, 10 failed authentications
//! per source or account in 5 minutes; the single-event rules fire on their first event), so
//! a policy that says nothing is monitored. A `[monitoring.rules.<name>]` table overrides some
//! of `threshold`, `window`, `severity` and `enabled`; an unknown rule name is a load error,
//! not a silently ignored table. The incident clock's rules (`incident_notification_due`,
//! `incident_notification_overdue`) fire once per incident at 48 and 72 hours: they take only
//! `enabled` and `severity`, and a `threshold` or `window` for them is a load error rather than
//! a setting that silently does nothing.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::period::Period;

macro_rules! rules {
    ($($(#[doc = $doc:literal])* $name:ident => $s:literal, $threshold:expr, $window:expr, $severity:ident;)*) => {
        /// A built-in detection rule.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum RuleName {
            $($(#[doc = $doc])* $name,)*
        }

        impl RuleName {
            /// Every rule, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$name,)*];

            /// The name used in the policy, in alerts and in metrics.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$name => $s,)*
                }
            }

            /// Parses a rule's name.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($s => Some(Self::$name),)*
                    _ => None,
                }
            }

            /// The settings a policy that does not mention the rule gets.
            pub fn default_settings(self) -> RuleSettings {
                match self {
                    $(Self::$name => RuleSettings {
                        enabled: true,
                        threshold: $threshold,
                        window: Period::from_seconds_const($window),
                        severity: Severity::$severity,
                    },)*
                }
            }
        }
    };
}

rules! {
    /// One principal reads more than `threshold` distinct subjects within `window`.
    BulkRead => "bulk_read", 500, 10 * 60, High;
    /// One principal is denied `threshold` times within `window`.
    RepeatedDenials => "repeated_denials", 20, 5 * 60, Medium;
    /// `threshold` failed authentications (bad API keys, failed logins) per source or per
    /// account within `window`.
    FailedAuthentication => "failed_authentication", 10, 5 * 60, High;
    /// Staff (support, operator) attempted tenant data without a support grant covering it.
    AccessWithoutGrant => "access_without_grant", 1, 5 * 60, High;
    /// A support user opened a break-glass grant.
    BreakGlass => "break_glass", 1, 5 * 60, High;
    /// A whole tenant was exported.
    TenantExport => "tenant_export", 1, 5 * 60, Medium;
    /// Verifying the audit log found it inconsistent.
    AuditVerificationFailure => "audit_verification_failure", 1, 5 * 60, Critical;
    /// A backup or a backup verification (restore drill) failed.
    BackupFailure => "backup_failure", 1, 5 * 60, High;
    /// The root key file or the data directory is readable by others than Ward.
    PermissionsTooOpen => "permissions_too_open", 1, 5 * 60, High;
    /// An open incident passed 48 hours with an affected tenant not yet notified (once per
    /// incident; `threshold` and `window` do not apply).
    IncidentNotificationDue => "incident_notification_due", 1, 5 * 60, High;
    /// An open incident passed the 72-hour notification deadline (GDPR Art. 33) with an
    /// affected tenant not notified (once per incident; `threshold` and `window` do not apply).
    IncidentNotificationOverdue => "incident_notification_overdue", 1, 5 * 60, Critical;
}

impl RuleName {
    /// Whether the rule is raised by the incident clock rather than counted over the audit
    /// stream: it fires once per incident, so only `enabled` and `severity` mean anything.
    pub fn is_clock(self) -> bool {
        matches!(
            self,
            Self::IncidentNotificationDue | Self::IncidentNotificationOverdue
        )
    }
}

impl fmt::Display for RuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Look today.
    Medium,
    /// Look now.
    High,
    /// Someone should be woken.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: &'static [Self] = &[Self::Low, Self::Medium, Self::High, Self::Critical];

    /// The name used in the policy, alerts and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Parses a severity's name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RuleSettings {
    /// Whether the rule runs.
    pub enabled: bool,
    /// How many matching events within `window` make a hit (at least 1).
    pub threshold: u32,
    /// The sliding window the threshold is counted over.
    pub window: Period,
    /// The severity of the alerts it opens.
    pub severity: Severity,
}

/// Largest accepted `threshold`: a window remembers up to this many events per key, so the
/// bound is also a memory bound.
pub const MAX_RULE_THRESHOLD: u32 = 100_000;

/// Longest accepted `window`: windows live in memory, and a day is already more than a
/// restart-free process can be relied on for.
pub const MAX_RULE_WINDOW_SECONDS: i64 = 24 * 3600;

/// The `[monitoring]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitoringSettings {
    /// Master switch (default on).
    pub enabled: bool,
    /// Every built-in rule's settings, defaults filled in.
    pub rules: BTreeMap<RuleName, RuleSettings>,
}

impl Default for MonitoringSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            rules: RuleName::ALL
                .iter()
                .map(|r| (*r, r.default_settings()))
                .collect(),
        }
    }
}

impl MonitoringSettings {
    /// The rule's settings when it runs, `None` when it or monitoring is disabled.
    pub fn rule(&self, rule: RuleName) -> Option<RuleSettings> {
        if !self.enabled {
            return None;
        }
        self.rules
            .get(&rule)
            .copied()
            .or_else(|| Some(rule.default_settings()))
            .filter(|s| s.enabled)
    }
}

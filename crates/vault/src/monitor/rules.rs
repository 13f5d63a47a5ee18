//! Which audit events each built-in rule looks at, and what it counts them by.
//!
//! Scope keys name principals (`actor:<audit actor id>`), tenants and sources by id or keyed
//! hash, never a data value: they are stored in alerts that operators read.

use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, AuditEvent, Outcome};
use ward_policy::RuleName;

/// One event as one rule sees it.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    /// The rule.
    pub(crate) rule: RuleName,
    /// What the rule counts by.
    pub(crate) scope: String,
    /// The tenant an alert would belong to.
    pub(crate) tenant: Option<Uuid>,
    /// For distinct counts: the subject.
    pub(crate) subject: Option<Uuid>,
    /// When.
    pub(crate) at: OffsetDateTime,
}

/// Actions that read a subject's data (what bulk reads count).
fn reads_subject(action: Action) -> bool {
    matches!(
        action,
        Action::RecordRead
            | Action::RecordList
            | Action::SubjectExport
            | Action::SubjectLookup
            | Action::Lookup
    )
}

/// Actions on a tenant's personal data, its rights and its log (what staff reach only under
/// a support grant).
fn touches_tenant_data(action: Action) -> bool {
    reads_subject(action)
        || matches!(
            action,
            Action::RecordCreate
                | Action::RecordUpdate
                | Action::RecordDelete
                | Action::SubjectCreate
                | Action::SubjectErase
                | Action::SubjectRestrict
                | Action::SubjectUnrestrict
                | Action::SubjectHold
                | Action::TenantExport
                | Action::AuditRead
                | Action::RequestCreate
                | Action::RequestRead
                | Action::RequestUpdate
        )
}

fn is_staff(role: &str) -> bool {
    matches!(role, "operator" | "support")
}

/// What the rules see in `event`: at most two observations (a staff denial on tenant data is
/// both a denial and an access without a grant). Failed authentication is not read from
/// events: those are aggregated before they are written, so the throttle reports each
/// failure to the monitor directly.
pub(crate) fn classify(event: &AuditEvent, mut out: impl FnMut(Observation)) {
    let actor = || format!("actor:{}", event.actor.id);
    let at = event.at;
    let tenant_scoped = (!is_staff(&event.actor.role))
        .then_some(event.tenant)
        .flatten();
    match event.outcome {
        Outcome::Allowed => {
            if reads_subject(event.action)
                && let Some(subject) = event.subject
            {
                out(Observation {
                    rule: RuleName::BulkRead,
                    scope: actor(),
                    tenant: tenant_scoped,
                    subject: Some(subject),
                    at,
                });
            }
            match event.action {
                Action::GrantRequest
                    if event
                        .detail
                        .as_ref()
                        .and_then(|d| d.get("break_glass"))
                        .and_then(serde_json::Value::as_bool)
                        == Some(true) =>
                {
                    out(Observation {
                        rule: RuleName::BreakGlass,
                        scope: format!("{}/tenant:{}", actor(), opt(event.tenant)),
                        tenant: event.tenant,
                        subject: None,
                        at,
                    });
                }
                Action::TenantExport => out(Observation {
                    rule: RuleName::TenantExport,
                    scope: format!("tenant:{}", opt(event.tenant)),
                    tenant: event.tenant,
                    subject: None,
                    at,
                }),
                Action::BackupRun | Action::BackupVerify
                    if event
                        .detail
                        .as_ref()
                        .and_then(|d| d.get("result"))
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(|r| r != "ok") =>
                {
                    out(Observation {
                        rule: RuleName::BackupFailure,
                        scope: event.action.as_str().to_owned(),
                        tenant: None,
                        subject: None,
                        at,
                    });
                }
                _ => {}
            }
        }
        Outcome::Denied => {
            if matches!(event.action, Action::Authenticate | Action::Login) {
                return;
            }
            out(Observation {
                rule: RuleName::RepeatedDenials,
                scope: actor(),
                tenant: tenant_scoped,
                subject: None,
                at,
            });
            if is_staff(&event.actor.role)
                && touches_tenant_data(event.action)
                && let Some(tenant) = event.tenant
            {
                out(Observation {
                    rule: RuleName::AccessWithoutGrant,
                    scope: format!("{}/tenant:{tenant}", actor()),
                    tenant: Some(tenant),
                    subject: None,
                    at,
                });
            }
        }
    }
}

fn opt(id: Option<Uuid>) -> String {
    id.map_or_else(|| "-".to_owned(), |t| t.to_string())
}

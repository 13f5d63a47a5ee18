//! The `[monitoring]` section: defaults, overrides, and refusals that name the field.

use ward_policy::{RuleName, Severity};

use crate::{BASE, diagnostics, load, single};

#[test]
fn defaults_when_absent() {
    let policy = load(BASE);
    let m = &policy.monitoring;
    assert!(m.enabled);
    let bulk = m.rule(RuleName::BulkRead).unwrap();
    assert_eq!((bulk.threshold, bulk.window.seconds()), (500, 600));
    let denials = m.rule(RuleName::RepeatedDenials).unwrap();
    assert_eq!((denials.threshold, denials.window.seconds()), (20, 300));
    let auth = m.rule(RuleName::FailedAuthentication).unwrap();
    assert_eq!((auth.threshold, auth.window.seconds()), (10, 300));
    for rule in RuleName::ALL {
        assert!(m.rule(*rule).is_some(), "{rule} runs by default");
    }
}

#[test]
fn overrides_apply() {
    let policy = load(&format!(
        "{BASE}[monitoring.rules.bulk_read]\nthreshold = 50\nwindow = \"1h\"\nseverity = \"critical\"\n\
         [monitoring.rules.tenant_export]\nenabled = false\n"
    ));
    let bulk = policy.monitoring.rule(RuleName::BulkRead).unwrap();
    assert_eq!(bulk.threshold, 50);
    assert_eq!(bulk.window.seconds(), 3600);
    assert_eq!(bulk.severity, Severity::Critical);
    assert!(policy.monitoring.rule(RuleName::TenantExport).is_none());
    let off = load(&format!("{BASE}[monitoring]\nenabled = false\n"));
    assert!(off.monitoring.rule(RuleName::BulkRead).is_none());
}

#[test]
fn unknown_rule_is_refused_by_name() {
    let d = single(&format!(
        "{BASE}[monitoring.rules.bulk_reads]\nthreshold = 5\n"
    ));
    assert!(
        d.message.contains("unknown rule `bulk_reads`"),
        "{}",
        d.message
    );
    assert!(d.message.contains("bulk_read"), "{}", d.message);
    assert_eq!(d.line, 10);
}

#[test]
fn bad_settings_are_refused_naming_the_field() {
    for (setting, field) in [
        ("threshold = 0", "`threshold`"),
        ("threshold = -3", "`threshold`"),
        ("threshold = 100001", "`threshold`"),
        ("threshold = \"many\"", "`threshold`"),
        ("window = \"0s\"", "`window`"),
        ("window = \"2d\"", "`window`"),
        ("severity = \"urgent\"", "`severity`"),
        ("enabled = 1", "`enabled`"),
        ("limit = 3", "unknown key `limit`"),
    ] {
        let all = diagnostics(&format!(
            "{BASE}[monitoring.rules.repeated_denials]\n{setting}\n"
        ));
        assert!(
            all.iter().any(|d| d.message.contains(field)
                && d.message.contains("[monitoring.rules.repeated_denials]")),
            "{setting}: {all:#?}"
        );
    }
    let d = single(&format!("{BASE}[monitoring]\nverbose = true\n"));
    assert!(d.message.contains("unknown key `verbose`"), "{}", d.message);
}

#[test]
fn incident_clock_rules_take_severity_and_enabled_only() {
    let policy = load(&format!(
        "{BASE}[monitoring.rules.incident_notification_due]\nseverity = \"critical\"\n\
         [monitoring.rules.incident_notification_overdue]\nenabled = false\n"
    ));
    let due = policy
        .monitoring
        .rule(RuleName::IncidentNotificationDue)
        .unwrap();
    assert_eq!(due.severity, Severity::Critical);
    assert!(
        policy
            .monitoring
            .rule(RuleName::IncidentNotificationOverdue)
            .is_none()
    );
    let defaults = load(BASE);
    assert_eq!(
        defaults
            .monitoring
            .rule(RuleName::IncidentNotificationOverdue)
            .unwrap()
            .severity,
        Severity::Critical
    );
    for setting in ["threshold = 3", "window = \"1h\""] {
        let d = single(&format!(
            "{BASE}[monitoring.rules.incident_notification_due]\n{setting}\n"
        ));
        assert!(d.message.contains("does not apply"), "{}", d.message);
    }
}

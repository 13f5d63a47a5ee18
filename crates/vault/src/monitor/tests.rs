//! Each built-in rule fires on a scripted scenario and stays silent on a normal workload of
//! the same size, with time given explicitly (no clock, no sleeping).

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use ward_audit::{Action, Actor, AuditEvent, Outcome};
use ward_policy::{MonitoringSettings, Policy, RuleName};
use ward_store::Op;

use super::{Hit, Monitor};

const T0: OffsetDateTime = datetime!(2026-03-02 10:00 UTC);

fn monitor() -> Monitor {
    Monitor::new(&MonitoringSettings::default())
}

fn event(actor: &str, role: &str, action: Action, at: OffsetDateTime) -> AuditEvent {
    AuditEvent::allowed(
        at,
        "r",
        Actor {
            id: actor.into(),
            role: role.into(),
        },
        action,
        Some(Uuid::from_u128(7)),
    )
}

/// Feeds events one commit each, with consecutive indices; returns the hits.
fn run(m: &Monitor, events: impl IntoIterator<Item = AuditEvent>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (i, e) in events.into_iter().enumerate() {
        let ops = vec![Op::Audit(Box::new(e))];
        let seen = m.observe_ops(&ops);
        hits.extend(m.feed(seen, &[i as u64]));
    }
    hits
}

fn read(actor: &str, subject: u128, at: OffsetDateTime) -> AuditEvent {
    let mut e = event(actor, "member", Action::RecordRead, at);
    e.subject = Some(Uuid::from_u128(subject));
    e
}

fn denied(actor: &str, role: &str, action: Action, at: OffsetDateTime) -> AuditEvent {
    let mut e = event(actor, role, action, at);
    e.outcome = Outcome::Denied;
    e.reason = Some("role member may not manage data-subject rights".into());
    e
}

fn rules(hits: &[Hit]) -> Vec<RuleName> {
    hits.iter().map(|h| h.rule).collect()
}

#[test]
fn bulk_read_fires_past_500_distinct_subjects_in_ten_minutes() {
    let m = monitor();
    let hits = run(
        &m,
        (0..501).map(|i| read("key:a", i, T0 + Duration::milliseconds(i as i64 * 100))),
    );
    assert_eq!(rules(&hits), [RuleName::BulkRead]);
    assert_eq!(hits[0].scope, "actor:key:a");
    assert_eq!(hits[0].tenant, Some(Uuid::from_u128(7)));
    assert_eq!(hits[0].events.len(), super::windows::MAX_HIT_EVENTS);
    assert_eq!(hits[0].events[0], 0);
}

#[test]
fn bulk_read_silent_on_a_normal_workload_of_the_same_size() {
    let m = monitor();
    // 501 reads of 50 subjects in a minute: busy, not bulk.
    let same = (0..501).map(|i| read("key:a", i % 50, T0 + Duration::milliseconds(i as i64 * 100)));
    // 501 distinct subjects spread over an hour and a half.
    let spread = (0..501).map(|i| read("key:b", i, T0 + Duration::seconds(i as i64 * 11)));
    // 501 distinct subjects, but by two principals.
    let split = (0..501).map(|i| {
        read(
            if i % 2 == 0 { "key:c" } else { "key:d" },
            i,
            T0 + Duration::milliseconds(i as i64),
        )
    });
    assert!(run(&m, same.chain(spread).chain(split)).is_empty());
}

#[test]
fn repeated_denials_fire_at_20_in_five_minutes() {
    let m = monitor();
    let hits = run(
        &m,
        (0..20).map(|i| {
            denied(
                "key:m",
                "member",
                Action::SubjectErase,
                T0 + Duration::seconds(i * 10),
            )
        }),
    );
    assert_eq!(rules(&hits), [RuleName::RepeatedDenials]);
    assert_eq!(hits[0].events, (0..16).collect::<Vec<u64>>());
}

#[test]
fn repeated_denials_silent_when_spread_or_allowed() {
    let m = monitor();
    let spread = (0..20).map(|i| {
        denied(
            "key:m",
            "member",
            Action::SubjectErase,
            T0 + Duration::seconds(i * 20),
        )
    });
    let allowed = (0..20).map(|i| {
        event(
            "key:n",
            "member",
            Action::RecordCreate,
            T0 + Duration::seconds(i),
        )
    });
    assert!(run(&m, spread.chain(allowed)).is_empty());
}

#[test]
fn failed_authentication_fires_per_source_and_per_credential() {
    let m = monitor();
    let mut hits = Vec::new();
    for i in 0..10 {
        hits.extend(m.observe_auth_failure(Some("src1"), None, T0 + Duration::seconds(i)));
    }
    assert_eq!(rules(&hits), [RuleName::FailedAuthentication]);
    assert_eq!(hits[0].scope, "source:src1");
    assert_eq!(hits[0].tenant, None);
    let mut hits = Vec::new();
    for i in 0..10u8 {
        // Ten sources guessing one account's password.
        hits.extend(m.observe_auth_failure(Some(&format!("s{i}")), Some(&[9; 16]), T0));
    }
    assert_eq!(rules(&hits), [RuleName::FailedAuthentication]);
    assert!(hits[0].scope.starts_with("credential:0909"));
}

#[test]
fn failed_authentication_silent_on_a_few_typos_a_day() {
    let m = monitor();
    let mut hits = Vec::new();
    for i in 0..10 {
        hits.extend(m.observe_auth_failure(
            Some("src1"),
            Some(&[1; 16]),
            T0 + Duration::minutes(i * 40),
        ));
    }
    assert!(hits.is_empty());
}

#[test]
fn access_without_grant_fires_on_staff_denied_tenant_data() {
    let m = monitor();
    let hits = run(&m, [denied("user:s/1", "support", Action::RecordRead, T0)]);
    assert_eq!(rules(&hits), [RuleName::AccessWithoutGrant]);
    assert_eq!(hits[0].tenant, Some(Uuid::from_u128(7)));
    assert_eq!(hits[0].events, [0]);
    // The same staff member's allowed access under a grant, and a member's denial: silent.
    let mut granted = read("user:s/grant:g", 1, T0);
    granted.actor.role = "support".into();
    assert!(
        run(
            &m,
            [granted, denied("key:m", "member", Action::RecordRead, T0)]
        )
        .is_empty()
    );
}

#[test]
fn break_glass_fires_on_break_glass_grants_only() {
    let m = monitor();
    let mut glass = event("user:s", "support", Action::GrantRequest, T0);
    glass.detail = Some(serde_json::json!({"break_glass": true}));
    let mut normal = event("user:s", "support", Action::GrantRequest, T0);
    normal.detail = Some(serde_json::json!({"break_glass": false}));
    assert!(run(&m, [normal]).is_empty());
    assert_eq!(rules(&run(&m, [glass])), [RuleName::BreakGlass]);
}

#[test]
fn tenant_export_fires_on_whole_tenant_exports_only() {
    let m = monitor();
    assert!(run(&m, [event("key:o", "owner", Action::SubjectExport, T0)]).is_empty());
    let hits = run(&m, [event("key:o", "owner", Action::TenantExport, T0)]);
    assert_eq!(rules(&hits), [RuleName::TenantExport]);
    assert_eq!(hits[0].scope, format!("tenant:{}", Uuid::from_u128(7)));
}

#[test]
fn backup_failure_fires_on_failed_runs_and_verifications_only() {
    let m = monitor();
    let backup = |action, result: &str| {
        let mut e = event("system:backup", "system", action, T0);
        e.tenant = None;
        e.detail = Some(serde_json::json!({"result": result}));
        e
    };
    assert!(
        run(
            &m,
            [
                backup(Action::BackupRun, "ok"),
                backup(Action::BackupVerify, "ok")
            ]
        )
        .is_empty()
    );
    let hits = run(
        &m,
        [
            backup(Action::BackupRun, "failed"),
            backup(Action::BackupVerify, "partial"),
        ],
    );
    assert_eq!(
        rules(&hits),
        [RuleName::BackupFailure, RuleName::BackupFailure]
    );
    assert_eq!(hits[0].scope, "backup_run");
    assert_eq!(hits[1].scope, "backup_verify");
}

#[test]
fn disabled_rules_and_monitoring_are_silent() {
    let policy = Policy::parse(
        &format!(
            "{}\n[monitoring.rules.tenant_export]\nenabled = false\n",
            ward_policy::EXAMPLE_POLICY
        ),
        "p.toml",
    )
    .unwrap();
    let m = Monitor::new(&policy.monitoring);
    assert!(run(&m, [event("key:o", "owner", Action::TenantExport, T0)]).is_empty());
    let off = Monitor::new(&MonitoringSettings {
        enabled: false,
        ..MonitoringSettings::default()
    });
    assert!(
        off.observe_ops(&[Op::Audit(Box::new(denied(
            "user:s",
            "support",
            Action::RecordRead,
            T0
        )))])
        .is_empty()
    );
}

#[test]
fn thresholds_come_from_the_policy() {
    let policy = Policy::parse(
        &format!(
            "{}\n[monitoring.rules.bulk_read]\nthreshold = 3\nwindow = \"1min\"\n",
            ward_policy::EXAMPLE_POLICY
        ),
        "p.toml",
    )
    .unwrap();
    let m = Monitor::new(&policy.monitoring);
    let hits = run(&m, (0..4).map(|i| read("key:a", i, T0)));
    assert_eq!(rules(&hits), [RuleName::BulkRead]);
}

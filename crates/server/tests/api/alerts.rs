//! Alerts over HTTP: detection rules open them as the audit log grows, deduplicated per rule
//! and scope; operators see all, a tenant's owner, admins and auditors their own; the owner
//! and operators acknowledge and resolve them; every change is audited.

use reqwest::StatusCode;
use serde_json::Value;
use ward_testkit::api::tenant_actions;
use ward_testkit::{TenantFixture, TestServer};

use crate::common::{NO_SUCH_ID, assert_error};

/// The example policy with repeated denials lowered to 3 in 5 minutes, to keep tests short.
async fn server() -> TestServer {
    TestServer::start_with(ward_testkit::api::with_quick_denial_alerts(crate::options())).await
}

/// `n` denied reads of the tenant's audit log by a member key.
async fn denials(s: &TestServer, t: &TenantFixture, member: &str, n: usize) {
    for _ in 0..n {
        let r = s.get(&format!("/v1/tenants/{}/audit", t.id), member).await;
        assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    }
}

fn alerts_of<'a>(list: &'a Value, rule: &str) -> Vec<&'a Value> {
    list.as_array()
        .expect("a list")
        .iter()
        .filter(|a| a["rule"] == rule)
        .collect()
}

#[tokio::test]
async fn a_burst_of_denials_opens_one_alert_with_a_count() {
    let s = server().await;
    let t = s.tenant("acme").await;
    let member = s
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    denials(&s, &t, &member, 7).await;

    let (st, all) = s.get("/v1/alerts", &s.operator).await;
    assert_eq!(st, StatusCode::OK, "{all}");
    let found = alerts_of(&all, "repeated_denials");
    assert_eq!(found.len(), 1, "{all}");
    let a = found[0];
    assert_eq!(
        a["count"], 2,
        "7 denials at threshold 3: two hits, one alert"
    );
    assert_eq!(a["status"], "open");
    assert_eq!(a["severity"], "medium");
    assert_eq!(a["tenant"], t.id.as_str());
    assert!(
        a["scope"].as_str().unwrap().starts_with("actor:key:"),
        "{a}"
    );
    assert_eq!(a["events"].as_array().unwrap().len(), 6, "{a}");
    assert!(a["first_seen"].as_str().is_some() && a["last_seen"].as_str().is_some());

    // The tenant sees its own alert; its log records the opening.
    let (st, own) = s
        .get(&format!("/v1/tenants/{}/alerts", t.id), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{own}");
    assert_eq!(alerts_of(&own, "repeated_denials").len(), 1);
    assert!(
        tenant_actions(&s, &t)
            .await
            .contains(&"alert_open".to_owned())
    );

    // The gauge counts it.
    let metrics = s.metrics_text().await;
    assert!(
        metrics.contains(r#"ward_alerts_open{rule="repeated_denials",severity="medium"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn owner_and_operator_close_alerts_others_cannot() {
    let s = server().await;
    let t = s.tenant("acme").await;
    let other = s.tenant("other").await;
    let member = s
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    let admin = s.key(&t.id, &t.owner, "admin", &[]).await;
    let auditor = s.key(&t.id, &t.owner, "auditor", &[]).await;
    denials(&s, &t, &member, 3).await;
    let (_, own) = s
        .get(&format!("/v1/tenants/{}/alerts", t.id), &t.owner)
        .await;
    let id = alerts_of(&own, "repeated_denials")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ack = format!("/v1/tenants/{}/alerts/{id}/acknowledge", t.id);
    let resolve = format!("/v1/tenants/{}/alerts/{id}/resolve", t.id);

    // Members see no alerts; admins and auditors see them but do not close them.
    assert_error(
        &s.get(&format!("/v1/tenants/{}/alerts", t.id), &member)
            .await,
        StatusCode::FORBIDDEN,
        "role_not_permitted",
    );
    for who in [&admin, &auditor] {
        let (st, _) = s.get(&format!("/v1/tenants/{}/alerts", t.id), who).await;
        assert_eq!(st, StatusCode::OK);
    }
    for who in [&member, &admin, &auditor] {
        assert_error(
            &s.post(&ack, who, Value::Null).await,
            StatusCode::FORBIDDEN,
            "role_not_permitted",
        );
    }
    // Another tenant: its keys do not learn of this tenant, and this alert is not in theirs.
    assert_error(
        &s.post(&ack, &other.owner, Value::Null).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &s.post(
            &format!("/v1/tenants/{}/alerts/{id}/acknowledge", other.id),
            &other.owner,
            Value::Null,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (st, theirs) = s
        .get(&format!("/v1/tenants/{}/alerts", other.id), &other.owner)
        .await;
    assert_eq!((st, theirs.as_array().unwrap().len()), (StatusCode::OK, 0));
    // Tenant keys have no platform-wide list.
    assert_error(
        &s.get("/v1/alerts", &t.owner).await,
        StatusCode::FORBIDDEN,
        "role_not_permitted",
    );

    let (st, a) = s.post(&ack, &t.owner, Value::Null).await;
    assert_eq!(st, StatusCode::OK, "{a}");
    assert_eq!(a["status"], "acknowledged");
    assert!(a["acknowledged_by"].as_str().unwrap().starts_with("key:"));
    assert_error(
        &s.post(&ack, &t.owner, Value::Null).await,
        StatusCode::CONFLICT,
        "alert_acknowledged",
    );
    // A further hit bumps the acknowledged alert rather than opening another.
    denials(&s, &t, &member, 3).await;
    let (_, all) = s.get("/v1/alerts", &s.operator).await;
    assert_eq!(alerts_of(&all, "repeated_denials").len(), 1);
    assert_eq!(alerts_of(&all, "repeated_denials")[0]["count"], 2);

    // The operator resolves it on the platform route.
    let (st, a) = s
        .post(
            &format!("/v1/alerts/{id}/resolve"),
            &s.operator,
            Value::Null,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{a}");
    assert_eq!(a["status"], "resolved");
    assert_error(
        &s.post(&resolve, &t.owner, Value::Null).await,
        StatusCode::CONFLICT,
        "alert_resolved",
    );
    assert_error(
        &s.post(
            &format!("/v1/alerts/{NO_SUCH_ID}/resolve"),
            &s.operator,
            Value::Null,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let actions = tenant_actions(&s, &t).await;
    for action in ["alert_open", "alert_acknowledge", "alert_resolve"] {
        assert!(
            actions.contains(&action.to_owned()),
            "{action} in {actions:?}"
        );
    }

    // After resolution, the next hit opens a new alert.
    denials(&s, &t, &member, 3).await;
    let (_, open) = s.get("/v1/alerts?status=open", &s.operator).await;
    assert_eq!(alerts_of(&open, "repeated_denials").len(), 1);
    assert_ne!(alerts_of(&open, "repeated_denials")[0]["id"], id.as_str());
    let (_, resolved) = s.get("/v1/alerts?status=resolved", &s.operator).await;
    assert_eq!(alerts_of(&resolved, "repeated_denials").len(), 1);
}

#[tokio::test]
async fn a_tenant_export_opens_an_alert_for_the_tenant() {
    let s = server().await;
    let t = s.tenant("acme").await;
    let resp = s
        .request(
            reqwest::Method::GET,
            &format!("/v1/tenants/{}/export", t.id),
        )
        .bearer_auth(&t.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // The export's event is written once the archive has been streamed to the end.
    let _archive = resp.text().await.unwrap();
    let (_, own) = s
        .get(&format!("/v1/tenants/{}/alerts", t.id), &t.owner)
        .await;
    let found = alerts_of(&own, "tenant_export");
    assert_eq!(found.len(), 1, "{own}");
    assert_eq!(found[0]["scope"], format!("tenant:{}", t.id));
    assert_eq!(found[0]["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn failed_authentication_bursts_are_one_platform_alert() {
    let s = server().await;
    let t = s.tenant("acme").await;
    for i in 0..12 {
        let (st, _) = s
            .get(
                &format!("/v1/tenants/{}", t.id),
                &format!("ward_sk_nonsense{i:04}"),
            )
            .await;
        assert!(
            st == StatusCode::UNAUTHORIZED || st == StatusCode::TOO_MANY_REQUESTS,
            "{st}"
        );
    }
    // The source is throttled now, valid keys included: wait out its lockout window.
    s.clock.advance(time::Duration::minutes(16));
    let (_, all) = s.get("/v1/alerts", &s.operator).await;
    let found = alerts_of(&all, "failed_authentication");
    assert_eq!(found.len(), 1, "{all}");
    assert!(found[0]["scope"].as_str().unwrap().starts_with("source:"));
    assert_eq!(found[0]["tenant"], Value::Null);
    assert_eq!(found[0]["severity"], "high");
    let (_, own) = s
        .get(&format!("/v1/tenants/{}/alerts", t.id), &t.owner)
        .await;
    assert!(alerts_of(&own, "failed_authentication").is_empty());
}

#[tokio::test]
async fn bad_list_parameters_name_the_field() {
    let s = server().await;
    for (query, field) in [
        ("status=closed", "status"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=x", "limit"),
    ] {
        let e = assert_error(
            &s.get(&format!("/v1/alerts?{query}"), &s.operator).await,
            StatusCode::BAD_REQUEST,
            if field == "status" {
                "invalid_status"
            } else {
                "invalid_limit"
            },
        );
        assert_eq!(e["field"], field);
    }
    assert_error(
        &s.get(&format!("/v1/alerts?before={NO_SUCH_ID}"), &s.operator)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn a_stale_backup_found_by_the_doctor_opens_an_alert() {
    let s = server().await;
    // A good backup recorded straight into the store (no rule sees it), then three days
    // without one: the doctor's backups check fails, and its failure is an alert.
    s.store
        .commit(vec![ward_vault::backup_event(
            ward_vault::BackupJob::Run,
            s.vault.now(),
            serde_json::json!({"result": "ok"}),
        )])
        .await
        .unwrap();
    let (_, before) = s.get("/v1/alerts", &s.operator).await;
    assert!(alerts_of(&before, "backup_failure").is_empty(), "{before}");
    s.clock.advance(time::Duration::days(3));
    let (status, report) = s.get("/v1/doctor", &s.operator).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let backups = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "backups")
        .cloned()
        .unwrap();
    assert_eq!(backups["status"], "fail", "{backups}");
    let (_, all) = s.get("/v1/alerts", &s.operator).await;
    let found = alerts_of(&all, "backup_failure");
    assert_eq!(found.len(), 1, "{all}");
    assert_eq!(found[0]["scope"], "doctor:backups");
}

/// Scopes are chosen by whoever triggers a rule (a source address, a key): past 200 open
/// alerts of one rule, new scopes fold into one overflow alert that counts them, so an
/// attacker with many addresses does not cost one row and one webhook delivery each.
#[tokio::test]
async fn many_scopes_of_one_rule_fold_into_an_overflow_alert() {
    let s = server().await;
    for i in 0..205 {
        s.vault
            .report_finding(
                ward_policy::RuleName::PermissionsTooOpen,
                &format!("path:/srv/ward-{i}"),
            )
            .await;
    }
    let (status, all) = s.get("/v1/alerts?status=open&limit=500", &s.operator).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let found = alerts_of(&all, "permissions_too_open");
    assert_eq!(found.len(), 201, "200 scoped alerts and one overflow");
    let overflow: Vec<_> = found
        .iter()
        .filter(|a| a["scope"] == "overflow:platform")
        .collect();
    assert_eq!(overflow.len(), 1, "{all}");
    assert_eq!(overflow[0]["count"], 5, "{}", overflow[0]);
}

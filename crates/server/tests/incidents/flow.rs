//! Incidents end to end: opened from a real alert, a timeline, tenant isolation, an operator
//! incident across two tenants where each sees only its own subjects, the draft notification
//! (JSON and Markdown, with categories, contact and count, without any record value), the
//! 48-hour and 72-hour alerts driven by the injected clock, marking notified stopping them,
//! refused input changing nothing, audit events, and the free text sealed in the database.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;
use ward_testkit::api::{tenant_actions, with_quick_denial_alerts};
use ward_testkit::{TenantFixture, TestServer};

/// A server on the suite's options with repeated denials lowered to 3 in 5 minutes (to make
/// real alerts).
async fn server() -> TestServer {
    TestServer::start_with(with_quick_denial_alerts(crate::options())).await
}

/// Three denied reads of the tenant's audit log by a member key open a `repeated_denials`
/// alert of the tenant; returns its id.
async fn alert(s: &TestServer, t: &TenantFixture) -> String {
    let member = s
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    for _ in 0..3 {
        let r = s.get(&format!("/v1/tenants/{}/audit", t.id), &member).await;
        assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    }
    let (st, list) = s
        .get(&format!("/v1/tenants/{}/alerts", t.id), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "repeated_denials")
        .expect("a repeated_denials alert")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn open_tenant(s: &TestServer, t: &TenantFixture, body: Value) -> Value {
    let (st, inc) = s
        .post(&format!("/v1/tenants/{}/incidents", t.id), &t.owner, body)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{inc}");
    inc
}

fn path(t: &TenantFixture, inc: &Value, rest: &str) -> String {
    format!(
        "/v1/tenants/{}/incidents/{}{rest}",
        t.id,
        inc["id"].as_str().unwrap()
    )
}

/// The alerts of `rule` for incident `inc` visible to the operator.
async fn clock_alerts(s: &TestServer, rule: &str, inc: &Value) -> Vec<Value> {
    let (st, list) = s.get("/v1/alerts?limit=500", &s.operator).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let scope = format!("incident:{}", inc["id"].as_str().unwrap());
    list.as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == rule && a["scope"] == scope.as_str())
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_tenant_opens_an_incident_from_its_alert_and_keeps_a_timeline() {
    let s = server().await;
    let t = s.tenant("acme").await;
    let alert_id = alert(&s, &t).await;
    let subject = s.subject(&t).await;
    let inc = open_tenant(
        &s,
        &t,
        json!({"title": "Backup disk lost in transit", "alerts": [alert_id], "subjects": [subject]}),
    )
    .await;
    assert_eq!(inc["status"], "open");
    assert_eq!(inc["tenant"], t.id.as_str());
    assert_eq!(inc["title"], "Backup disk lost in transit");
    assert_eq!(inc["alerts"], json!([alert_id]));
    assert_eq!(inc["hours_left"], 72);
    assert_eq!(inc["opened_at"], "2026-01-15T09:00:00Z");
    assert_eq!(inc["notification_due_at"], "2026-01-18T09:00:00Z");
    let affected = inc["affected"].as_array().unwrap();
    assert_eq!(affected.len(), 1);
    assert_eq!(affected[0]["tenant"], t.id.as_str());
    assert_eq!(affected[0]["subjects"], 1);
    assert_eq!(affected[0]["notified_at"], Value::Null);

    s.clock.advance(Duration::hours(2));
    let (st, after) = s
        .post(
            &path(&t, &inc, "/notes"),
            &t.owner,
            json!({"text": "Courier confirmed the parcel is missing", "kind": "note"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{after}");
    let (st, after) = s
        .post(
            &path(&t, &inc, "/notes"),
            &t.owner,
            json!({"text": "Disk was encrypted; key revoked", "kind": "measure"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{after}");
    let (st, got) = s.get(&path(&t, &inc, ""), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{got}");
    let timeline = got["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 2);
    assert_eq!(timeline[0]["seq"], 1);
    assert_eq!(timeline[0]["kind"], "note");
    assert_eq!(
        timeline[0]["text"],
        "Courier confirmed the parcel is missing"
    );
    assert_eq!(timeline[0]["at"], "2026-01-15T11:00:00Z");
    assert_eq!(timeline[1]["seq"], 2);
    assert_eq!(timeline[1]["kind"], "measure");
    assert_eq!(got["hours_left"], 70);

    let (st, list) = s
        .get(&format!("/v1/tenants/{}/incidents", t.id), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);

    let (st, closed) = s.post(&path(&t, &inc, "/close"), &t.owner, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{closed}");
    assert_eq!(closed["status"], "closed");
    let (st, again) = s.post(&path(&t, &inc, "/close"), &t.owner, json!({})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["error"]["code"], "incident_closed");
    let (st, late) = s
        .post(
            &path(&t, &inc, "/notes"),
            &t.owner,
            json!({"text": "too late", "kind": "note"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{late}");

    let actions = tenant_actions(&s, &t).await;
    for a in [
        "incident_open",
        "incident_note",
        "incident_read",
        "incident_close",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} missing: {actions:?}");
    }
    assert_eq!(
        actions.iter().filter(|x| *x == "incident_note").count(),
        2,
        "one event per note"
    );
}

#[tokio::test]
async fn another_tenant_cannot_see_or_touch_an_incident() {
    let s = server().await;
    let a = s.tenant("acme").await;
    let b = s.tenant("globex").await;
    let inc = open_tenant(&s, &a, json!({"title": "Acme's own incident"})).await;
    let id = inc["id"].as_str().unwrap();
    let on_b = |rest: &str| format!("/v1/tenants/{}/incidents/{id}{rest}", b.id);
    for (method, p, body) in [
        (Method::GET, on_b(""), None),
        (
            Method::POST,
            on_b("/notes"),
            Some(json!({"text": "intruder", "kind": "note"})),
        ),
        (Method::POST, on_b("/notified"), None),
        (Method::POST, on_b("/close"), None),
        (Method::GET, on_b("/notification"), None),
    ] {
        let (st, body) = s.call(method, &p, Some(&b.owner), body).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{p}: {body}");
    }
    // B's key on A's routes: A does not exist for it.
    let (st, _) = s.get(&path(&a, &inc, ""), &b.owner).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, list) = s
        .get(&format!("/v1/tenants/{}/incidents", b.id), &b.owner)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list, json!([]));
    // The operator's routes cover the operator's incidents only.
    let (st, _) = s.get(&format!("/v1/incidents/{id}"), &s.operator).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Nothing changed.
    let (_, got) = s.get(&path(&a, &inc, ""), &a.owner).await;
    assert_eq!(got["timeline"], json!([]));
    assert_eq!(got["status"], "open");
    assert_eq!(got["affected"][0]["notified_at"], Value::Null);
}

#[tokio::test]
async fn an_operator_incident_shows_each_tenant_only_its_own_subjects() {
    let s = server().await;
    let a = s.tenant("acme").await;
    let b = s.tenant("globex").await;
    let a1 = s.subject(&a).await;
    let a2 = s.subject(&a).await;
    let b1 = s.subject(&b).await;
    let (st, inc) = s
        .post(
            "/v1/incidents",
            &s.operator,
            json!({
                "title": "Storage node compromised",
                "subjects": [
                    {"tenant": a.id, "subject": a1},
                    {"tenant": a.id, "subject": a2},
                    {"tenant": b.id, "subject": b1},
                ],
            }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{inc}");
    assert_eq!(inc["tenant"], Value::Null);
    assert_eq!(inc["affected"].as_array().unwrap().len(), 2);
    let id = inc["id"].as_str().unwrap();

    let (st, seen_a) = s
        .get(&format!("/v1/tenants/{}/incidents/{id}", a.id), &a.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{seen_a}");
    let affected = seen_a["affected"].as_array().unwrap();
    assert_eq!(affected.len(), 1);
    assert_eq!(affected[0]["tenant"], a.id.as_str());
    assert_eq!(affected[0]["subjects"], 2);
    let text = seen_a.to_string();
    assert!(!text.contains(&b.id) && !text.contains(&b1), "{text}");

    let (st, seen_b) = s
        .get(&format!("/v1/tenants/{}/incidents", b.id), &b.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{seen_b}");
    assert_eq!(seen_b[0]["affected"].as_array().unwrap().len(), 1);
    assert_eq!(seen_b[0]["affected"][0]["subjects"], 1);
    let text = seen_b.to_string();
    assert!(
        !text.contains(&a.id) && !text.contains(&a1) && !text.contains(&a2),
        "{text}"
    );

    // The timeline of the operator's incident is the operator's.
    let (st, refused) = s
        .post(
            &format!("/v1/tenants/{}/incidents/{id}/notes", a.id),
            &a.owner,
            json!({"text": "tenant note", "kind": "note"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["code"], "operator_incident");
    let (st, _) = s
        .post(
            &format!("/v1/incidents/{id}/notes"),
            &s.operator,
            json!({"text": "Node isolated", "kind": "measure"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);

    // A marks itself notified; B is still pending.
    let (st, marked) = s
        .post(
            &format!("/v1/tenants/{}/incidents/{id}/notified", a.id),
            &a.owner,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{marked}");
    assert_eq!(marked["affected"][0]["notified_at"], "2026-01-15T09:00:00Z");
    let (st, again) = s
        .post(
            &format!("/v1/tenants/{}/incidents/{id}/notified", a.id),
            &a.owner,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{again}");
    let (st, op) = s.get(&format!("/v1/incidents/{id}"), &s.operator).await;
    assert_eq!(st, StatusCode::OK, "{op}");
    let rows = op["affected"].as_array().unwrap();
    let row = |t: &str| rows.iter().find(|r| r["tenant"] == t).unwrap().clone();
    assert!(row(&a.id)["notified_at"].is_string());
    assert_eq!(row(&b.id)["notified_at"], Value::Null);
    assert_eq!(row(&b.id)["subjects"], 1);
    let (st, list) = s.get("/v1/incidents", &s.operator).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);

    // The operator marks the rest.
    let (st, all) = s
        .post(
            &format!("/v1/incidents/{id}/notified"),
            &s.operator,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{all}");
    assert!(
        all["affected"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["notified_at"].is_string())
    );

    // Both tenants' logs show the operator's incident.
    for t in [&a, &b] {
        let actions = tenant_actions(&s, t).await;
        for x in ["incident_open", "incident_note", "incident_notified"] {
            assert!(actions.iter().any(|y| y == x), "{x}: {actions:?}");
        }
    }
}

#[tokio::test]
async fn the_draft_notification_has_categories_contact_and_count_but_no_value() {
    let s = server().await;
    let t = s.tenant("acme").await;
    let subject = s.subject(&t).await;
    s.contact(
        &t,
        &subject,
        "Zebulon Quarantine-Fairweather",
        "zebulon.qf@example.org",
    )
    .await;
    let inc = open_tenant(
        &s,
        &t,
        json!({"title": "Mailing list exported by mistake", "subjects": [subject]}),
    )
    .await;
    for (text, kind) in [
        ("The list went to a wrong recipient", "note"),
        ("Recipient confirmed deletion", "measure"),
    ] {
        let (st, b) = s
            .post(
                &path(&t, &inc, "/notes"),
                &t.owner,
                json!({"text": text, "kind": kind}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
    }
    let (st, draft) = s.get(&path(&t, &inc, "/notification"), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{draft}");
    assert_eq!(draft["title"], "Mailing list exported by mistake");
    assert_eq!(draft["collections"], json!(["contact"]));
    assert_eq!(draft["categories_basis"], "records");
    let cats: Vec<&str> = draft["data_categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["category"].as_str().unwrap())
        .collect();
    assert!(cats.contains(&"user.contact.email"), "{cats:?}");
    assert_eq!(draft["subjects_affected"], 1);
    assert_eq!(
        draft["what_happened"],
        json!(["The list went to a wrong recipient"])
    );
    assert_eq!(draft["measures"], json!(["Recipient confirmed deletion"]));
    assert_eq!(draft["contact"]["organization"], "Acme Cloud SAS");
    assert_eq!(draft["contact"]["contact"], "privacy@acme.example");
    assert_eq!(
        draft["contact"]["dpo"],
        "Camille Laurent <dpo@acme.example>"
    );
    assert_eq!(draft["opened_at"], "2026-01-15T09:00:00Z");
    assert_eq!(draft["deadline"], "2026-01-18T09:00:00Z");
    let text = draft.to_string();
    assert!(
        !text.contains("Zebulon") && !text.contains("zebulon.qf"),
        "{text}"
    );

    for (accept, query) in [
        ("text/markdown", ""),
        ("application/json", "?format=markdown"),
    ] {
        let resp = s
            .request(
                Method::GET,
                &format!("{}{query}", path(&t, &inc, "/notification")),
            )
            .bearer_auth(&t.owner)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/markdown"), "{ct}");
        let md = resp.text().await.unwrap();
        for part in [
            "Mailing list exported by mistake",
            "`user.contact.email`",
            "1 known",
            "Recipient confirmed deletion",
            "privacy@acme.example",
            "dpo@acme.example",
            "2026-01-18T09:00:00Z",
        ] {
            assert!(md.contains(part), "{part} missing:\n{md}");
        }
        assert!(
            !md.contains("Zebulon") && !md.contains("zebulon.qf"),
            "{md}"
        );
    }
    let (st, bad) = s
        .get(
            &format!("{}?format=pdf", path(&t, &inc, "/notification")),
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["error"]["field"], "format");

    // Without known subjects, every collection's categories are listed.
    let bare = open_tenant(&s, &t, json!({"title": "Unclear scope"})).await;
    let (_, draft) = s.get(&path(&t, &bare, "/notification"), &t.owner).await;
    assert_eq!(draft["categories_basis"], "all_collections");
    assert_eq!(draft["subjects_affected"], 0);
    assert!(draft["collections"].as_array().unwrap().len() > 1);

    // The operator names the tenant of a draft of its own incident.
    let (st, op) = s
        .post(
            "/v1/incidents",
            &s.operator,
            json!({"title": "Platform incident", "tenants": [t.id]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{op}");
    let id = op["id"].as_str().unwrap();
    let (st, missing) = s
        .get(&format!("/v1/incidents/{id}/notification"), &s.operator)
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{missing}");
    assert_eq!(missing["error"]["field"], "tenant");
    let (st, draft) = s
        .get(
            &format!("/v1/incidents/{id}/notification?tenant={}", t.id),
            &s.operator,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{draft}");
    assert_eq!(draft["tenant"], t.id.as_str());

    let actions = tenant_actions(&s, &t).await;
    assert!(
        actions
            .iter()
            .filter(|a| *a == "incident_notification_read")
            .count()
            >= 4,
        "{actions:?}"
    );
}

#[tokio::test]
async fn the_clock_raises_the_48_hour_then_the_72_hour_alert_once_each() {
    let s = server().await;
    let t = s.tenant("acme").await;
    let inc = open_tenant(&s, &t, json!({"title": "Clock test"})).await;

    s.clock.advance(Duration::hours(47));
    s.vault.check_incident_clocks().await.unwrap();
    assert!(
        clock_alerts(&s, "incident_notification_due", &inc)
            .await
            .is_empty()
    );

    s.clock.advance(Duration::minutes(61));
    // Two servers of one deployment check at once: one raises the alert.
    let other = s.vault_on(s.store.clone());
    let (x, y) = tokio::join!(
        s.vault.check_incident_clocks(),
        other.check_incident_clocks()
    );
    assert!(x.unwrap() + y.unwrap() <= 1);
    s.vault.check_incident_clocks().await.unwrap();
    other.check_incident_clocks().await.unwrap();
    let due = clock_alerts(&s, "incident_notification_due", &inc).await;
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0]["severity"], "high");
    assert_eq!(due[0]["tenant"], t.id.as_str());
    assert_eq!(due[0]["count"], 1);
    assert!(
        clock_alerts(&s, "incident_notification_overdue", &inc)
            .await
            .is_empty()
    );
    // The tenant sees it among its alerts.
    let (_, own) = s
        .get(&format!("/v1/tenants/{}/alerts", t.id), &t.owner)
        .await;
    assert!(
        own.as_array()
            .unwrap()
            .iter()
            .any(|a| a["rule"] == "incident_notification_due"),
        "{own}"
    );

    s.clock.advance(Duration::hours(24));
    s.vault.check_incident_clocks().await.unwrap();
    s.vault.check_incident_clocks().await.unwrap();
    let overdue = clock_alerts(&s, "incident_notification_overdue", &inc).await;
    assert_eq!(overdue.len(), 1, "{overdue:?}");
    assert_eq!(overdue[0]["severity"], "critical");
    assert_eq!(overdue[0]["count"], 1);
    assert_eq!(
        clock_alerts(&s, "incident_notification_due", &inc)
            .await
            .len(),
        1
    );
    let (_, got) = s.get(&path(&t, &inc, ""), &t.owner).await;
    assert_eq!(got["hours_left"], -1);
}

#[tokio::test]
async fn marking_the_tenant_notified_stops_the_alerts() {
    let s = server().await;
    let t = s.tenant("acme").await;
    let inc = open_tenant(&s, &t, json!({"title": "Reported in time"})).await;
    s.clock.advance(Duration::hours(20));
    let (st, marked) = s
        .post(&path(&t, &inc, "/notified"), &t.owner, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{marked}");
    assert_eq!(marked["affected"][0]["notified_at"], "2026-01-16T05:00:00Z");
    s.clock.advance(Duration::hours(60));
    s.vault.check_incident_clocks().await.unwrap();
    for rule in ["incident_notification_due", "incident_notification_overdue"] {
        assert!(clock_alerts(&s, rule, &inc).await.is_empty(), "{rule}");
    }
    assert!(
        tenant_actions(&s, &t)
            .await
            .iter()
            .any(|a| a == "incident_notified")
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_its_field_and_changes_nothing() {
    let s = server().await;
    let a = s.tenant("acme").await;
    let b = s.tenant("globex").await;
    let b_alert = alert(&s, &b).await;
    let unknown = "00000000-0000-4000-8000-000000000000";
    let list = format!("/v1/tenants/{}/incidents", a.id);
    for (body, field, code) in [
        (
            json!({"title": "x", "alerts": [unknown]}),
            "alerts",
            "unknown_alert",
        ),
        (
            json!({"title": "x", "alerts": [b_alert]}),
            "alerts",
            "unknown_alert",
        ),
        (json!({"title": "   "}), "title", "invalid_title"),
        (json!({"title": "a\u{7}b"}), "title", "control_character"),
        (
            json!({"title": "x", "subjects": [unknown]}),
            "subjects",
            "unknown_subject",
        ),
        (
            json!({"title": "x", "tenants": [b.id]}),
            "tenants",
            "tenants_not_allowed",
        ),
    ] {
        let (st, err) = s.post(&list, &a.owner, body.clone()).await;
        assert!(st.is_client_error(), "{body}: {st} {err}");
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
        assert_eq!(err["error"]["code"], code, "{body}: {err}");
    }
    let (st, err) = s.post(&list, &a.owner, json!({"alerts": []})).await;
    assert!(st.is_client_error(), "{err}");
    let (_, none) = s.get(&list, &a.owner).await;
    assert_eq!(none, json!([]), "nothing was opened");

    for (body, field) in [
        (json!({"title": "x", "tenants": [unknown]}), "tenants"),
        (json!({"title": "x"}), "tenants"),
    ] {
        let (st, err) = s.post("/v1/incidents", &s.operator, body.clone()).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {err}");
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
    }
    let (_, none) = s.get("/v1/incidents", &s.operator).await;
    assert_eq!(none, json!([]));

    let inc = open_tenant(&s, &a, json!({"title": "Valid"})).await;
    for (body, field) in [
        (json!({"text": "x", "kind": "rumour"}), "kind"),
        (json!({"text": "", "kind": "note"}), "text"),
        (json!({"text": "a\tb", "kind": "note"}), "text"),
        (json!({"text": "a\u{1b}[2Jb", "kind": "note"}), "text"),
    ] {
        let (st, err) = s
            .post(&path(&a, &inc, "/notes"), &a.owner, body.clone())
            .await;
        assert!(st.is_client_error(), "{body}: {err}");
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
    }
    let (_, got) = s.get(&path(&a, &inc, ""), &a.owner).await;
    assert_eq!(got["timeline"], json!([]));
    // A note may span lines (a carriage return before a line break is dropped).
    let (st, note) = s
        .post(
            &path(&a, &inc, "/notes"),
            &a.owner,
            json!({"text": "Reported at 09:10.\r\nDisk encrypted.", "kind": "note"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{note}");
    let (_, got) = s.get(&path(&a, &inc, ""), &a.owner).await;
    assert_eq!(
        got["timeline"][0]["text"],
        "Reported at 09:10.\nDisk encrypted."
    );

    // Roles: a member may not read or open incidents; an auditor reads but does not open.
    let member = s
        .key(&a.id, &a.owner, "member", &["essential.service"])
        .await;
    let (st, _) = s.get(&list, &member).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let auditor = s.key(&a.id, &a.owner, "auditor", &[]).await;
    let (st, _) = s.get(&list, &auditor).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s.post(&list, &auditor, json!({"title": "no"})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // A tenant key on the operator's routes.
    let (st, _) = s.get("/v1/incidents", &a.owner).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn title_and_notes_are_never_stored_in_clear() {
    let s = server().await;
    let t = s.tenant("acme").await;
    let title = "Plaintext-canary-title Wilhelmina Oberholzer";
    let note = "Plaintext-canary-note Bartholomew Quist";
    let op_title = "Plaintext-canary-operator Ottoline Vrabec";
    let op_note = "Plaintext-canary-opnote Florentyna Achterberg";
    let inc = open_tenant(&s, &t, json!({"title": title})).await;
    let (st, _) = s
        .post(
            &path(&t, &inc, "/notes"),
            &t.owner,
            json!({"text": note, "kind": "note"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, op) = s
        .post(
            "/v1/incidents",
            &s.operator,
            json!({"title": op_title, "tenants": [t.id]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{op}");
    let (st, _) = s
        .post(
            &format!("/v1/incidents/{}/notes", op["id"].as_str().unwrap()),
            &s.operator,
            json!({"text": op_note, "kind": "measure"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    // Both read back in clear through the API.
    let (_, got) = s.get(&path(&t, &inc, ""), &t.owner).await;
    assert_eq!(got["title"], title);
    assert_eq!(got["timeline"][0]["text"], note);
    let (_, got) = s
        .get(
            &format!(
                "/v1/tenants/{}/incidents/{}",
                t.id,
                op["id"].as_str().unwrap()
            ),
            &t.owner,
        )
        .await;
    assert_eq!(got["title"], op_title);
    assert_eq!(got["timeline"][0]["text"], op_note);

    // The stored rows (either backend) hold ciphertext only.
    for id in [inc["id"].as_str().unwrap(), op["id"].as_str().unwrap()] {
        let view = s
            .store
            .incident(id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let mut stored = view.incident.title.clone();
        for n in &view.notes {
            stored.extend_from_slice(&n.text);
        }
        assert!(!ward_testkit::contains_bytes(&stored, b"canary"));
    }
    // And no file of the data directory (the SQLite database, its WAL) has the text.
    for (file, bytes) in s.data_dir_bytes() {
        for canary in [
            "Plaintext-canary",
            "Wilhelmina",
            "Bartholomew",
            "Ottoline",
            "Florentyna",
        ] {
            assert!(
                !ward_testkit::contains_bytes(&bytes, canary.as_bytes()),
                "{canary} in clear in {}",
                file.display()
            );
        }
    }
}

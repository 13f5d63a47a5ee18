//! Support grants: 404 without one, request → approve → read (audited with the grant id and
//! visible to the tenant) → expiry → 404; break-glass notifies.

use reqwest::{Method, StatusCode};
use serde_json::json;
use ward_vault::Role;

use crate::common::*;

#[tokio::test]
async fn support_reads_only_under_an_approved_live_grant_and_the_tenant_sees_it() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv).await;
    let sup = account(&srv, "sue@example.com", Role::Support, None, true).await;
    let session = login(&srv, &sup).await;
    let read = read_path(&t.id, &s, &r);
    let (st, b) = get_as(&srv, &session, &read).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "no grant: {b}");
    // The operator's key gets 404 too.
    let (st, _) = srv.get(&read, &srv.operator).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let grants = format!("/v1/tenants/{}/support-grants", t.id);
    let (st, g) = call(
        &srv,
        &session,
        Method::POST,
        &grants,
        Some(json!({
            "ticket": "SUP-1234",
            "justification": "customer cannot see their address",
            "collections": ["contact"],
            "actions": ["read"],
            "duration": "4h",
        })),
        true,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    assert_eq!(g["status"], "requested");
    let grant = g["id"].as_str().unwrap().to_owned();
    let (st, _) = get_as(&srv, &session, &read).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "requested is not approved");
    // Support cannot approve its own grant.
    let approve = format!("{grants}/{grant}/approve");
    let (st, b) = call(&srv, &session, Method::POST, &approve, None, true).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    let (st, g) = srv.post(&approve, &t.owner, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{g}");
    assert_eq!(g["live"], true);
    let (st, rec) = get_as(&srv, &session, &read).await;
    assert_eq!(st, StatusCode::OK, "{rec}");
    assert_eq!(rec["fields"]["name"], "Ada Lovelace");
    // Outside the grant's scope: a write.
    let (st, _) = write_contact(&srv, &session, &t, &s).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // The tenant's audit log names the grant, and the list counts its uses.
    let log = srv.tenant_audit(&t, "action=record_read").await;
    let actor = format!("user:{}/grant:{grant}", sup.id);
    assert!(
        log["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"]["id"] == actor.as_str()),
        "{log}"
    );
    let (st, list) = srv.get(&grants, &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list[0]["ticket"], "SUP-1234");
    assert!(list[0]["use_count"].as_u64().unwrap() >= 1, "{list}");
    // A grant of another collection discloses nothing of this one.
    let other = account(&srv, "sal@example.com", Role::Support, None, true).await;
    let other_session = login(&srv, &other).await;
    let (st, g) = call(
        &srv,
        &other_session,
        Method::POST,
        &grants,
        Some(json!({
            "ticket": "SUP-2", "justification": "job application question",
            "collections": ["job_application"], "actions": ["read"], "duration": "1h",
        })),
        true,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let (st, _) = srv
        .post(
            &format!("{grants}/{}/approve", g["id"].as_str().unwrap()),
            &t.owner,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, b) = get_as(&srv, &other_session, &read).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{b}");
    let list = format!(
        "/v1/tenants/{}/subjects/{s}/records?purpose=essential.service",
        t.id
    );
    let (st, b) = get_as(&srv, &other_session, &list).await;
    assert!(!b.to_string().contains("Ada"), "{st}: {b}");
    // Expiry by the injected clock.
    srv.clock.advance(time::Duration::seconds(4 * 3600 + 1));
    let fresh = login(&srv, &sup).await;
    let (st, _) = get_as(&srv, &fresh, &read).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "expired grant");
}

#[tokio::test]
async fn revocation_ends_a_grant_at_once_and_durations_are_bounded() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv).await;
    let sup = account(&srv, "sam@example.com", Role::Support, None, true).await;
    let session = login(&srv, &sup).await;
    let grants = format!("/v1/tenants/{}/support-grants", t.id);
    let body = |duration: &str, break_glass: bool| {
        json!({
            "ticket": "SUP-9", "justification": "outage", "collections": ["contact"],
            "actions": ["read"], "duration": duration, "break_glass": break_glass,
        })
    };
    for (d, bg) in [("73h", false), ("5h", true), ("0h", false), ("soon", false)] {
        let (st, b) = call(
            &srv,
            &session,
            Method::POST,
            &grants,
            Some(body(d, bg)),
            true,
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{d}: {b}");
        assert_eq!(b["error"]["code"], "invalid_duration");
    }
    let (st, g) = call(
        &srv,
        &session,
        Method::POST,
        &grants,
        Some(body("72h", false)),
        true,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let grant = g["id"].as_str().unwrap();
    let (st, _) = srv
        .post(&format!("{grants}/{grant}/approve"), &t.owner, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
    let read = read_path(&t.id, &s, &r);
    let (st, _) = get_as(&srv, &session, &read).await;
    assert_eq!(st, StatusCode::OK);
    let (st, g) = srv
        .post(&format!("{grants}/{grant}/revoke"), &t.owner, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{g}");
    assert_eq!(g["status"], "revoked");
    let (st, _) = get_as(&srv, &session, &read).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "revoked");
}

#[tokio::test]
async fn break_glass_opens_at_once_and_notifies() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv).await;
    let sup = account(&srv, "sid@example.com", Role::Support, None, true).await;
    let session = login(&srv, &sup).await;
    let mut notices = srv.vault.subscribe_break_glass();
    let (st, g) = call(
        &srv,
        &session,
        Method::POST,
        &format!("/v1/tenants/{}/support-grants", t.id),
        Some(json!({
            "ticket": "INC-7", "justification": "data corruption, owner unreachable",
            "collections": ["contact"], "actions": ["read"], "duration": "2h",
            "break_glass": true,
        })),
        true,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    assert_eq!(g["status"], "approved");
    assert_eq!(g["live"], true);
    let notice = notices.try_recv().expect("a break-glass notice");
    assert_eq!(notice.tenant.to_string(), t.id);
    assert_eq!(notice.grant.to_string(), g["id"].as_str().unwrap());
    let (st, _) = get_as(&srv, &session, &read_path(&t.id, &s, &r)).await;
    assert_eq!(st, StatusCode::OK);
    let log = srv.tenant_audit(&t, "action=grant_request").await;
    assert_eq!(log["events"][0]["detail"]["break_glass"], true, "{log}");
}

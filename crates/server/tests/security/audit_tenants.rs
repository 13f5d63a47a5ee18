//! Who may read which log: tenants never see each other's events, only owners, admins and
//! auditors read the audit view, and a denied request cannot smuggle text into another
//! tenant's log, because the log is itself personal data that must stay inside its tenant.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::audit_common::{call, one, s, traffic};
use crate::support::{audit_all, send, with_rid};

#[tokio::test]
async fn tenants_never_see_each_others_events() {
    let srv = crate::start().await;
    let a = srv.tenant("Isolation A").await;
    let b = srv.tenant("Isolation B").await;
    let auditor_a = srv.key(&a.id, &a.owner, "auditor", &[]).await;
    let auditor_b = srv.key(&b.id, &b.owner, "auditor", &[]).await;
    let (sa, ra) = traffic(&srv, &a, "ten-a").await;
    let (sb, rb) = traffic(&srv, &b, "ten-b").await;

    // The operator touches A: these accesses belong in A's log.
    call(
        &srv,
        Method::GET,
        &format!("/v1/tenants/{}", a.id),
        &srv.operator,
        None,
        "op-read-a",
        StatusCode::OK,
    )
    .await;
    call(
        &srv,
        Method::POST,
        &format!("/v1/tenants/{}/keys", a.id),
        &srv.operator,
        Some(json!({ "name": "support", "role": "admin" })),
        "op-key-a",
        StatusCode::FORBIDDEN,
    )
    .await;
    let r = call(
        &srv,
        Method::GET,
        &format!("/v1/tenants/{}/audit", a.id),
        &srv.operator,
        None,
        "op-audit-a",
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(r.code(), "not_found", "{}", r.text);

    // A's keys cannot read B's log (hidden as not found), nor the other way round.
    for (token, rid) in [
        (&a.owner, "ten-a-peek-owner"),
        (&auditor_a, "ten-a-peek-auditor"),
    ] {
        let r = call(
            &srv,
            Method::GET,
            &format!("/v1/tenants/{}/audit", b.id),
            token,
            None,
            rid,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert!(!r.text.contains("ten-b"), "{}", r.text);
    }
    call(
        &srv,
        Method::GET,
        &format!("/v1/tenants/{}/audit", a.id),
        &b.owner,
        None,
        "ten-b-peek-owner",
        StatusCode::NOT_FOUND,
    )
    .await;

    for (tenant, token, own, other, other_ids) in [
        (&a, &a.owner, "ten-a", "ten-b", [&b.id, &sb, &rb]),
        (&a, &auditor_a, "ten-a", "ten-b", [&b.id, &sb, &rb]),
        (&b, &b.owner, "ten-b", "ten-a", [&a.id, &sa, &ra]),
        (&b, &auditor_b, "ten-b", "ten-a", [&a.id, &sa, &ra]),
    ] {
        let events = audit_all(&srv, &tenant.id, token, "").await;
        assert!(!events.is_empty());
        for e in &events {
            assert_eq!(
                e["tenant"],
                tenant.id.as_str(),
                "foreign event in {own}'s view: {e}"
            );
            let text = e.to_string();
            for id in other_ids {
                assert!(
                    !text.contains(id.as_str()),
                    "{own}'s view mentions {other}'s id {id}: {e}"
                );
            }
        }
        // Own traffic is there, complete.
        for suffix in ["subject", "create", "read", "denied"] {
            assert_eq!(
                with_rid(&events, &format!("{own}-{suffix}")).len(),
                1,
                "{own}-{suffix} missing from {own}'s view"
            );
        }
        // Events caused by the other tenant's keys are not shown here, except their attempts
        // on this tenant (which are accesses to this tenant).
        for e in &events {
            let rid = s(&e["request_id"]);
            if rid.starts_with(other) {
                assert!(
                    rid.contains("peek"),
                    "{other}'s event {rid} leaked into {own}'s view: {e}"
                );
                assert_eq!(e["outcome"], "denied", "{e}");
            }
        }
    }

    // Operator accesses to A appear in A's view, allowed or denied, and nowhere else.
    let a_events = audit_all(&srv, &a.id, &a.owner, "").await;
    for (rid, action, outcome) in [
        ("op-read-a", "tenant_read", "allowed"),
        ("op-key-a", "key_create", "denied"),
        ("op-audit-a", "audit_read", "denied"),
    ] {
        let e = one(&a_events, rid);
        assert_eq!(e["action"], action, "{e}");
        assert_eq!(e["outcome"], outcome, "{e}");
        assert!(s(&e["actor"]["id"]).starts_with("operator:"), "{e}");
    }
    let b_events = audit_all(&srv, &b.id, &b.owner, "").await;
    for rid in ["op-read-a", "op-key-a", "op-audit-a"] {
        assert!(with_rid(&b_events, rid).is_empty(), "{rid} in B's view");
    }
    // A's peeks at B are recorded as denied accesses to B.
    for rid in ["ten-a-peek-owner", "ten-a-peek-auditor"] {
        assert!(with_rid(&a_events, rid).is_empty(), "{rid} in A's own view");
        let e = one(&b_events, rid);
        assert_eq!(
            (e["action"].as_str(), e["outcome"].as_str()),
            (Some("audit_read"), Some("denied")),
            "{e}"
        );
    }
}

#[tokio::test]
async fn only_owners_admins_and_auditors_read_the_audit_view() {
    // The permission table: the tenant's owner and admins (and auditors) read the audit log; application
    // (member) keys do not.
    let srv = crate::start().await;
    let t = srv.tenant("Audit Roles").await;
    let member = srv
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    let r = call(
        &srv,
        Method::GET,
        &format!("/v1/tenants/{}/audit", t.id),
        &member,
        None,
        "rid-member",
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(r.code(), "role_not_permitted", "{}", r.text);
    assert!(r.json.get("events").is_none());
    assert!(!r.text.contains("key_create"), "{}", r.text);
    for (who, token) in [
        ("owner", &t.owner),
        ("admin", &admin),
        ("auditor", &auditor),
    ] {
        let r = call(
            &srv,
            Method::GET,
            &format!("/v1/tenants/{}/audit", t.id),
            token,
            None,
            &format!("rid-{who}"),
            StatusCode::OK,
        )
        .await;
        assert!(
            r.json["events"].as_array().is_some_and(|e| !e.is_empty()),
            "{who}: {}",
            r.text
        );
    }
    let r = send(
        &srv,
        Method::GET,
        &format!("/v1/tenants/{}/audit", t.id),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(
        &srv,
        Method::GET,
        &format!("/v1/tenants/{}/audit", t.id),
        Some("ward_key_not-a-real-token"),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The refusal is in the log, with the role in the reason.
    let events = audit_all(&srv, &t.id, &auditor, "outcome=denied").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["request_id"], "rid-member");
    assert_eq!(events[0]["action"], "audit_read");
    assert!(s(&events[0]["reason"]).contains("member"), "{}", events[0]);
    // An auditor reads the log and nothing else.
    let subj = srv.subject(&t).await;
    let r = send(
        &srv,
        Method::POST,
        &format!("/v1/tenants/{}/subjects", t.id),
        Some(&auditor),
        Some(json!({})),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let path = format!(
        "/v1/tenants/{}/subjects/{subj}/records?purpose=essential.service",
        t.id
    );
    let r = send(&srv, Method::GET, &path, Some(&auditor), None, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

#[tokio::test]
async fn denied_requests_cannot_write_arbitrary_text_into_another_tenants_log() {
    // Audit events hold identifiers and policy names only: they outlive erasure, so a
    // client-chosen string (here personal data smuggled in as a "collection") must never be
    // copied into one, least of all into another tenant's log by a foreign key.
    let srv = crate::start().await;
    let a = srv.tenant("Injector").await;
    let b = srv.tenant("Victim").await;
    let sb = srv.subject(&b).await;
    let injected = "Jane Injected <jane.injected@example.org>, +33 6 12 34 56 78";
    let body =
        json!({ "collection": injected, "fields": { "name": "x", "email": "x@example.org" } });
    let path = format!("/v1/tenants/{}/subjects/{sb}/records", b.id);
    let r = call(
        &srv,
        Method::POST,
        &path,
        &a.owner,
        Some(body),
        "rid-inject",
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(!r.text.contains("jane.injected"), "{}", r.text);

    let events = audit_all(&srv, &b.id, &b.owner, "").await;
    let e = one(&events, "rid-inject");
    assert_eq!(e["outcome"], "denied", "{e}");
    assert_eq!(e["action"], "record_create", "{e}");
    let text = e.to_string();
    assert!(
        !text.contains("jane.injected"),
        "a foreign key wrote client text into the tenant's audit log: {e}"
    );
    if let Some(c) = e["collection"].as_str() {
        assert!(
            srv.vault.policy().collection(c).is_some(),
            "undeclared collection name in an event: {c:?}"
        );
    }
}

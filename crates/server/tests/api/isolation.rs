//! Tenant isolation: no key of tenant A learns anything about tenant B. Every attempt is a 404
//! (never a 403, never data), and B's data is unchanged afterwards.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};

use crate::common::*;

/// Tenant B's data, as its owner sees it.
struct Victim {
    t: TenantFixture,
    s: String,
    contact: String,
    job: String,
    key_id: String,
    admin: String,
}

async fn victim(srv: &TestServer) -> Victim {
    let t = srv.tenant("Victim B").await;
    let s = subject_with_ref(srv, &t, "b-secret-ref").await;
    let contact = srv
        .contact(&t, &s, "Bea Victim", "bea@victim.example")
        .await;
    let job = srv
        .record(&t, &s, "job_application", sample("job_application").input)
        .await;
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    let (_, keys) = srv
        .get(&format!("/v1/tenants/{}/keys", t.id), &t.owner)
        .await;
    let key_id = item(&keys, "role", "admin")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    Victim {
        t,
        s,
        contact,
        job,
        key_id,
        admin,
    }
}

/// What B's owner sees: tenant, keys, subject, records, index.
async fn snapshot(srv: &TestServer, v: &Victim) -> Value {
    let b = &v.t;
    let (_, tenant) = srv.get(&format!("/v1/tenants/{}", b.id), &b.owner).await;
    let (_, keys) = srv
        .get(&format!("/v1/tenants/{}/keys", b.id), &b.owner)
        .await;
    let (_, subject) = srv
        .get(
            &format!("{}?external_ref=b-secret-ref", subjects_path(&b.id)),
            &b.owner,
        )
        .await;
    let (_, new_subject) = srv
        .get(
            &format!("{}?external_ref=from-a", subjects_path(&b.id)),
            &b.owner,
        )
        .await;
    let (_, essential) = srv.get(&list_path(&b.id, &v.s, ESSENTIAL), &b.owner).await;
    let (_, recruitment) = srv
        .get(&list_path(&b.id, &v.s, RECRUITMENT), &b.owner)
        .await;
    let (_, hits) = srv
        .get(
            &lookup_path(&b.id, "contact", "email", "bea@victim.example", ESSENTIAL),
            &b.owner,
        )
        .await;
    let (st, _) = srv.get(&format!("/v1/tenants/{}", b.id), &v.admin).await;
    json!({
        "tenant": tenant, "keys": keys, "subject": subject, "new_subject": new_subject,
        "essential": essential, "recruitment": recruitment, "hits": hits, "admin_works": st.as_u16(),
    })
}

/// Every endpoint of tenant B, with a body where it takes one.
fn attacks(v: &Victim) -> Vec<(Method, String, Option<Value>)> {
    let t = &v.t.id;
    let s = &v.s;
    let r = &v.contact;
    vec![
        (Method::GET, format!("/v1/tenants/{t}"), None),
        (
            Method::POST,
            format!("/v1/tenants/{t}/keys"),
            Some(json!({ "name": "backdoor", "role": "admin" })),
        ),
        (
            Method::POST,
            format!("/v1/tenants/{t}/keys"),
            Some(json!({ "name": "backdoor", "role": "member", "purposes": [ESSENTIAL] })),
        ),
        (Method::GET, format!("/v1/tenants/{t}/keys"), None),
        (
            Method::DELETE,
            format!("/v1/tenants/{t}/keys/{}", v.key_id),
            None,
        ),
        (
            Method::POST,
            subjects_path(t),
            Some(json!({ "external_ref": "from-a" })),
        ),
        (
            Method::GET,
            format!("{}?external_ref=b-secret-ref", subjects_path(t)),
            None,
        ),
        (
            Method::POST,
            records_path(t, s),
            Some(json!({ "collection": "contact", "fields": contact() })),
        ),
        (Method::GET, list_path(t, s, ESSENTIAL), None),
        (
            Method::GET,
            format!("{}&collection=contact", list_path(t, s, ESSENTIAL)),
            None,
        ),
        (Method::GET, read_path(t, s, r, ESSENTIAL), None),
        (Method::GET, read_path(t, s, &v.job, RECRUITMENT), None),
        (
            Method::PATCH,
            record_path(t, s, r),
            Some(json!({ "purpose": "essential.service", "fields": { "name": "Pwned" } })),
        ),
        (Method::DELETE, record_path(t, s, r), None),
        (
            Method::GET,
            lookup_path(t, "contact", "email", "bea@victim.example", ESSENTIAL),
            None,
        ),
        (
            Method::POST,
            format!("/v1/tenants/{t}/batch"),
            Some(json!({ "items": [{ "op": "create_subject", "external_ref": "from-a" }] })),
        ),
        (
            Method::POST,
            format!("/v1/tenants/{t}/batch"),
            Some(
                json!({ "items": [{ "op": "update_record", "subject": s, "record": r, "purpose": "essential.service", "fields": { "name": "Pwned" } }] }),
            ),
        ),
        (
            Method::POST,
            format!("/v1/tenants/{t}/batch"),
            Some(json!({ "items": [{ "op": "delete_record", "subject": s, "record": r }] })),
        ),
        (
            Method::POST,
            format!("/v1/tenants/{t}/batch"),
            Some(
                json!({ "items": [{ "op": "create_record", "subject": s, "collection": "contact", "fields": contact() }] }),
            ),
        ),
        (Method::GET, format!("/v1/tenants/{t}/audit"), None),
    ]
}

/// B's ids used through A's own tenant path.
fn smuggles(a: &str, v: &Victim) -> Vec<(Method, String, Option<Value>)> {
    let s = &v.s;
    let r = &v.contact;
    vec![
        (
            Method::POST,
            records_path(a, s),
            Some(json!({ "collection": "contact", "fields": contact() })),
        ),
        (Method::GET, list_path(a, s, ESSENTIAL), None),
        (Method::GET, read_path(a, s, r, ESSENTIAL), None),
        (
            Method::PATCH,
            record_path(a, s, r),
            Some(json!({ "purpose": "essential.service", "fields": { "name": "Pwned" } })),
        ),
        (Method::DELETE, record_path(a, s, r), None),
        (
            Method::DELETE,
            format!("/v1/tenants/{a}/keys/{}", v.key_id),
            None,
        ),
        (
            Method::POST,
            format!("/v1/tenants/{a}/batch"),
            Some(
                json!({ "items": [{ "op": "update_record", "subject": s, "record": r, "purpose": "essential.service", "fields": { "name": "Pwned" } }] }),
            ),
        ),
        (
            Method::POST,
            format!("/v1/tenants/{a}/batch"),
            Some(json!({ "items": [{ "op": "delete_record", "subject": s, "record": r }] })),
        ),
        (
            Method::POST,
            format!("/v1/tenants/{a}/batch"),
            Some(
                json!({ "items": [{ "op": "create_record", "subject": s, "collection": "contact", "fields": contact() }] }),
            ),
        ),
    ]
}

#[tokio::test]
async fn every_role_of_tenant_a_gets_404_on_every_endpoint_of_tenant_b() {
    let srv = crate::start().await;
    let a = srv.tenant("Attacker A").await;
    let _ = subject_with_ref(&srv, &a, "a-own").await;
    let v = victim(&srv).await;
    let before = snapshot(&srv, &v).await;
    assert_eq!(before["admin_works"], 200);
    let roles = [
        ("owner", a.owner.clone()),
        ("admin", srv.key(&a.id, &a.owner, "admin", &[]).await),
        (
            "member",
            srv.key(
                &a.id,
                &a.owner,
                "member",
                &[ESSENTIAL, RECRUITMENT, MARKETING],
            )
            .await,
        ),
        ("auditor", srv.key(&a.id, &a.owner, "auditor", &[]).await),
    ];
    for (role, token) in &roles {
        for (method, path, body) in attacks(&v) {
            let resp = srv.call(method.clone(), &path, Some(token), body).await;
            assert_eq!(
                resp.0,
                StatusCode::NOT_FOUND,
                "{role}: {method} {path}: {}",
                resp.1
            );
            assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
            let text = resp.1.to_string();
            for secret in ["Bea", "bea@victim", "Grace", &v.s, &v.contact, "Victim B"] {
                assert!(
                    !text.contains(secret),
                    "{role}: {method} {path} leaked {secret}: {text}"
                );
            }
        }
        for (method, path, body) in smuggles(&a.id, &v) {
            let resp = srv.call(method.clone(), &path, Some(token), body).await;
            // Not found; or, for a role that may not do this at all in its own tenant, a refusal
            // by role that says nothing about B.
            if resp.0 == StatusCode::FORBIDDEN && matches!(*role, "member" | "auditor") {
                assert_error(&resp, StatusCode::FORBIDDEN, "role_not_permitted");
            } else {
                assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
            }
            assert!(
                !resp.1.to_string().contains("Bea"),
                "{role}: {method} {path}: {}",
                resp.1
            );
        }
        // A's lookup never finds B's data, and A cannot find B's subject by its reference.
        let (st, hits) = srv
            .get(
                &lookup_path(&a.id, "contact", "email", "bea@victim.example", ESSENTIAL),
                token,
            )
            .await;
        if *role != "auditor" {
            assert_eq!((st, hits), (StatusCode::OK, json!([])), "{role}");
            let resp = srv
                .get(
                    &format!("{}?external_ref=b-secret-ref", subjects_path(&a.id)),
                    token,
                )
                .await;
            assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
        }
    }
    assert_eq!(snapshot(&srv, &v).await, before, "B's data changed");
}

#[tokio::test]
async fn the_audit_logs_are_per_tenant() {
    let srv = crate::start().await;
    let a = srv.tenant("A").await;
    let v = victim(&srv).await;
    let _ = read(&srv, &v.t, &v.s, &v.contact, ESSENTIAL).await;
    let (st, page) = srv
        .get(&format!("/v1/tenants/{}/audit?limit=1000", a.id), &a.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    for e in page["events"].as_array().expect("events") {
        assert_eq!(
            e["tenant"],
            a.id.as_str(),
            "A's log shows only A's events: {e}"
        );
        assert_ne!(e["subject"], v.s.as_str(), "{e}");
    }
}

#[tokio::test]
async fn unknown_tenant_ids_look_the_same_as_foreign_ones() {
    let srv = crate::start().await;
    let a = srv.tenant("A").await;
    let v = victim(&srv).await;
    let foreign = srv.get(&format!("/v1/tenants/{}", v.t.id), &a.owner).await;
    let unknown = srv
        .get(&format!("/v1/tenants/{NO_SUCH_ID}"), &a.owner)
        .await;
    assert_eq!(foreign.0, unknown.0);
    assert_eq!(foreign.1["error"]["code"], unknown.1["error"]["code"]);
    assert_eq!(foreign.1["error"]["message"], unknown.1["error"]["message"]);
}

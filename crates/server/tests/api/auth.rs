//! Authentication: every `/v1` endpoint wants a live bearer token.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use ward_vault::Clock as _;

/// Every authenticated endpoint, with a body where it takes one.
fn endpoints(t: &str, s: &str, r: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/v1/tenants".into(),
            Some(json!({ "name": "X" })),
        ),
        (Method::GET, format!("/v1/tenants/{t}"), None),
        (
            Method::POST,
            format!("/v1/tenants/{t}/keys"),
            Some(json!({ "name": "k", "role": "admin" })),
        ),
        (Method::GET, format!("/v1/tenants/{t}/keys"), None),
        (
            Method::DELETE,
            format!("/v1/tenants/{t}/keys/{NO_SUCH_ID}"),
            None,
        ),
        (Method::POST, subjects_path(t), Some(json!({}))),
        (
            Method::GET,
            format!("{}?external_ref=x", subjects_path(t)),
            None,
        ),
        (
            Method::POST,
            records_path(t, s),
            Some(json!({ "collection": "contact", "fields": contact() })),
        ),
        (Method::GET, list_path(t, s, ESSENTIAL), None),
        (Method::GET, read_path(t, s, r, ESSENTIAL), None),
        (
            Method::PATCH,
            record_path(t, s, r),
            Some(json!({ "purpose": "essential.service", "fields": { "name": "Eve" } })),
        ),
        (Method::DELETE, record_path(t, s, r), None),
        (
            Method::GET,
            lookup_path(t, "contact", "email", "ada@example.com", ESSENTIAL),
            None,
        ),
        (
            Method::POST,
            format!("/v1/tenants/{t}/batch"),
            Some(json!({ "items": [{ "op": "create_subject" }] })),
        ),
        (Method::GET, format!("/v1/tenants/{t}/audit"), None),
    ]
}

/// A server whose failed-authentication throttle allows the many failures these tests make
/// on purpose (the throttle has its own tests in the edge suite).
async fn lenient() -> ward_testkit::TestServer {
    let policy =
        ward_policy::EXAMPLE_POLICY.replace("lockout_threshold = 10", "lockout_threshold = 1000");
    assert!(policy.contains("lockout_threshold = 1000"));
    ward_testkit::TestServer::start_with(ward_testkit::Options {
        policy: Some(policy),
        ..crate::options()
    })
    .await
}

#[tokio::test]
async fn missing_or_unknown_token_is_401_everywhere_and_changes_nothing() {
    let srv = lenient().await;
    let (t, s, r) = tenant_with_contact(&srv, "Auth").await;
    let before = read(&srv, &t, &s, &r, ESSENTIAL).await;
    for (method, path, body) in endpoints(&t.id, &s, &r) {
        for token in [None, Some("ward_key_not-a-real-token"), Some("")] {
            let resp = srv.call(method.clone(), &path, token, body.clone()).await;
            assert_eq!(
                resp.0,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}: {}",
                resp.1
            );
            assert_error(&resp, StatusCode::UNAUTHORIZED, "unauthenticated");
        }
    }
    // Other schemes than Bearer are not credentials.
    let resp = srv
        .request(Method::GET, &format!("/v1/tenants/{}", t.id))
        .header("authorization", format!("Basic {}", t.owner))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthenticated");
    // Nothing was deleted, patched or added.
    assert_eq!(read(&srv, &t, &s, &r, ESSENTIAL).await, before);
    assert_eq!(all_record_ids(&srv, &t, &s).await, vec![r.clone()]);
}

#[tokio::test]
async fn the_401_message_does_not_echo_the_token() {
    let srv = crate::start().await;
    let t = srv.tenant("Echo").await;
    let token = "ward_key_SECRET-looking-value-1234";
    let (st, body) = srv.get(&format!("/v1/tenants/{}", t.id), token).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(!body.to_string().contains(token), "{body}");
}

#[tokio::test]
async fn revoked_key_is_401_at_once() {
    let srv = lenient().await;
    let (t, s, r) = tenant_with_contact(&srv, "Revoke").await;
    let (st, k) = srv
        .post(
            &format!("/v1/tenants/{}/keys", t.id),
            &t.owner,
            json!({ "name": "app", "role": "admin" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{k}");
    let token = k["token"].as_str().expect("token").to_owned();
    let key_id = k["id"].as_str().expect("id").to_owned();
    // Used once, so it is in the authentication cache.
    let (st, _) = srv.get(&read_path(&t.id, &s, &r, ESSENTIAL), &token).await;
    assert_eq!(st, StatusCode::OK);
    let resp = srv
        .delete(&format!("/v1/tenants/{}/keys/{key_id}", t.id), &t.owner)
        .await;
    assert_eq!(resp.0, StatusCode::NO_CONTENT, "{}", resp.1);
    for (method, path, body) in endpoints(&t.id, &s, &r) {
        let resp = srv.call(method.clone(), &path, Some(&token), body).await;
        assert_eq!(
            resp.0,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {}",
            resp.1
        );
        assert_error(&resp, StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    // The other keys still work, and the record is untouched.
    let _ = read(&srv, &t, &s, &r, ESSENTIAL).await;
    let (st, keys) = srv
        .get(&format!("/v1/tenants/{}/keys", t.id), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK);
    let revoked = item(&keys, "id", &key_id);
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
}

#[tokio::test]
async fn a_key_with_an_end_works_until_then_and_is_401_after() {
    let srv = lenient().await;
    let (t, s, r) = tenant_with_contact(&srv, "Expiry").await;
    let keys = format!("/v1/tenants/{}/keys", t.id);
    let now = srv.clock.now();
    let end = now + time::Duration::hours(2);
    let (st, k) = srv
        .post(
            &keys,
            &t.owner,
            json!({ "name": "contractor", "role": "admin", "expires_at": rfc3339(end) }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{k}");
    assert_eq!(k["expires_at"], rfc3339(end).as_str());
    let token = k["token"].as_str().expect("token").to_owned();
    let key_id = k["id"].as_str().expect("id").to_owned();
    // Used, so it sits in the authentication cache when its end comes.
    let (st, _) = srv.get(&read_path(&t.id, &s, &r, ESSENTIAL), &token).await;
    assert_eq!(st, StatusCode::OK);
    srv.clock.advance(time::Duration::hours(2));
    for (method, path, body) in endpoints(&t.id, &s, &r) {
        let resp = srv.call(method.clone(), &path, Some(&token), body).await;
        assert_error(&resp, StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    // Listed with its end; the owner key without one still works.
    let (st, listed) = srv.get(&keys, &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{listed}");
    let row = item(&listed, "id", &key_id);
    assert_eq!(row["expires_at"], rfc3339(end).as_str());
    assert!(row["revoked_at"].is_null(), "{row}");
    let owner = item(&listed, "role", "owner");
    assert!(owner["expires_at"].is_null(), "{owner}");
}

#[tokio::test]
async fn a_key_cannot_end_in_the_past_and_an_ending_owner_key_does_not_keep_the_tenant_owned() {
    let srv = crate::start().await;
    let t = srv.tenant("Ends").await;
    let keys = format!("/v1/tenants/{}/keys", t.id);
    let before = srv.get(&keys, &t.owner).await.1;
    let now = srv.clock.now();
    for end in [now, now - time::Duration::minutes(1)] {
        let resp = srv
            .post(
                &keys,
                &t.owner,
                json!({ "name": "late", "role": "admin", "expires_at": rfc3339(end) }),
            )
            .await;
        assert_error(
            &resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_expires_at",
        );
        assert_eq!(resp.1["error"]["field"], "expires_at");
    }
    let resp = srv
        .post(
            &keys,
            &t.owner,
            json!({ "name": "x", "role": "admin", "expires_at": "tomorrow" }),
        )
        .await;
    assert_eq!(resp.0.as_u16() / 100, 4, "{}", resp.1);
    assert_eq!(srv.get(&keys, &t.owner).await.1, before, "nothing issued");
    // A second owner key that ends: the first is still the last owner that lasts.
    let (st, k) = srv
        .post(
            &keys,
            &t.owner,
            json!({
                "name": "temporary owner",
                "role": "owner",
                "expires_at": rfc3339(now + time::Duration::days(1)),
            }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{k}");
    let first = item(&before, "role", "owner")["id"].as_str().expect("id");
    let temporary = k["token"].as_str().expect("token");
    let resp = srv.delete(&format!("{keys}/{first}"), temporary).await;
    assert_error(&resp, StatusCode::CONFLICT, "last_owner");
}

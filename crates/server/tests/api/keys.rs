//! `POST/GET /v1/tenants/{t}/keys` and `DELETE /v1/tenants/{t}/keys/{k}`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

fn keys_path(t: &str) -> String {
    format!("/v1/tenants/{t}/keys")
}

/// The id of one entry of `GET …/keys`: the tests below revoke keys by the id they read.
fn id_of(key: &Value) -> String {
    key["id"].as_str().expect("id").to_owned()
}

/// `DELETE` of key `id` of `tenant` with `token`: a revocation, the request most tests here
/// make.
async fn revoke(
    srv: &ward_testkit::TestServer,
    tenant: &str,
    id: &str,
    token: &str,
) -> (StatusCode, Value) {
    srv.delete(&format!("{}/{id}", keys_path(tenant)), token)
        .await
}

#[tokio::test]
async fn owner_issues_every_role_and_the_token_is_shown_once() {
    let srv = crate::start().await;
    let t = srv.tenant("Keys").await;
    let mut issued = Vec::new();
    for (role, purposes) in [
        ("owner", json!([])),
        ("admin", json!([])),
        ("member", json!([MARKETING, ESSENTIAL])),
        ("auditor", json!([])),
    ] {
        let (st, k) = srv
            .post(
                &keys_path(&t.id),
                &t.owner,
                json!({ "name": format!("{role} key"), "role": role, "purposes": purposes }),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{k}");
        assert_eq!(k["role"], role);
        assert_eq!(k["tenant"], t.id.as_str());
        assert_eq!(k["name"], format!("{role} key"));
        assert!(k["revoked_at"].is_null());
        let token = k["token"].as_str().expect("token").to_owned();
        assert!(token.len() >= 32, "token is long and random: {token}");
        issued.push((k["id"].as_str().expect("id").to_owned(), token));
    }
    // Member purposes come back sorted and deduplicated as the key stores them.
    let (st, keys) = srv.get(&keys_path(&t.id), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{keys}");
    let keys = keys.as_array().expect("array").clone();
    // The fixture's owner key and the four above.
    assert_eq!(keys.len(), 5, "{keys:?}");
    let text = Value::Array(keys.clone()).to_string();
    for (id, token) in &issued {
        assert!(keys.iter().any(|k| k["id"] == id.as_str()), "{id} listed");
        assert!(!text.contains(token.as_str()), "a token is listed");
    }
    assert!(keys.iter().all(|k| k.get("token").is_none()), "{text}");
    assert!(!text.contains(t.owner.as_str()));
    let member = keys.iter().find(|k| k["role"] == "member").expect("member");
    assert_eq!(member["purposes"], json!([ESSENTIAL, MARKETING]));
    // Each issued token works.
    for (_, token) in &issued {
        let (st, b) = srv.get(&format!("/v1/tenants/{}", t.id), token).await;
        assert_eq!(st, StatusCode::OK, "{b}");
    }
}

#[tokio::test]
async fn operator_lists_and_revokes_keys_but_never_issues_one() {
    let srv = crate::start().await;
    let t = srv.tenant("Op").await;
    // No role at all: an operator holding a tenant key could read the tenant's data.
    for role in ["owner", "admin", "member", "auditor"] {
        let purposes: &[&str] = if role == "member" { &[ESSENTIAL] } else { &[] };
        let resp = srv
            .post(
                &keys_path(&t.id),
                &srv.operator,
                json!({ "name": "mine", "role": role, "purposes": purposes }),
            )
            .await;
        assert_error_mentioning(
            &resp,
            StatusCode::FORBIDDEN,
            "role_not_permitted",
            "invitation",
        );
    }
    // Each refusal is in the tenant's own log, and no key appeared.
    let denied = denied_events(&srv, &t, "key_create").await;
    assert_eq!(denied.len(), 4, "{denied:?}");
    assert!(
        denied.iter().all(|e| e["actor"]["role"] == "operator"),
        "{denied:?}"
    );
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    let (st, keys) = srv.get(&keys_path(&t.id), &srv.operator).await;
    assert_eq!(st, StatusCode::OK, "{keys}");
    assert_eq!(keys.as_array().map(Vec::len), Some(2), "{keys}");
    let admin_id = id_of(item(&keys, "role", "admin"));
    // Taking access away stays possible (a leaked key, an incident).
    let resp = revoke(&srv, &t.id, &admin_id, &srv.operator).await;
    assert_eq!(resp.0, StatusCode::NO_CONTENT, "{}", resp.1);
    let resp = srv.get(&format!("/v1/tenants/{}", t.id), &admin).await;
    assert_error(&resp, StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn admin_issues_keys_but_not_owner_keys() {
    let srv = crate::start().await;
    let t = srv.tenant("Admin").await;
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    let resp = srv
        .post(
            &keys_path(&t.id),
            &admin,
            json!({ "name": "boss", "role": "owner" }),
        )
        .await;
    assert_error_mentioning(&resp, StatusCode::FORBIDDEN, "role_not_permitted", "owner");
    // No owner key appeared.
    let (_, keys) = srv.get(&keys_path(&t.id), &t.owner).await;
    let owners = keys
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["role"] == "owner")
        .count();
    assert_eq!(owners, 1, "{keys}");
    // Other roles are fine.
    let _ = srv.key(&t.id, &admin, "admin", &[]).await;
    let _ = srv.key(&t.id, &admin, "member", &[ESSENTIAL]).await;
    let _ = srv.key(&t.id, &admin, "auditor", &[]).await;
    let (st, _) = srv.get(&keys_path(&t.id), &admin).await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn members_and_auditors_cannot_manage_keys() {
    let srv = crate::start().await;
    let t = srv.tenant("NoKeys").await;
    let member = srv.key(&t.id, &t.owner, "member", &[ESSENTIAL]).await;
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    let (_, keys) = srv.get(&keys_path(&t.id), &t.owner).await;
    let owner_id = id_of(item(&keys, "role", "owner"));
    for token in [&member, &auditor] {
        for role in ["owner", "admin", "member", "auditor"] {
            let purposes: &[&str] = if role == "member" { &[ESSENTIAL] } else { &[] };
            let resp = srv
                .post(
                    &keys_path(&t.id),
                    token,
                    json!({ "name": "x", "role": role, "purposes": purposes }),
                )
                .await;
            assert_error(&resp, StatusCode::FORBIDDEN, "role_not_permitted");
        }
        let resp = srv.get(&keys_path(&t.id), token).await;
        assert_error(&resp, StatusCode::FORBIDDEN, "role_not_permitted");
        let resp = revoke(&srv, &t.id, &owner_id, token).await;
        assert_error(&resp, StatusCode::FORBIDDEN, "role_not_permitted");
    }
    // Still one owner, still working, and no key was added.
    let (st, after) = srv.get(&keys_path(&t.id), &t.owner).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(after.as_array().map(Vec::len), Some(3), "{after}");
}

#[tokio::test]
async fn invalid_key_requests_are_refused_and_issue_nothing() {
    let srv = crate::start().await;
    let t = srv.tenant("Invalid").await;
    let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
        (
            json!({ "name": "m", "role": "member" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "purposes_required",
            "purposes",
        ),
        (
            json!({ "name": "m", "role": "member", "purposes": [] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "purposes_required",
            "purposes",
        ),
        (
            json!({ "name": "o", "role": "owner", "purposes": [ESSENTIAL] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "purposes_not_applicable",
            "purposes",
        ),
        (
            json!({ "name": "a", "role": "auditor", "purposes": [ESSENTIAL] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "purposes_not_applicable",
            "purposes",
        ),
        (
            json!({ "name": "x", "role": "superuser" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_role",
            "role",
        ),
        (
            json!({ "name": "x", "role": "operator" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_role",
            "role",
        ),
        (
            json!({ "name": "x", "role": "member", "purposes": ["spying"] }),
            StatusCode::BAD_REQUEST,
            "invalid_purpose",
            "purposes",
        ),
        (
            json!({ "name": "", "role": "admin" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
            "name",
        ),
        (
            json!({ "name": "x".repeat(201), "role": "admin" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
            "name",
        ),
    ];
    for (body, status, code, field) in cases {
        let resp = srv.post(&keys_path(&t.id), &t.owner, body.clone()).await;
        assert_eq!(resp.0, status, "{body} -> {}", resp.1);
        assert_field_error(&resp, status, code, field);
    }
    let resp = srv
        .post(&keys_path(&t.id), &t.owner, json!({ "role": "admin" }))
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_body");
    let (_, keys) = srv.get(&keys_path(&t.id), &t.owner).await;
    assert_eq!(
        keys.as_array().map(Vec::len),
        Some(1),
        "only the fixture's owner key: {keys}"
    );
}

#[tokio::test]
async fn revoking_unknown_or_foreign_keys_is_404() {
    let srv = crate::start().await;
    let a = srv.tenant("A").await;
    let b = srv.tenant("B").await;
    let b_admin = srv.key(&b.id, &b.owner, "admin", &[]).await;
    let (_, b_keys) = srv.get(&keys_path(&b.id), &b.owner).await;
    let b_admin_id = id_of(item(&b_keys, "role", "admin"));
    // A key id of tenant B through tenant A's path.
    let resp = revoke(&srv, &a.id, &b_admin_id, &a.owner).await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    let resp = revoke(&srv, &a.id, NO_SUCH_ID, &a.owner).await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    let resp = srv
        .delete(&format!("{}/not-a-uuid", keys_path(&a.id)), &a.owner)
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_id");
    // B's admin key still works.
    let (st, _) = srv.get(&format!("/v1/tenants/{}", b.id), &b_admin).await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn revoking_twice_is_404_the_second_time() {
    let srv = crate::start().await;
    let t = srv.tenant("Twice").await;
    let (_, k) = srv
        .post(
            &keys_path(&t.id),
            &t.owner,
            json!({ "name": "a", "role": "admin" }),
        )
        .await;
    let id = k["id"].as_str().expect("id").to_owned();
    let path = format!("{}/{id}", keys_path(&t.id));
    let (st, body) = srv.delete(&path, &t.owner).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(body.is_null(), "204 has no body: {body}");
    let resp = srv.delete(&path, &t.owner).await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
}

/// The id of the tenant's first listed key of `role` that is not revoked.
async fn key_id(srv: &ward_testkit::TestServer, t: &str, token: &str, role: &str) -> String {
    let (st, keys) = srv.get(&keys_path(t), token).await;
    assert_eq!(st, StatusCode::OK, "{keys}");
    keys.as_array()
        .expect("keys")
        .iter()
        .find(|k| k["role"] == role && k["revoked_at"].is_null())
        .unwrap_or_else(|| panic!("no live {role} key: {keys}"))["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

#[tokio::test]
async fn a_key_manages_only_keys_of_its_role_or_below() {
    let srv = crate::start().await;
    let t = srv.tenant("Order").await;
    let owner2 = srv.key(&t.id, &t.owner, "owner", &[]).await;
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    let owner_id = key_id(&srv, &t.id, &t.owner, "owner").await;
    // An admin cannot revoke an owner key.
    let resp = revoke(&srv, &t.id, &owner_id, &admin).await;
    assert_error_mentioning(&resp, StatusCode::FORBIDDEN, "role_not_permitted", "owner");
    // The owner key still works.
    let (st, _) = srv.get(&format!("/v1/tenants/{}", t.id), &t.owner).await;
    assert_eq!(st, StatusCode::OK);
    // An admin revokes its own rank and below.
    let admin2 = srv.key(&t.id, &admin, "admin", &[]).await;
    let member = srv.key(&t.id, &admin, "member", &[ESSENTIAL]).await;
    let (_, keys) = srv.get(&keys_path(&t.id), &t.owner).await;
    // Keys list in id order, which is creation order: the last admin is admin2.
    let admin2_id = keys
        .as_array()
        .expect("keys")
        .iter()
        .rfind(|k| k["role"] == "admin")
        .expect("admin2")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let member_id = key_id(&srv, &t.id, &t.owner, "member").await;
    for id in [&admin2_id, &member_id] {
        let resp = revoke(&srv, &t.id, id, &admin).await;
        assert_eq!(resp.0, StatusCode::NO_CONTENT, "{}", resp.1);
    }
    for token in [&admin2, &member] {
        let resp = srv.get(&format!("/v1/tenants/{}", t.id), token).await;
        assert_error(&resp, StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    // An owner revokes another owner.
    let owner2_id = keys
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["role"] == "owner")
        .map(|k| k["id"].as_str().expect("id").to_owned())
        .find(|id| *id != owner_id)
        .expect("second owner");
    let resp = revoke(&srv, &t.id, &owner2_id, &t.owner).await;
    assert_eq!(resp.0, StatusCode::NO_CONTENT, "{}", resp.1);
    let resp = srv.get(&format!("/v1/tenants/{}", t.id), &owner2).await;
    assert_error(&resp, StatusCode::UNAUTHORIZED, "unauthenticated");
    // The refusal is audited as a denial in the tenant's log.
    let denied = denied_events(&srv, &t, "key_revoke").await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["actor"]["role"], "admin");
    assert_eq!(denied[0]["detail"]["key"], owner_id.as_str());
}

#[tokio::test]
async fn a_member_cannot_issue_an_admin_key_and_an_admin_no_owner_key() {
    let srv = crate::start().await;
    let t = srv.tenant("Upward").await;
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    let member = srv.key(&t.id, &t.owner, "member", &[ESSENTIAL]).await;
    for (token, role) in [(&member, "admin"), (&member, "owner"), (&admin, "owner")] {
        let resp = srv
            .post(
                &keys_path(&t.id),
                token,
                json!({ "name": "up", "role": role }),
            )
            .await;
        assert_error(&resp, StatusCode::FORBIDDEN, "role_not_permitted");
    }
    let denied = denied_events(&srv, &t, "key_create").await;
    assert_eq!(denied.len(), 3, "{denied:?}");
    let (_, keys) = srv.get(&keys_path(&t.id), &t.owner).await;
    assert_eq!(keys.as_array().map(Vec::len), Some(3), "{keys}");
}

#[tokio::test]
async fn nobody_revokes_the_last_owner_key() {
    let srv = crate::start().await;
    let t = srv.tenant("Last").await;
    let owner_id = key_id(&srv, &t.id, &t.owner, "owner").await;
    for token in [&t.owner, &srv.operator] {
        let resp = revoke(&srv, &t.id, &owner_id, token).await;
        assert_error_mentioning(&resp, StatusCode::CONFLICT, "last_owner", "last owner");
    }
    let (st, _) = srv.get(&format!("/v1/tenants/{}", t.id), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "the owner key still works");
    let denied = denied_events(&srv, &t, "key_revoke").await;
    assert_eq!(denied.len(), 2, "{denied:?}");
    // With a second owner, the first may go; then the second is the last.
    let owner2 = srv.key(&t.id, &t.owner, "owner", &[]).await;
    let resp = revoke(&srv, &t.id, &owner_id, &owner2).await;
    assert_eq!(resp.0, StatusCode::NO_CONTENT, "{}", resp.1);
    let owner2_id = key_id(&srv, &t.id, &owner2, "owner").await;
    let resp = revoke(&srv, &t.id, &owner2_id, &owner2).await;
    assert_error(&resp, StatusCode::CONFLICT, "last_owner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_revoking_each_other_at_once_leave_one() {
    let srv = crate::start().await;
    for round in 0..5 {
        let t = srv.tenant(&format!("Duel {round}")).await;
        let b = srv.key(&t.id, &t.owner, "owner", &[]).await;
        let a_id = key_id(&srv, &t.id, &t.owner, "owner").await;
        let (_, keys) = srv.get(&keys_path(&t.id), &t.owner).await;
        let b_id = keys
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["role"] == "owner" && k["id"] != a_id.as_str())
            .expect("b")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let (path_a, path_b) = (
            format!("{}/{a_id}", keys_path(&t.id)),
            format!("{}/{b_id}", keys_path(&t.id)),
        );
        let (ra, rb) = tokio::join!(srv.delete(&path_b, &t.owner), srv.delete(&path_a, &b));
        let ok = [&ra, &rb]
            .iter()
            .filter(|r| r.0 == StatusCode::NO_CONTENT)
            .count();
        assert!(ok <= 1, "both owners revoked: {ra:?} {rb:?}");
        let (st, keys) = srv.get(&keys_path(&t.id), &srv.operator).await;
        assert_eq!(st, StatusCode::OK);
        let live = keys
            .as_array()
            .expect("keys")
            .iter()
            .filter(|k| k["role"] == "owner" && k["revoked_at"].is_null())
            .count();
        assert!(live >= 1, "no owner left: {keys}");
    }
}

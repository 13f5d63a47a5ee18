//! `POST /v1/tenants` and `GET /v1/tenants/{t}`.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn operator_creates_a_tenant_and_owner_reads_it() {
    let srv = crate::start().await;
    let (st, created) = srv
        .post(
            "/v1/tenants",
            &srv.operator,
            json!({ "name": "  Acme Corp  ", "region": "France (OVHcloud)" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["name"], "Acme Corp", "name is trimmed");
    assert_eq!(created["status"], "active");
    assert_eq!(created["region"], "France (OVHcloud)");
    assert_eq!(
        created["created_at"], "2026-01-15T09:00:00Z",
        "time comes from the injected clock"
    );
    assert!(created["destroy_after"].is_null());
    uuid::Uuid::parse_str(&id).expect("tenant id is a UUID");

    let owner = srv
        .claim(
            created["invitation"]["token"].as_str().expect("invitation"),
            "owner",
        )
        .await;
    let mut tenant = created.clone();
    tenant.as_object_mut().expect("object").remove("invitation");
    let (st, got) = srv.get(&format!("/v1/tenants/{id}"), &owner).await;
    assert_eq!(st, StatusCode::OK, "{got}");
    assert_eq!(got, tenant);
    // The operator may read it too.
    let (st, got) = srv.get(&format!("/v1/tenants/{id}"), &srv.operator).await;
    assert_eq!(st, StatusCode::OK, "{got}");
    assert_eq!(got, tenant);
}

#[tokio::test]
async fn tenant_without_region_has_null_region() {
    let srv = crate::start().await;
    let (st, created) = srv
        .post("/v1/tenants", &srv.operator, json!({ "name": "NoRegion" }))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    assert!(created["region"].is_null(), "{created}");
}

#[tokio::test]
async fn each_tenant_gets_its_own_id() {
    let srv = crate::start().await;
    let a = srv.tenant("Same").await;
    let b = srv.tenant("Same").await;
    assert_ne!(a.id, b.id);
}

#[tokio::test]
async fn tenant_keys_cannot_create_tenants() {
    let srv = crate::start().await;
    let t = srv.tenant("Acme").await;
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    let member = srv.key(&t.id, &t.owner, "member", &[ESSENTIAL]).await;
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    for token in [&t.owner, &admin, &member, &auditor] {
        let resp = srv
            .post("/v1/tenants", token, json!({ "name": "Sneaky" }))
            .await;
        assert_error_mentioning(
            &resp,
            StatusCode::FORBIDDEN,
            "role_not_permitted",
            "create tenants",
        );
    }
}

#[tokio::test]
async fn invalid_tenant_names_and_regions_are_422() {
    let srv = crate::start().await;
    let long = "x".repeat(201);
    for name in ["", "   ", long.as_str()] {
        let resp = srv
            .post("/v1/tenants", &srv.operator, json!({ "name": name }))
            .await;
        assert_field_error(
            &resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
            "name",
        );
    }
    let resp = srv
        .post(
            "/v1/tenants",
            &srv.operator,
            json!({ "name": "A", "region": "Mars" }),
        )
        .await;
    let err = assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_region");
    assert_eq!(err["field"], "region");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Germany (Hetzner)"),
        "lists the regions: {err}"
    );
    let ok = "y".repeat(200);
    let (st, b) = srv
        .post("/v1/tenants", &srv.operator, json!({ "name": ok }))
        .await;
    assert_eq!(
        st,
        StatusCode::CREATED,
        "200 characters is the limit, inclusive: {b}"
    );
}

#[tokio::test]
async fn malformed_tenant_bodies_are_400_or_415() {
    let srv = crate::start().await;
    // Missing name.
    let resp = srv.post("/v1/tenants", &srv.operator, json!({})).await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_body");
    // Wrong type.
    let resp = srv
        .post("/v1/tenants", &srv.operator, json!({ "name": 7 }))
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_body");
    // Not JSON.
    let resp = srv
        .request(Method::POST, "/v1/tenants")
        .bearer_auth(&srv.operator)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = resp.json().await.expect("json error");
    assert_eq!(body["error"]["code"], "invalid_json", "{body}");
    // JSON without the content type.
    let resp = srv
        .request(Method::POST, "/v1/tenants")
        .bearer_auth(&srv.operator)
        .body("{\"name\": \"NoType\"}")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: serde_json::Value = resp.json().await.expect("json error");
    assert_eq!(body["error"]["code"], "unsupported_media_type", "{body}");
}

#[tokio::test]
async fn unknown_and_malformed_tenant_ids() {
    let srv = crate::start().await;
    let t = srv.tenant("Acme").await;
    let resp = srv
        .get(&format!("/v1/tenants/{NO_SUCH_ID}"), &srv.operator)
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    // For a tenant key another tenant id is simply not found.
    let resp = srv
        .get(&format!("/v1/tenants/{NO_SUCH_ID}"), &t.owner)
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    let resp = srv.get("/v1/tenants/not-a-uuid", &t.owner).await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_id");
}

/// Creates a tenant as the operator; returns (tenant id, invitation JSON).
async fn tenant_with_invitation(
    srv: &ward_testkit::TestServer,
    name: &str,
) -> (String, serde_json::Value) {
    let (st, created) = srv
        .post("/v1/tenants", &srv.operator, json!({ "name": name }))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    (
        created["id"].as_str().expect("id").to_owned(),
        created["invitation"].clone(),
    )
}

async fn claim(
    srv: &ward_testkit::TestServer,
    invitation: &str,
) -> (StatusCode, serde_json::Value) {
    srv.call(
        Method::POST,
        "/v1/invitations/claim",
        None,
        Some(json!({ "invitation": invitation, "name": "First Owner" })),
    )
    .await
}

fn token_of(invitation: &serde_json::Value) -> String {
    invitation["token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn a_new_tenant_comes_with_an_invitation_that_yields_its_owner_key_once() {
    let srv = crate::start().await;
    let (id, invitation) = tenant_with_invitation(&srv, "Invited").await;
    let token = token_of(&invitation);
    assert!(token.starts_with("ward_inv_"), "{invitation}");
    assert!(token.len() >= 50, "256 random bits: {token}");
    assert_eq!(invitation["tenant"], id.as_str());
    assert_eq!(
        invitation["expires_at"], "2026-01-18T09:00:00Z",
        "72 hours by the injected clock"
    );
    // Claimed with no credential but the invitation: the owner key, as key creation shows it.
    let (st, key) = claim(&srv, &token).await;
    assert_eq!(st, StatusCode::CREATED, "{key}");
    assert_eq!(key["role"], "owner");
    assert_eq!(key["tenant"], id.as_str());
    assert_eq!(key["name"], "First Owner");
    assert!(key["revoked_at"].is_null());
    let owner = key["token"].as_str().expect("token").to_owned();
    assert!(owner.starts_with("ward_key_"), "{key}");
    let (st, got) = srv.get(&format!("/v1/tenants/{id}"), &owner).await;
    assert_eq!(st, StatusCode::OK, "{got}");
    let (st, _) = srv
        .post(
            &format!("/v1/tenants/{id}/keys"),
            &owner,
            json!({ "name": "app", "role": "admin" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    // Once only.
    let resp = claim(&srv, &token).await;
    assert_error(&resp, StatusCode::UNAUTHORIZED, "invitation_invalid");
    let (_, keys) = srv.get(&format!("/v1/tenants/{id}/keys"), &owner).await;
    let owners = keys
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["role"] == "owner")
        .count();
    assert_eq!(owners, 1, "{keys}");
}

#[tokio::test]
async fn unknown_expired_and_used_invitations_fail_alike_and_are_audited_once_per_source() {
    let srv = crate::start().await;
    let (_, used) = tenant_with_invitation(&srv, "Used").await;
    let (st, _) = claim(&srv, &token_of(&used)).await;
    assert_eq!(st, StatusCode::CREATED);
    let (expired_tenant, expired) = tenant_with_invitation(&srv, "Late").await;
    srv.clock.advance(time::Duration::hours(73));
    let head = srv.store.audit_head().await.expect("head").size;
    let unknown = format!("ward_inv_{}", "A".repeat(43));
    let mut bodies = Vec::new();
    for token in [token_of(&used), token_of(&expired), unknown, String::new()] {
        let resp = claim(&srv, &token).await;
        let err = assert_error(&resp, StatusCode::UNAUTHORIZED, "invitation_invalid");
        bodies.push(err.to_string());
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
    // Bad claims count as failed credentials of their source: the first of the window is
    // audited, the others only counted for the window's summary.
    assert_eq!(
        srv.store.audit_head().await.expect("head").size,
        head + 1,
        "four bad claims from one source write one audit event"
    );
    // A claim that brings a credential is no different: the invitation is the credential.
    let resp = srv
        .call(
            Method::POST,
            "/v1/invitations/claim",
            Some(&srv.operator),
            Some(json!({ "invitation": token_of(&expired), "name": "x" })),
        )
        .await;
    assert_error(&resp, StatusCode::UNAUTHORIZED, "invitation_invalid");
    // Past the policy's lockout threshold the source is throttled before any lookup, even
    // for an invitation that would be valid.
    let (_, fresh) = tenant_with_invitation(&srv, "Fresh").await;
    let mut throttled = None;
    for _ in 0..20 {
        let resp = claim(&srv, &format!("ward_inv_{}", "B".repeat(43))).await;
        if resp.0 == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(resp);
            break;
        }
    }
    let throttled = throttled.expect("guessing invitations is throttled");
    assert_eq!(
        throttled.1["error"]["code"], "too_many_requests",
        "{throttled:?}"
    );
    let resp = claim(&srv, &token_of(&fresh)).await;
    assert_eq!(resp.0, StatusCode::TOO_MANY_REQUESTS, "{resp:?}");
    // Nothing was issued for the expired invitation's tenant.
    let (st, keys) = srv
        .get(&format!("/v1/tenants/{expired_tenant}/keys"), &srv.operator)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(keys.as_array().map(Vec::len), Some(0), "{keys}");
}

#[tokio::test]
async fn a_claim_needs_a_name_and_nothing_else() {
    let srv = crate::start().await;
    let (_, invitation) = tenant_with_invitation(&srv, "Named").await;
    let resp = srv
        .call(
            Method::POST,
            "/v1/invitations/claim",
            None,
            Some(json!({ "invitation": token_of(&invitation), "name": "  " })),
        )
        .await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_name",
        "name",
    );
    let resp = srv
        .call(
            Method::POST,
            "/v1/invitations/claim",
            None,
            Some(json!({ "invitation": token_of(&invitation), "name": "x", "role": "owner" })),
        )
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_body");
    // The invitation survived the refusals.
    let (st, _) = claim(&srv, &token_of(&invitation)).await;
    assert_eq!(st, StatusCode::CREATED);
}

#[tokio::test]
async fn the_operator_reissues_an_invitation_only_while_the_tenant_has_no_owner() {
    let srv = crate::start().await;
    let (id, first) = tenant_with_invitation(&srv, "Reissue").await;
    srv.clock.advance(time::Duration::hours(73));
    let resp = claim(&srv, &token_of(&first)).await;
    assert_error(&resp, StatusCode::UNAUTHORIZED, "invitation_invalid");
    let path = format!("/v1/tenants/{id}/invitations");
    let (st, second) = srv.post(&path, &srv.operator, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{second}");
    let (st, third) = srv.post(&path, &srv.operator, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{third}");
    // A new invitation replaces the unclaimed ones.
    let resp = claim(&srv, &token_of(&second)).await;
    assert_error(&resp, StatusCode::UNAUTHORIZED, "invitation_invalid");
    let (st, key) = claim(&srv, &token_of(&third)).await;
    assert_eq!(st, StatusCode::CREATED, "{key}");
    let owner = key["token"].as_str().expect("token").to_owned();
    // With an owner, no more invitations: its owners issue keys.
    let resp = srv.post(&path, &srv.operator, json!({})).await;
    assert_error(&resp, StatusCode::CONFLICT, "owner_exists");
    // Tenant keys never issue invitations, and another tenant's key learns nothing.
    let resp = srv.post(&path, &owner, json!({})).await;
    assert_error(&resp, StatusCode::FORBIDDEN, "role_not_permitted");
    let other = srv.tenant("Other").await;
    let resp = srv.post(&path, &other.owner, json!({})).await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    // Every issue, claim and refusal is in the tenant's own log.
    let (st, log) = srv
        .get(&format!("/v1/tenants/{id}/audit?limit=1000"), &owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{log}");
    let events = log["events"].as_array().expect("events");
    let count = |action: &str, outcome: &str| {
        events
            .iter()
            .filter(|e| e["action"] == action && e["outcome"] == outcome)
            .count()
    };
    assert_eq!(count("tenant_create", "allowed"), 1, "{log}");
    assert_eq!(count("invitation_create", "allowed"), 3, "{log}");
    assert_eq!(count("invitation_claim", "allowed"), 1, "{log}");
    assert_eq!(count("invitation_create", "denied"), 3, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_of_one_invitation_yield_one_owner_key() {
    let srv = crate::start().await;
    let (id, invitation) = tenant_with_invitation(&srv, "Race").await;
    let token = token_of(&invitation);
    let claims = (0..8).map(|_| claim(&srv, &token));
    let results = futures_join_all(claims).await;
    let won = results
        .iter()
        .filter(|(st, _)| *st == StatusCode::CREATED)
        .count();
    assert_eq!(won, 1, "{results:?}");
    for r in results.iter().filter(|(st, _)| *st != StatusCode::CREATED) {
        assert_error(r, StatusCode::UNAUTHORIZED, "invitation_invalid");
    }
    let (_, keys) = srv
        .get(&format!("/v1/tenants/{id}/keys"), &srv.operator)
        .await;
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "{keys}");
}

/// Runs the futures concurrently on this task (the test has no `futures` dependency).
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

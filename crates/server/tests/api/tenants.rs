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

    let owner = srv.key(&id, &srv.operator, "owner", &[]).await;
    let (st, got) = srv.get(&format!("/v1/tenants/{id}"), &owner).await;
    assert_eq!(st, StatusCode::OK, "{got}");
    assert_eq!(got, created);
    // The operator may read it too.
    let (st, got) = srv.get(&format!("/v1/tenants/{id}"), &srv.operator).await;
    assert_eq!(st, StatusCode::OK, "{got}");
    assert_eq!(got, created);
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
        let err = assert_error(&resp, StatusCode::FORBIDDEN, "role_not_permitted");
        assert!(
            err["message"]
                .as_str()
                .unwrap_or_default()
                .contains("create tenants"),
            "{err}"
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

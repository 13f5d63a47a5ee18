//! `POST /v1/tenants/{t}/subjects` and `GET /v1/tenants/{t}/subjects?external_ref=`.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

fn by_ref(t: &str, external_ref: &str) -> String {
    format!("{}?external_ref={}", subjects_path(t), enc(external_ref))
}

#[tokio::test]
async fn create_and_find_by_external_ref() {
    let srv = crate::start().await;
    let t = srv.tenant("Subjects").await;
    let (st, s) = srv
        .post(
            &subjects_path(&t.id),
            &t.owner,
            json!({ "external_ref": "crm-42" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{s}");
    assert_eq!(s["restrictions"], json!([]));
    assert_eq!(s["created_at"], "2026-01-15T09:00:00Z");
    let id = s["id"].as_str().expect("id");
    uuid::Uuid::parse_str(id).expect("uuid");
    // The response never echoes the reference (it is stored only as a keyed hash).
    assert!(!s.to_string().contains("crm-42"), "{s}");

    let (st, found) = srv.get(&by_ref(&t.id, "crm-42"), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{found}");
    assert_eq!(found, s);
    // Surrounding whitespace is not part of the reference.
    let (st, found) = srv.get(&by_ref(&t.id, "  crm-42 "), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{found}");
    assert_eq!(found["id"], id);
    // References are exact otherwise.
    let resp = srv.get(&by_ref(&t.id, "CRM-42"), &t.owner).await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn subject_without_body_fields() {
    let srv = crate::start().await;
    let t = srv.tenant("Anon").await;
    let (st, a) = srv.post(&subjects_path(&t.id), &t.owner, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    let (st, b) = srv
        .post(
            &subjects_path(&t.id),
            &t.owner,
            json!({ "external_ref": null }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_ne!(a["id"], b["id"]);
}

#[tokio::test]
async fn duplicate_external_ref_is_409_and_writes_nothing() {
    let srv = crate::start().await;
    let t = srv.tenant("Dup").await;
    let first = subject_with_ref(&srv, &t, "user-7").await;
    let resp = srv
        .post(
            &subjects_path(&t.id),
            &t.owner,
            json!({ "external_ref": "user-7" }),
        )
        .await;
    assert_error(&resp, StatusCode::CONFLICT, "conflict");
    let resp = srv
        .post(
            &subjects_path(&t.id),
            &t.owner,
            json!({ "external_ref": " user-7 " }),
        )
        .await;
    assert_error(&resp, StatusCode::CONFLICT, "conflict");
    let (_, found) = srv.get(&by_ref(&t.id, "user-7"), &t.owner).await;
    assert_eq!(found["id"], first.as_str());
    // Another tenant may use the same reference for its own subject.
    let other = srv.tenant("Other").await;
    let theirs = subject_with_ref(&srv, &other, "user-7").await;
    assert_ne!(theirs, first);
    let (_, found) = srv.get(&by_ref(&other.id, "user-7"), &other.owner).await;
    assert_eq!(found["id"], theirs.as_str());
}

#[tokio::test]
async fn invalid_external_refs_are_422() {
    let srv = crate::start().await;
    let t = srv.tenant("BadRef").await;
    let long = "r".repeat(257);
    for bad in ["", "   ", long.as_str()] {
        let resp = srv
            .post(
                &subjects_path(&t.id),
                &t.owner,
                json!({ "external_ref": bad }),
            )
            .await;
        assert_field_error(
            &resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_external_ref",
            "external_ref",
        );
    }
    let resp = srv
        .post(
            &subjects_path(&t.id),
            &t.owner,
            json!({ "external_ref": "4111 1111 1111 1111" }),
        )
        .await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "card_data_refused",
        "external_ref",
    );
    assert!(
        !resp.1.to_string().contains("4111"),
        "the card number is not echoed: {}",
        resp.1
    );
    let resp = srv
        .get(&by_ref(&t.id, "4111 1111 1111 1111"), &t.owner)
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    let ok = "r".repeat(256);
    let (st, b) = srv
        .post(
            &subjects_path(&t.id),
            &t.owner,
            json!({ "external_ref": ok }),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::CREATED,
        "256 characters is the limit, inclusive: {b}"
    );
}

#[tokio::test]
async fn malformed_subject_requests_are_400() {
    let srv = crate::start().await;
    let t = srv.tenant("Malformed").await;
    let resp = srv
        .post(
            &subjects_path(&t.id),
            &t.owner,
            json!({ "external_id": "x" }),
        )
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_body");
    let resp = srv.get(&subjects_path(&t.id), &t.owner).await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_query");
    let resp = srv
        .get(
            &format!("{}?external_ref=a&extra=1", subjects_path(&t.id)),
            &t.owner,
        )
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_query");
    let resp = srv.get(&by_ref(&t.id, "nobody"), &t.owner).await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
}

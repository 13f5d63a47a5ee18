//! Refused values and bodies: every type's invalid values, structural and malformed requests,
//! because a refusal must name the field and code without echoing the value (it may be
//! personal data) and must leave nothing written behind.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

/// (collection, field, bad value, type code).
fn invalid_values() -> Vec<(&'static str, &'static str, Value, &'static str)> {
    vec![
        (
            "contact",
            "email",
            json!("ada.example.com"),
            "invalid_email",
        ),
        ("contact", "email", json!("ada@localhost"), "invalid_email"),
        (
            "contact",
            "email",
            json!("ada..x@example.com"),
            "invalid_email",
        ),
        ("contact", "email", json!("@example.com"), "invalid_email"),
        ("contact", "email", json!(42), "wrong_type"),
        ("contact", "phone", json!("0612345678"), "invalid_phone"),
        (
            "contact",
            "phone",
            json!("+33 6 12 34 56 78 90 12 34"),
            "invalid_phone",
        ),
        ("contact", "country", json!("XX"), "invalid_country"),
        ("contact", "country", json!("FRA"), "invalid_country"),
        ("contact", "name", json!(["Ada"]), "wrong_type"),
        ("contact", "name", json!("x".repeat(201)), "too_long"),
        ("contact", "name", json!("bell\u{7}"), "control_character"),
        (
            "job_application",
            "applied_on",
            json!("2026-02-30"),
            "invalid_date",
        ),
        (
            "job_application",
            "applied_on",
            json!("15/01/2026"),
            "invalid_date",
        ),
        (
            "job_application",
            "applied_on",
            json!("2026-1-5"),
            "invalid_date",
        ),
        ("browser_visit", "ip", json!("300.1.1.1"), "invalid_ip"),
        (
            "browser_visit",
            "language",
            json!("english"),
            "invalid_language",
        ),
        (
            "browser_visit",
            "geo",
            json!({ "lat": 91.0, "lon": 0.0 }),
            "invalid_geo",
        ),
        (
            "browser_visit",
            "geo",
            json!({ "lat": 1.0, "lon": 2.0, "alt": 3.0 }),
            "invalid_geo",
        ),
        ("browser_visit", "geo", json!("48.85,2.35"), "wrong_type"),
        (
            "browser_visit",
            "visited_at",
            json!("yesterday"),
            "invalid_datetime",
        ),
        (
            "browser_visit",
            "visited_at",
            json!("2026-01-15 10:00:00"),
            "invalid_datetime",
        ),
        (
            "customer_record",
            "loyalty_points",
            json!(1.5),
            "invalid_integer",
        ),
        (
            "customer_record",
            "loyalty_points",
            json!(18_446_744_073_709_551_615_u64),
            "invalid_integer",
        ),
        (
            "customer_record",
            "loyalty_points",
            json!("12"),
            "wrong_type",
        ),
        (
            "customer_record",
            "birth_date",
            json!("1969-13-01"),
            "invalid_date",
        ),
        ("billing", "amount", json!("12,50"), "invalid_decimal"),
        ("billing", "amount", json!(true), "wrong_type"),
        ("server_log", "at", json!(1_700_000_000), "wrong_type"),
    ]
}

#[tokio::test]
async fn invalid_values_are_422_naming_the_field_and_write_nothing() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Invalid").await;
    for (collection, field, bad, code) in invalid_values() {
        let mut fields = sample(collection).input;
        fields[field] = bad.clone();
        let resp = write_raw(&srv, &t, &s, collection, fields).await;
        // A control character is malformed input wherever it appears (400), not a rule of
        // the policy.
        let status = if code == "control_character" {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        assert_eq!(resp.0, status, "{collection}.{field} = {bad}: {}", resp.1);
        assert_invalid_value(&resp, field, code);
    }
    assert_eq!(
        all_record_ids(&srv, &t, &s).await,
        Vec::<String>::new(),
        "nothing was written"
    );
}

#[tokio::test]
async fn refusals_do_not_echo_the_value() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("NoEcho").await;
    let secret = "jane.doe.private at example.com";
    let resp = write_raw(
        &srv,
        &t,
        &s,
        "contact",
        json!({ "name": "Jane", "email": secret }),
    )
    .await;
    assert_invalid_value(&resp, "email", "invalid_email");
    assert!(!resp.1.to_string().contains("jane.doe"), "{}", resp.1);
}

#[tokio::test]
async fn invalid_value_codes_are_the_type_codes() {
    // The same bad e-mail must get the same stable error code from every endpoint;
    // `VaultError::Invalid` names `invalid_email` as such a code, and lookup already
    // answers with it.
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Codes").await;
    let lookup = srv
        .get(
            &lookup_path(&t.id, "contact", "email", "not-an-email", ESSENTIAL),
            &t.owner,
        )
        .await;
    assert_field_error(
        &lookup,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_email",
        "value",
    );
    let create = write_raw(
        &srv,
        &t,
        &s,
        "contact",
        json!({ "name": "N", "email": "not-an-email" }),
    )
    .await;
    assert_field_error(
        &create,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_email",
        "email",
    );
}

#[tokio::test]
async fn structural_refusals_write_nothing() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Structural").await;
    let path = records_path(&t.id, &s);
    let resp = write_raw(&srv, &t, &s, "diary", json!({ "entry": "dear diary" })).await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_collection",
        "collection",
    );
    let resp = write_raw(&srv, &t, &s, "contact", json!({ "name": "No Email" })).await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing_field",
        "email",
    );
    let resp = write_raw(
        &srv,
        &t,
        &s,
        "job_application",
        json!({ "name": "N", "email": "n@example.com" }),
    )
    .await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing_field",
        "applied_on",
    );
    let mut fields = contact();
    fields["favourite_colour"] = json!("blue");
    let resp = write_raw(&srv, &t, &s, "contact", fields).await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_field",
        "favourite_colour",
    );
    let resp = write_raw(
        &srv,
        &t,
        &s,
        "contact",
        json!({ "name": null, "email": "a@example.com" }),
    )
    .await;
    assert_invalid_value(&resp, "name", "null_required");
    let resp = srv
        .post(&path, &t.owner, json!({ "collection": "contact" }))
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_body");
    let resp = srv
        .post(
            &path,
            &t.owner,
            json!({ "collection": "contact", "fields": contact(), "id": NO_SUCH_ID }),
        )
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_body");
    let resp = srv
        .post(
            &path,
            &t.owner,
            json!({ "collection": "contact", "fields": [] }),
        )
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_body");
    // Records need an existing subject of the tenant.
    let resp = srv
        .post(
            &records_path(&t.id, NO_SUCH_ID),
            &t.owner,
            json!({ "collection": "contact", "fields": contact() }),
        )
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(all_record_ids(&srv, &t, &s).await, Vec::<String>::new());
}

#[tokio::test]
async fn malformed_bodies_are_400_415_or_413_and_write_nothing() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Bodies").await;
    let path = records_path(&t.id, &s);
    let good = json!({ "collection": "contact", "fields": contact() }).to_string();

    let resp = srv
        .request(Method::POST, &path)
        .bearer_auth(&t.owner)
        .header("content-type", "application/json")
        .body(good[..good.len() - 2].to_owned())
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "invalid_json", "{body}");

    let resp = srv
        .request(Method::POST, &path)
        .bearer_auth(&t.owner)
        .body(good.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unsupported_media_type", "{body}");

    let resp = srv
        .request(Method::POST, &path)
        .bearer_auth(&t.owner)
        .header("content-type", "text/plain")
        .body(good.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Over 8 MiB.
    let huge = json!({ "collection": "contact", "fields": { "name": "a".repeat(9 * 1024 * 1024), "email": "a@example.com" } });
    let resp = srv.post(&path, &t.owner, huge).await;
    assert_error(&resp, StatusCode::PAYLOAD_TOO_LARGE, "too_large");

    assert_eq!(all_record_ids(&srv, &t, &s).await, Vec::<String>::new());
    // The same body, well-formed, is accepted.
    let resp = srv
        .request(Method::POST, &path)
        .bearer_auth(&t.owner)
        .header("content-type", "application/json")
        .body(good)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::CREATED);
}

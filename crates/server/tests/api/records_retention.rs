//! Retention dates on records: far-future dates and collections without retention, because
//! the expiry is computed from client-supplied dates and policy, and an edge value there must
//! be answered, never crash the server or make a record expire by accident.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn far_future_retention_dates_are_answered_not_crashed_on() {
    // Valid dates whose retention end falls after year 9999 must get an answer (stored with
    // some expiry, or refused with 422 naming the field), not a dropped connection.
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("FarFuture").await;
    let patched = srv
        .record(&t, &s, "customer_record", json!({ "name": "Patch me" }))
        .await;
    let cases = [
        ("billing", "issued_on", json!("9999-12-31"), LEGAL),
        (
            "job_application",
            "applied_on",
            json!("9999-06-01"),
            RECRUITMENT,
        ),
        ("server_log", "at", json!("9999-12-31T23:59:59Z"), SECURITY),
        (
            "customer_record",
            "contract_end",
            json!("9999-12-31"),
            ESSENTIAL,
        ),
    ];
    let mut failures = Vec::new();
    for (i, (collection, field, value, purpose)) in cases.iter().enumerate() {
        let mut fields = sample(collection).input;
        fields[*field] = value.clone();
        let req = if i == cases.len() - 1 {
            // The same date through a patch.
            srv.request(Method::PATCH, &record_path(&t.id, &s, &patched))
                .json(&json!({ "purpose": "essential.service", "fields": { *field: value } }))
        } else {
            srv.request(Method::POST, &records_path(&t.id, &s))
                .json(&json!({ "collection": collection, "fields": fields }))
        };
        let resp = match req.bearer_auth(&t.owner).send().await {
            Ok(resp) => resp,
            Err(e) => {
                failures.push(format!("{collection}.{field} = {value}: no response ({e})"));
                continue;
            }
        };
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match status {
            StatusCode::CREATED | StatusCode::OK => {
                let id = body["id"].as_str().expect("id");
                assert_eq!(
                    read(&srv, &t, &s, id, purpose).await["fields"][*field],
                    *value
                );
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(body["error"]["field"], *field, "{body}")
            }
            other => failures.push(format!("{collection}.{field} = {value}: {other} {body}")),
        }
    }
    // The server survives either way.
    let (st, _) = srv.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        failures.is_empty(),
        "requests without a proper answer:\n{}",
        failures.join("\n")
    );
}

/// The example policy plus a collection without retention, with bool and decimal fields.
fn policy_with_preferences() -> String {
    format!(
        "{}\n{}",
        ward_policy::EXAMPLE_POLICY,
        r#"
[collections.preferences]
description = "Account settings"
data_subjects = ["customer"]
purposes = ["functional.service.improve"]
legal_basis = "consent"

[collections.preferences.fields.newsletter]
type = "bool"
category = "user.account.settings"
required = true

[collections.preferences.fields.budget]
type = "decimal"
category = "user.account.settings"
"#
    )
}

#[tokio::test]
async fn a_collection_without_retention_never_expires() {
    let srv = ward_testkit::TestServer::start_with(ward_testkit::Options {
        policy: Some(policy_with_preferences()),
        ..crate::options()
    })
    .await;
    let (t, s) = srv.tenant_and_subject("Prefs").await;
    let purpose = "functional.service.improve";
    let (st, created) = write_raw(
        &srv,
        &t,
        &s,
        "preferences",
        json!({ "newsletter": false, "budget": 12.5 }),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    assert!(created["expires_at"].is_null(), "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(
        read(&srv, &t, &s, &id, purpose).await["fields"],
        json!({ "newsletter": false, "budget": 12.5 })
    );
    for (field, bad, code) in [
        ("newsletter", json!("yes"), "wrong_type"),
        ("newsletter", json!(1), "wrong_type"),
        ("budget", json!("12.5.0"), "invalid_decimal"),
    ] {
        let resp = srv
            .patch(
                &record_path(&t.id, &s, &id),
                &t.owner,
                json!({ "purpose": purpose, "fields": { field: bad } }),
            )
            .await;
        assert_invalid_value(&resp, field, code);
    }
    srv.clock.advance(time::Duration::days(20 * 365));
    let mut got = read(&srv, &t, &s, &id, purpose).await;
    got.as_object_mut().expect("record").remove("fields");
    assert_eq!(got, created);
}

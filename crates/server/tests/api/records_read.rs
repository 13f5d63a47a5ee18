//! Reading records back: lists filtered by collection and purpose, and the errors of lists
//! and single reads, because every read is a purpose-bound disclosure and a malformed one must
//! be refused with a precise status rather than answered loosely.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn list_filters_by_collection_and_by_purpose() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("List").await;
    let mut ids = std::collections::HashMap::new();
    for sample in samples() {
        let id = srv
            .record(&t, &s, sample.collection, sample.input.clone())
            .await;
        ids.insert(sample.collection, id);
    }
    let contact2 = srv.contact(&t, &s, "Second", "second@example.com").await;
    let cases: &[(&str, Option<&str>, Vec<&str>)] = &[
        // essential.service: contact and customer_record allow it; billing (payment processing),
        // server_log (security) and the others do not.
        (
            ESSENTIAL,
            None,
            vec![&ids["contact"], &ids["customer_record"], &contact2],
        ),
        (ESSENTIAL, Some("contact"), vec![&ids["contact"], &contact2]),
        (
            ESSENTIAL,
            Some("customer_record"),
            vec![&ids["customer_record"]],
        ),
        (MARKETING, None, vec![&ids["contact"], &contact2]),
        (RECRUITMENT, None, vec![&ids["job_application"]]),
        (ANALYTICS, None, vec![&ids["browser_visit"]]),
        (LEGAL, None, vec![&ids["billing"]]),
        // A sub-purpose of an allowed purpose is allowed: security is within essential.service.
        (
            SECURITY,
            None,
            vec![
                &ids["contact"],
                &ids["browser_visit"],
                &ids["customer_record"],
                &ids["server_log"],
                &contact2,
            ],
        ),
        (
            "essential.service.operations",
            Some("server_log"),
            vec![&ids["server_log"]],
        ),
    ];
    for (purpose, collection, expected) in cases {
        let mut path = list_path(&t.id, &s, purpose);
        if let Some(c) = collection {
            path.push_str(&format!("&collection={c}"));
        }
        let (st, list) = srv.get(&path, &t.owner).await;
        assert_eq!(st, StatusCode::OK, "{path}: {list}");
        let mut got: Vec<String> = list
            .as_array()
            .expect("array")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_owned())
            .collect();
        got.sort();
        let mut want: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        want.sort();
        assert_eq!(got, want, "{purpose} {collection:?}");
        // Listed records are complete and decrypted.
        for rec in list.as_array().expect("array") {
            let id = rec["id"].as_str().expect("id");
            assert_eq!(rec, &read(&srv, &t, &s, id, purpose).await);
        }
    }
}

#[tokio::test]
async fn list_errors() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("ListErrors").await;
    let _ = srv
        .record(&t, &s, "job_application", sample("job_application").input)
        .await;
    let (st, empty) = srv
        .get(
            &list_path(&t.id, &srv.subject(&t).await, ESSENTIAL),
            &t.owner,
        )
        .await;
    assert_eq!((st, empty), (StatusCode::OK, json!([])));
    let resp = srv.get(&records_path(&t.id, &s), &t.owner).await;
    assert_field_error(
        &resp,
        StatusCode::BAD_REQUEST,
        "purpose_required",
        "purpose",
    );
    let resp = srv
        .get(
            &format!("{}?collection=contact", records_path(&t.id, &s)),
            &t.owner,
        )
        .await;
    assert_field_error(
        &resp,
        StatusCode::BAD_REQUEST,
        "purpose_required",
        "purpose",
    );
    let resp = srv.get(&list_path(&t.id, &s, "snooping"), &t.owner).await;
    assert_field_error(&resp, StatusCode::BAD_REQUEST, "invalid_purpose", "purpose");
    let resp = srv
        .get(
            &format!("{}&collection=diary", list_path(&t.id, &s, ESSENTIAL)),
            &t.owner,
        )
        .await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_collection",
        "collection",
    );
    // Naming a collection that does not allow the purpose is refused, not silently empty.
    let resp = srv
        .get(
            &format!(
                "{}&collection=job_application",
                list_path(&t.id, &s, ESSENTIAL)
            ),
            &t.owner,
        )
        .await;
    assert_error_mentioning(
        &resp,
        StatusCode::FORBIDDEN,
        "purpose_not_allowed",
        ESSENTIAL,
    );
    let resp = srv
        .get(&list_path(&t.id, NO_SUCH_ID, ESSENTIAL), &t.owner)
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    let resp = srv
        .get(
            &format!("{}&colour=red", list_path(&t.id, &s, ESSENTIAL)),
            &t.owner,
        )
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn read_errors() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv, "ReadErrors").await;
    let resp = srv.get(&record_path(&t.id, &s, &r), &t.owner).await;
    assert_field_error(
        &resp,
        StatusCode::BAD_REQUEST,
        "purpose_required",
        "purpose",
    );
    let resp = srv
        .get(&read_path(&t.id, &s, &r, ANALYTICS), &t.owner)
        .await;
    let err = assert_error(&resp, StatusCode::FORBIDDEN, "purpose_not_allowed");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(ANALYTICS),
        "the message names the purpose: {message}"
    );
    assert!(message.contains("contact"), "and the collection: {message}");
    assert!(
        !resp.1.to_string().contains("Ada"),
        "no data in a refusal: {}",
        resp.1
    );
    let resp = srv
        .get(&read_path(&t.id, &s, &r, "Essential Service"), &t.owner)
        .await;
    assert_field_error(&resp, StatusCode::BAD_REQUEST, "invalid_purpose", "purpose");
    let resp = srv
        .get(
            &format!("{}&collection=contact", read_path(&t.id, &s, &r, ESSENTIAL)),
            &t.owner,
        )
        .await;
    assert_field_error(
        &resp,
        StatusCode::BAD_REQUEST,
        "invalid_query",
        "collection",
    );
    let resp = srv
        .get(&read_path(&t.id, &s, NO_SUCH_ID, ESSENTIAL), &t.owner)
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    let resp = srv
        .get(&read_path(&t.id, NO_SUCH_ID, &r, ESSENTIAL), &t.owner)
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    // The record exists, but under another subject.
    let other = srv.subject(&t).await;
    let resp = srv
        .get(&read_path(&t.id, &other, &r, ESSENTIAL), &t.owner)
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    let resp = srv
        .get(&read_path(&t.id, &s, "12345", ESSENTIAL), &t.owner)
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_id");
    // A parent purpose of an allowed one is not allowed: essential is wider than essential.service.
    let resp = srv
        .get(&read_path(&t.id, &s, &r, "essential"), &t.owner)
        .await;
    assert_error(&resp, StatusCode::FORBIDDEN, "purpose_not_allowed");
}

//! Records: create, read, list, patch, delete; validation and normalization; and that a
//! refused request writes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn every_collection_round_trips_normalized() {
    let srv = crate::start().await;
    let t = srv.tenant("RoundTrip").await;
    let s = srv.subject(&t).await;
    for sample in samples() {
        let (st, created) = srv
            .post(
                &records_path(&t.id, &s),
                &t.owner,
                json!({ "collection": sample.collection, "fields": sample.input }),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{}: {created}", sample.collection);
        let id = created["id"].as_str().expect("id").to_owned();
        assert_eq!(created["subject"], s.as_str());
        assert_eq!(created["collection"], sample.collection);
        assert!(
            created.get("fields").is_none(),
            "{}: a create answers without the values: {created}",
            sample.collection
        );
        assert_eq!(created["revision"], 1);
        assert_eq!(created["created_at"], rfc3339(START));
        assert_eq!(created["updated_at"], rfc3339(START));
        assert_eq!(
            created["expires_at"],
            sample.expires_at.as_str(),
            "{} retention",
            sample.collection
        );
        let got = read(&srv, &t, &s, &id, sample.purpose).await;
        assert_eq!(
            got["fields"], sample.stored,
            "{} normalized on write",
            sample.collection
        );
        let mut meta = got.clone();
        meta.as_object_mut().expect("record").remove("fields");
        assert_eq!(
            meta, created,
            "{}: read equals what the write returned, plus the values",
            sample.collection
        );
    }
}

#[tokio::test]
async fn normalized_values_are_stable_when_written_again() {
    // A stored value written back unchanged stays exactly the same.
    let srv = crate::start().await;
    let t = srv.tenant("Stable").await;
    let s = srv.subject(&t).await;
    for sample in samples() {
        let (st, created) = srv
            .post(
                &records_path(&t.id, &s),
                &t.owner,
                json!({ "collection": sample.collection, "fields": sample.stored }),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().expect("id");
        assert_eq!(
            read(&srv, &t, &s, id, sample.purpose).await["fields"],
            sample.stored,
            "{}",
            sample.collection
        );
    }
}

#[tokio::test]
async fn optional_fields_may_be_left_out_and_integer_geo_becomes_float() {
    let srv = crate::start().await;
    let t = srv.tenant("Optional").await;
    let s = srv.subject(&t).await;
    let r = srv
        .record(
            &t,
            &s,
            "contact",
            json!({ "name": "Bo", "email": "bo@example.org" }),
        )
        .await;
    let got = read(&srv, &t, &s, &r, ESSENTIAL).await;
    assert_eq!(
        got["fields"],
        json!({ "name": "Bo", "email": "bo@example.org" })
    );
    let r = srv
        .record(
            &t,
            &s,
            "browser_visit",
            json!({ "visited_at": "2026-01-15T09:00:00Z", "geo": { "lon": 2, "lat": 48 } }),
        )
        .await;
    let got = read(&srv, &t, &s, &r, ANALYTICS).await;
    assert_eq!(got["fields"]["geo"], json!({ "lat": 48.0, "lon": 2.0 }));
}

#[tokio::test]
async fn patch_changes_a_field_removes_with_null_and_bumps_revision() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv, "Patch").await;
    let before = read(&srv, &t, &s, &r, ESSENTIAL).await;
    srv.clock.advance(time::Duration::hours(2));
    let (st, patched) = srv
        .patch(&record_path(&t.id, &s, &r), &t.owner, json!({ "purpose": "essential.service", "return_fields": true, "fields": { "name": "Augusta Ada King", "company": null, "phone": "+44 20 7946 0000" } }))
        .await;
    assert_eq!(st, StatusCode::OK, "{patched}");
    assert_eq!(patched["revision"], 2);
    assert_eq!(patched["id"], r.as_str());
    assert_eq!(patched["created_at"], before["created_at"]);
    assert_eq!(
        patched["updated_at"],
        rfc3339(START + time::Duration::hours(2))
    );
    assert_eq!(
        patched["expires_at"], before["expires_at"],
        "contact retention counts from creation"
    );
    let mut expected = before["fields"].clone();
    let obj = expected.as_object_mut().expect("fields");
    obj.insert("name".into(), json!("Augusta Ada King"));
    obj.insert("phone".into(), json!("+442079460000"));
    obj.remove("company");
    assert_eq!(patched["fields"], expected);
    assert!(
        patched["fields"].get("company").is_none(),
        "null removes the field"
    );
    let got = read(&srv, &t, &s, &r, ESSENTIAL).await;
    assert_eq!(got, patched);
    // Again: the revision keeps counting.
    let (st, again) = srv
        .patch(
            &record_path(&t.id, &s, &r),
            &t.owner,
            json!({ "purpose": "essential.service", "fields": { "country": "ie" } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{again}");
    assert_eq!(again["revision"], 3);
    assert!(
        again.get("fields").is_none(),
        "without return_fields an update answers without values: {again}"
    );
    assert_eq!(
        read(&srv, &t, &s, &r, ESSENTIAL).await["fields"]["country"],
        "IE"
    );
}

#[tokio::test]
async fn patch_of_the_retention_date_moves_the_expiry() {
    let srv = crate::start().await;
    let t = srv.tenant("PatchExpiry").await;
    let s = srv.subject(&t).await;
    let r = srv
        .record(&t, &s, "customer_record", json!({ "name": "C" }))
        .await;
    let got = read(&srv, &t, &s, &r, ESSENTIAL).await;
    assert_eq!(
        got["expires_at"],
        rfc3339(START + time::Duration::days(90)),
        "no contract_end: counted from creation"
    );
    let (st, p) = srv
        .patch(
            &record_path(&t.id, &s, &r),
            &t.owner,
            json!({ "purpose": "essential.service", "fields": { "contract_end": "2027-01-01" } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(
        p["expires_at"],
        rfc3339(time::macros::datetime!(2027-01-01 00:00 UTC) + time::Duration::days(90))
    );
    let (st, p) = srv
        .patch(
            &record_path(&t.id, &s, &r),
            &t.owner,
            json!({ "purpose": "essential.service", "fields": { "contract_end": null } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["expires_at"], rfc3339(START + time::Duration::days(90)));
}

#[tokio::test]
async fn invalid_patches_are_refused_and_change_nothing() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv, "BadPatch").await;
    let before = read(&srv, &t, &s, &r, ESSENTIAL).await;
    let path = record_path(&t.id, &s, &r);
    let resp = srv
        .patch(
            &path,
            &t.owner,
            json!({ "purpose": "essential.service", "fields": { "name": "Ok", "email": "nope" } }),
        )
        .await;
    assert_invalid_value(&resp, "email", "invalid_email");
    let resp = srv
        .patch(
            &path,
            &t.owner,
            json!({ "purpose": "essential.service", "fields": { "email": null } }),
        )
        .await;
    assert_invalid_value(&resp, "email", "null_required");
    let resp = srv
        .patch(
            &path,
            &t.owner,
            json!({ "purpose": "essential.service", "fields": { "name": "Ok", "shoe_size": 44 } }),
        )
        .await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_field",
        "shoe_size",
    );
    let resp = srv
        .patch(
            &path,
            &t.owner,
            json!({ "purpose": "essential.service", "fields": { "phone": "12" } }),
        )
        .await;
    assert_invalid_value(&resp, "phone", "invalid_phone");
    let resp = srv
        .patch(
            &path,
            &t.owner,
            json!({ "purpose": "essential.service", "fields": { "name": "x".repeat(201) } }),
        )
        .await;
    assert_invalid_value(&resp, "name", "too_long");
    let resp = srv
        .patch(&path, &t.owner, json!({ "name": "top-level" }))
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_body");
    let resp = srv
        .patch(
            &path,
            &t.owner,
            json!({ "purpose": "essential.service", "fields": { "name": "Ok" }, "revision": 9 }),
        )
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_body");
    assert_eq!(
        read(&srv, &t, &s, &r, ESSENTIAL).await,
        before,
        "refused patches left the record as it was"
    );
}

#[tokio::test]
async fn patch_and_delete_of_unknown_records_are_404() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv, "Unknown").await;
    let other = srv.subject(&t).await;
    let patch = json!({ "purpose": "essential.service", "fields": { "name": "X" } });
    for path in [
        record_path(&t.id, &s, NO_SUCH_ID),
        record_path(&t.id, NO_SUCH_ID, &r),
        record_path(&t.id, &other, &r),
    ] {
        let resp = srv.patch(&path, &t.owner, patch.clone()).await;
        assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
        let resp = srv.delete(&path, &t.owner).await;
        assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    }
    let resp = srv
        .patch(&record_path(&t.id, &s, "nope"), &t.owner, patch)
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_id");
    let got = read(&srv, &t, &s, &r, ESSENTIAL).await;
    assert_eq!(got["revision"], 1);
    assert_eq!(got["fields"]["name"], "Ada Lovelace");
}

#[tokio::test]
async fn delete_then_read_is_404_and_the_record_leaves_lists() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv, "Delete").await;
    let keep = srv
        .record(
            &t,
            &s,
            "contact",
            json!({ "name": "Keep", "email": "keep@example.com" }),
        )
        .await;
    let (st, body) = srv.delete(&record_path(&t.id, &s, &r), &t.owner).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    assert!(body.is_null());
    let resp = srv
        .get(&read_path(&t.id, &s, &r, ESSENTIAL), &t.owner)
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    let resp = srv.delete(&record_path(&t.id, &s, &r), &t.owner).await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    let resp = srv
        .patch(
            &record_path(&t.id, &s, &r),
            &t.owner,
            json!({ "purpose": "essential.service", "fields": { "name": "Zombie" } }),
        )
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(all_record_ids(&srv, &t, &s).await, vec![keep.clone()]);
    let _ = read(&srv, &t, &s, &keep, ESSENTIAL).await;
}

#[tokio::test]
async fn list_filters_by_collection_and_by_purpose() {
    let srv = crate::start().await;
    let t = srv.tenant("List").await;
    let s = srv.subject(&t).await;
    let mut ids = std::collections::HashMap::new();
    for sample in samples() {
        let id = srv
            .record(&t, &s, sample.collection, sample.input.clone())
            .await;
        ids.insert(sample.collection, id);
    }
    let contact2 = srv
        .record(
            &t,
            &s,
            "contact",
            json!({ "name": "Second", "email": "second@example.com" }),
        )
        .await;
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
    let t = srv.tenant("ListErrors").await;
    let s = srv.subject(&t).await;
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
    let err = assert_error(&resp, StatusCode::FORBIDDEN, "purpose_not_allowed");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains(ESSENTIAL),
        "{err}"
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
    let t = srv.tenant("Invalid").await;
    let s = srv.subject(&t).await;
    for (collection, field, bad, code) in invalid_values() {
        let mut fields = sample(collection).input;
        fields[field] = bad.clone();
        let resp = srv
            .post(
                &records_path(&t.id, &s),
                &t.owner,
                json!({ "collection": collection, "fields": fields }),
            )
            .await;
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
    let t = srv.tenant("NoEcho").await;
    let s = srv.subject(&t).await;
    let secret = "jane.doe.private at example.com";
    let resp = srv
        .post(
            &records_path(&t.id, &s),
            &t.owner,
            json!({ "collection": "contact", "fields": { "name": "Jane", "email": secret } }),
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
    let t = srv.tenant("Codes").await;
    let s = srv.subject(&t).await;
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
    let create = srv
        .post(
            &records_path(&t.id, &s),
            &t.owner,
            json!({ "collection": "contact", "fields": { "name": "N", "email": "not-an-email" } }),
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
    let t = srv.tenant("Structural").await;
    let s = srv.subject(&t).await;
    let path = records_path(&t.id, &s);
    let resp = srv
        .post(
            &path,
            &t.owner,
            json!({ "collection": "diary", "fields": { "entry": "dear diary" } }),
        )
        .await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_collection",
        "collection",
    );
    let resp = srv
        .post(
            &path,
            &t.owner,
            json!({ "collection": "contact", "fields": { "name": "No Email" } }),
        )
        .await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing_field",
        "email",
    );
    let resp = srv.post(&path, &t.owner, json!({ "collection": "job_application", "fields": { "name": "N", "email": "n@example.com" } })).await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing_field",
        "applied_on",
    );
    let mut fields = contact();
    fields["favourite_colour"] = json!("blue");
    let resp = srv
        .post(
            &path,
            &t.owner,
            json!({ "collection": "contact", "fields": fields }),
        )
        .await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_field",
        "favourite_colour",
    );
    let resp = srv.post(&path, &t.owner, json!({ "collection": "contact", "fields": { "name": null, "email": "a@example.com" } })).await;
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
    let t = srv.tenant("Bodies").await;
    let s = srv.subject(&t).await;
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

#[tokio::test]
async fn far_future_retention_dates_are_answered_not_crashed_on() {
    // Valid dates whose retention end falls after year 9999 must get an answer (stored with
    // some expiry, or refused with 422 naming the field), not a dropped connection.
    let srv = crate::start().await;
    let t = srv.tenant("FarFuture").await;
    let s = srv.subject(&t).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_patches_of_one_record_are_applied_one_at_a_time() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv, "Concurrent").await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let req = srv
            .request(Method::PATCH, &record_path(&t.id, &s, &r))
            .bearer_auth(&t.owner)
            .json(&json!({ "purpose": "essential.service", "return_fields": true, "fields": { "name": format!("Name {i}") } }));
        set.spawn(async move {
            let resp = req.send().await.expect("sent");
            let status = resp.status();
            (status, resp.json::<Value>().await.expect("json"))
        });
    }
    let mut applied = Vec::new();
    while let Some(res) = set.join_next().await {
        let (status, body) = res.expect("task");
        match status {
            StatusCode::OK => applied.push(body),
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "conflict", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert!(!applied.is_empty(), "at least one patch wins");
    let got = read(&srv, &t, &s, &r, ESSENTIAL).await;
    assert_eq!(
        got["revision"],
        1 + applied.len(),
        "every applied patch is one revision: {got}"
    );
    let last = applied
        .iter()
        .find(|p| p["revision"] == got["revision"])
        .expect("the newest applied patch");
    assert_eq!(got["fields"], last["fields"]);
    let mut revisions: Vec<i64> = applied
        .iter()
        .map(|p| p["revision"].as_i64().expect("revision"))
        .collect();
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(
        revisions.len(),
        applied.len(),
        "no two patches saw the same revision: {applied:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_does_not_fail_concurrent_ones() {
    let srv = crate::start().await;
    let t = srv.tenant("Isolated").await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..12 {
        let external_ref = if i % 2 == 0 {
            "same".to_owned()
        } else {
            format!("own-{}", "abcdefghijkl".chars().nth(i).expect("letter"))
        };
        let req = srv
            .request(Method::POST, &subjects_path(&t.id))
            .bearer_auth(&t.owner)
            .json(&json!({ "external_ref": external_ref }));
        set.spawn(async move {
            let resp = req.send().await.expect("sent");
            (
                external_ref,
                resp.status(),
                resp.json::<Value>().await.expect("json"),
            )
        });
    }
    let mut same_created = 0;
    while let Some(res) = set.join_next().await {
        let (external_ref, status, body) = res.expect("task");
        if external_ref == "same" {
            match status {
                StatusCode::CREATED => same_created += 1,
                StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "conflict"),
                other => panic!("{other}: {body}"),
            }
        } else {
            assert_eq!(status, StatusCode::CREATED, "{external_ref}: {body}");
            let (st, found) = srv
                .get(
                    &format!("{}?external_ref={external_ref}", subjects_path(&t.id)),
                    &t.owner,
                )
                .await;
            assert_eq!(st, StatusCode::OK);
            assert_eq!(found["id"], body["id"]);
        }
    }
    assert_eq!(
        same_created, 1,
        "exactly one subject gets the contested reference"
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
    let t = srv.tenant("Prefs").await;
    let s = srv.subject(&t).await;
    let purpose = "functional.service.improve";
    let (st, created) = srv
        .post(
            &records_path(&t.id, &s),
            &t.owner,
            json!({ "collection": "preferences", "fields": { "newsletter": false, "budget": 12.5 } }),
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

//! Writing records: create, patch and delete, with values normalized on the way in, because
//! what the vault stores (and later lists, exports and erases) must be the same whatever form
//! a client sent, and a revision or expiry must move only when the record really changed.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn every_collection_round_trips_normalized() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("RoundTrip").await;
    for sample in samples() {
        let (st, created) = write_raw(&srv, &t, &s, sample.collection, sample.input).await;
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
    let (t, s) = srv.tenant_and_subject("Stable").await;
    for sample in samples() {
        let (st, created) = write_raw(&srv, &t, &s, sample.collection, sample.stored.clone()).await;
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
    let (t, s) = srv.tenant_and_subject("Optional").await;
    let r = srv.contact(&t, &s, "Bo", "bo@example.org").await;
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
    let (t, s) = srv.tenant_and_subject("PatchExpiry").await;
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
    let keep = srv.contact(&t, &s, "Keep", "keep@example.com").await;
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

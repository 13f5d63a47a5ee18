//! `GET /v1/tenants/{t}/lookup`: exact match through the blind index.

use reqwest::StatusCode;
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};

use crate::common::*;

/// A lookup by the tenant's owner: the tests here vary only the query, so each call names
/// just what it changes.
async fn owner_lookup(
    srv: &TestServer,
    t: &TenantFixture,
    collection: &str,
    field: &str,
    value: &str,
    purpose: &str,
) -> (StatusCode, Value) {
    srv.get(
        &lookup_path(&t.id, collection, field, value, purpose),
        &t.owner,
    )
    .await
}

async fn lookup_ids(
    srv: &TestServer,
    t: &TenantFixture,
    collection: &str,
    field: &str,
    value: &str,
    purpose: &str,
) -> Vec<String> {
    let (st, b) = owner_lookup(srv, t, collection, field, value, purpose).await;
    assert_eq!(
        st,
        StatusCode::OK,
        "lookup {collection}.{field}={value}: {b}"
    );
    let mut ids: Vec<String> = b
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// Ids of the contacts whose e-mail is `email`, read for the essential service: the lookup
/// most tests here make.
async fn contacts_with_email(srv: &TestServer, t: &TenantFixture, email: &str) -> Vec<String> {
    lookup_ids(srv, t, "contact", "email", email, ESSENTIAL).await
}

/// Patches `fields` of a record as the tenant's owner for the essential service, to see what
/// each change does to the blind index.
async fn patch_fields(
    srv: &TestServer,
    t: &TenantFixture,
    s: &str,
    r: &str,
    fields: Value,
) -> (StatusCode, Value) {
    srv.patch(
        &record_path(&t.id, s, r),
        &t.owner,
        json!({ "purpose": ESSENTIAL, "fields": fields }),
    )
    .await
}

#[tokio::test]
async fn lookup_by_email_is_case_insensitive_and_returns_the_record() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Lookup").await;
    let sample = sample("contact");
    let r = srv.record(&t, &s, "contact", sample.input.clone()).await;
    for value in [
        "Ada.Lovelace@example.com",
        "Ada.Lovelace@EXAMPLE.COM",
        "ada.lovelace@Example.Com",
        "  Ada.Lovelace@example.com ",
    ] {
        let (st, hits) = owner_lookup(&srv, &t, "contact", "email", value, ESSENTIAL).await;
        assert_eq!(st, StatusCode::OK, "{value}: {hits}");
        let hits = hits.as_array().expect("array");
        assert_eq!(hits.len(), 1, "{value}: {hits:?}");
        assert_eq!(hits[0]["id"], r.as_str());
        assert_eq!(hits[0]["subject"], s.as_str());
        assert_eq!(hits[0]["fields"], sample.stored);
    }
    // The phone is searchable too, whatever its formatting.
    for value in ["+442079460958", "+44 (0)20 7946 0958", "0044 20 7946 0958"] {
        assert_eq!(
            lookup_ids(&srv, &t, "contact", "phone", value, ESSENTIAL).await,
            vec![r.clone()],
            "{value}"
        );
    }
    assert_eq!(
        contacts_with_email(&srv, &t, "someone.else@example.com").await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn lookup_covers_every_searchable_field_of_the_policy() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Searchable").await;
    let mut ids = std::collections::HashMap::new();
    for sample in samples() {
        ids.insert(
            sample.collection,
            srv.record(&t, &s, sample.collection, sample.input).await,
        );
    }
    let cases = [
        (
            "job_application",
            "email",
            "GRACE.HOPPER@navy.mil",
            RECRUITMENT,
        ),
        ("browser_visit", "ip", "::ffff:192.0.2.17", ANALYTICS),
        ("browser_visit", "ip", "192.0.2.17", SECURITY),
        ("customer_record", "email", "linus@example.fi", ESSENTIAL),
        ("customer_record", "phone", "+358401234567", ESSENTIAL),
        ("billing", "invoice_number", "INV-2026-0001", LEGAL),
        ("server_log", "ip", "203.0.113.9", SECURITY),
    ];
    for (collection, field, value, purpose) in cases {
        assert_eq!(
            lookup_ids(&srv, &t, collection, field, value, purpose).await,
            vec![ids[collection].clone()],
            "{collection}.{field}"
        );
    }
    // Exact match only: no prefix search.
    assert_eq!(
        lookup_ids(&srv, &t, "billing", "invoice_number", "INV-2026", LEGAL).await,
        Vec::<String>::new()
    );
    // The same address in two collections is found only in the one asked for.
    let dup = srv.contact(&t, &s, "Linus", "linus@example.fi").await;
    assert_eq!(
        contacts_with_email(&srv, &t, "linus@example.fi").await,
        vec![dup]
    );
    assert_eq!(
        lookup_ids(
            &srv,
            &t,
            "customer_record",
            "email",
            "linus@example.fi",
            ESSENTIAL
        )
        .await,
        vec![ids["customer_record"].clone()]
    );
}

#[tokio::test]
async fn lookup_finds_every_subject_sharing_a_value() {
    let srv = crate::start().await;
    let t = srv.tenant("Shared").await;
    let a = srv.subject(&t).await;
    let b = srv.subject(&t).await;
    let ra = srv.contact(&t, &a, "A", "desk@example.com").await;
    let rb = srv.contact(&t, &b, "B", "Desk@Example.com").await;
    let (st, hits) =
        owner_lookup(&srv, &t, "contact", "email", "desk@example.com", ESSENTIAL).await;
    assert_eq!(st, StatusCode::OK);
    let mut got: Vec<(Value, Value)> = hits
        .as_array()
        .expect("array")
        .iter()
        .map(|h| (h["subject"].clone(), h["id"].clone()))
        .collect();
    got.sort_by_key(|(_, id)| id.to_string());
    let mut want = vec![(json!(a), json!(ra)), (json!(b), json!(rb))];
    want.sort_by_key(|(_, id)| id.to_string());
    assert_eq!(got, want);
}

#[tokio::test]
async fn lookup_follows_patches_and_deletes() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv, "Follow").await;
    assert_eq!(
        contacts_with_email(&srv, &t, "ada@example.com").await,
        vec![r.clone()]
    );
    let (st, b) = patch_fields(
        &srv,
        &t,
        &s,
        &r,
        json!({ "email": "countess@Lovelace.org" }),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(
        contacts_with_email(&srv, &t, "countess@lovelace.org").await,
        vec![r.clone()]
    );
    assert_eq!(
        contacts_with_email(&srv, &t, "ada@example.com").await,
        Vec::<String>::new()
    );
    // Patching another field keeps the index of the e-mail.
    let (st, _) = patch_fields(&srv, &t, &s, &r, json!({ "name": "A. King" })).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        contacts_with_email(&srv, &t, "countess@lovelace.org").await,
        vec![r.clone()]
    );
    // Removing a searchable optional field removes it from the index.
    assert_eq!(
        lookup_ids(&srv, &t, "contact", "phone", "+442079460958", ESSENTIAL).await,
        vec![r.clone()]
    );
    let (st, _) = patch_fields(&srv, &t, &s, &r, json!({ "phone": null })).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        lookup_ids(&srv, &t, "contact", "phone", "+442079460958", ESSENTIAL).await,
        Vec::<String>::new()
    );
    // A refused patch leaves the index as it was.
    let (st, _) = patch_fields(
        &srv,
        &t,
        &s,
        &r,
        json!({ "email": "new@example.com", "phone": "bad" }),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        contacts_with_email(&srv, &t, "new@example.com").await,
        Vec::<String>::new()
    );
    assert_eq!(
        contacts_with_email(&srv, &t, "countess@lovelace.org").await,
        vec![r.clone()]
    );
    let (st, _) = srv.delete(&record_path(&t.id, &s, &r), &t.owner).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        contacts_with_email(&srv, &t, "countess@lovelace.org").await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn lookup_errors() {
    let srv = crate::start().await;
    let (t, _, _) = tenant_with_contact(&srv, "LookupErrors").await;
    let resp = owner_lookup(&srv, &t, "contact", "name", "Ada Lovelace", ESSENTIAL).await;
    let err = assert_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "field_not_searchable",
    );
    assert_eq!(err["field"], "field");
    let resp = owner_lookup(&srv, &t, "contact", "shoe_size", "44", ESSENTIAL).await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "field_not_searchable",
        "field",
    );
    let resp = owner_lookup(&srv, &t, "diary", "email", "ada@example.com", ESSENTIAL).await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_collection",
        "collection",
    );
    let resp = owner_lookup(&srv, &t, "contact", "email", "ada at example", ESSENTIAL).await;
    assert_field_error(
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_email",
        "value",
    );
    let resp = owner_lookup(&srv, &t, "contact", "email", "ada@example.com", ANALYTICS).await;
    assert_error_mentioning(
        &resp,
        StatusCode::FORBIDDEN,
        "purpose_not_allowed",
        ANALYTICS,
    );
    let resp = owner_lookup(
        &srv,
        &t,
        "contact",
        "email",
        "ada@example.com",
        "not a purpose",
    )
    .await;
    assert_field_error(&resp, StatusCode::BAD_REQUEST, "invalid_purpose", "purpose");
    let resp = srv
        .get(
            &format!(
                "/v1/tenants/{}/lookup?field=email&value=ada%40example.com&purpose={ESSENTIAL}",
                t.id
            ),
            &t.owner,
        )
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_query");
    let resp = srv
        .get(
            &format!(
                "{}&extra=1",
                lookup_path(&t.id, "contact", "email", "ada@example.com", ESSENTIAL)
            ),
            &t.owner,
        )
        .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn lookup_without_purpose_is_refused_like_every_other_read() {
    // Reads of records without a purpose answer 400 `purpose_required` naming `purpose`; a
    // lookup is a read too and must answer the same.
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv, "NoPurpose").await;
    let read = srv.get(&record_path(&t.id, &s, &r), &t.owner).await;
    assert_field_error(
        &read,
        StatusCode::BAD_REQUEST,
        "purpose_required",
        "purpose",
    );
    let resp = srv
        .get(
            &format!(
                "/v1/tenants/{}/lookup?collection=contact&field=email&value=ada%40example.com",
                t.id
            ),
            &t.owner,
        )
        .await;
    assert_field_error(
        &resp,
        StatusCode::BAD_REQUEST,
        "purpose_required",
        "purpose",
    );
}

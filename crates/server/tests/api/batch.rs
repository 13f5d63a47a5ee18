//! `POST /v1/tenants/{t}/batch`: many writes, one transaction, all or nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};

use crate::common::*;

fn batch_path(t: &str) -> String {
    format!("/v1/tenants/{t}/batch")
}

async fn find_ref(srv: &TestServer, t: &TenantFixture, external_ref: &str) -> (StatusCode, Value) {
    srv.get(
        &format!(
            "{}?external_ref={}",
            subjects_path(&t.id),
            enc(external_ref)
        ),
        &t.owner,
    )
    .await
}

#[tokio::test]
async fn batch_creates_subjects_and_records_with_references() {
    let srv = crate::start().await;
    let t = srv.tenant("Batch").await;
    let existing = srv.subject(&t).await;
    let contact = sample("contact");
    let customer = sample("customer_record");
    let items = json!({ "items": [
        { "op": "create_subject", "external_ref": "crm-1" },
        { "op": "create_record", "subject": "#0", "collection": "contact", "fields": contact.input },
        { "op": "create_record", "subject": "#0", "collection": "customer_record", "fields": customer.input },
        { "op": "create_subject" },
        { "op": "create_record", "subject": "#3", "collection": "contact", "fields": { "name": "Second", "email": "second@example.com" } },
        { "op": "create_record", "subject": existing, "collection": "contact", "fields": { "name": "Old", "email": "old@example.com" } },
    ]});
    let (st, out) = srv.post(&batch_path(&t.id), &t.owner, items).await;
    assert_eq!(st, StatusCode::OK, "{out}");
    let results = out["results"].as_array().expect("results");
    assert_eq!(results.len(), 6);
    let s0 = results[0]["id"].as_str().expect("subject id").to_owned();
    let s3 = results[3]["id"].as_str().expect("subject id").to_owned();
    assert_ne!(s0, s3);
    assert_eq!(results[0]["restrictions"], json!([]));
    assert_eq!(results[1]["subject"], s0.as_str());
    assert_eq!(results[2]["subject"], s0.as_str());
    for (i, _) in results.iter().enumerate().skip(1) {
        assert!(
            results[i].get("fields").is_none(),
            "a create answers without values: {}",
            results[i]
        );
    }
    assert_eq!(results[4]["subject"], s3.as_str());
    assert_eq!(results[5]["subject"], existing.as_str());
    // Everything is there and reads back as the batch answered.
    let (st, found) = find_ref(&srv, &t, "crm-1").await;
    assert_eq!(st, StatusCode::OK, "{found}");
    assert_eq!(found["id"], s0.as_str());
    for (i, subject, purpose) in [
        (1, &s0, ESSENTIAL),
        (2, &s0, ESSENTIAL),
        (4, &s3, ESSENTIAL),
        (5, &existing, ESSENTIAL),
    ] {
        let id = results[i]["id"].as_str().expect("record id");
        let mut got = read(&srv, &t, subject, id, purpose).await;
        let fields = got.as_object_mut().expect("record").remove("fields");
        assert_eq!(got, results[i], "item {i}");
        let expected = if i == 2 {
            &customer.stored
        } else {
            &contact.stored
        };
        if i <= 2 {
            assert_eq!(fields.as_ref(), Some(expected), "item {i} normalized");
        }
    }
    assert_eq!(all_record_ids(&srv, &t, &s0).await.len(), 2);
    // The blind index was written too.
    let (st, hits) = srv
        .get(
            &lookup_path(&t.id, "contact", "email", "second@example.com", ESSENTIAL),
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(hits.as_array().map(Vec::len), Some(1), "{hits}");
}

#[tokio::test]
async fn batch_updates_and_deletes() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv, "BatchUpd").await;
    let gone = srv.contact(&t, &s, "Gone", "gone@example.com").await;
    let items = json!({ "items": [
        { "op": "update_record", "subject": s, "record": r, "purpose": "essential.service", "return_fields": true, "fields": { "name": "Ada King", "company": null } },
        { "op": "delete_record", "subject": s, "record": gone },
    ]});
    let (st, out) = srv.post(&batch_path(&t.id), &t.owner, items).await;
    assert_eq!(st, StatusCode::OK, "{out}");
    let results = out["results"].as_array().expect("results");
    assert_eq!(results[0]["revision"], 2);
    assert_eq!(results[0]["fields"]["name"], "Ada King");
    assert!(results[0]["fields"].get("company").is_none());
    assert_eq!(results[1], json!({ "deleted": gone }));
    assert_eq!(read(&srv, &t, &s, &r, ESSENTIAL).await, results[0]);
    let resp = srv
        .get(&read_path(&t.id, &s, &gone, ESSENTIAL), &t.owner)
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(all_record_ids(&srv, &t, &s).await, vec![r]);
}

/// A call's items for one existing subject share one read of it (the vault keeps the subjects
/// a call read): every record still lands, and a subject the caller cannot see still fails
/// its item and the whole call.
#[tokio::test]
async fn records_for_one_existing_subject_and_a_foreign_one() {
    let srv = crate::start().await;
    let t = srv.tenant("BatchSame").await;
    let s = srv.subject(&t).await;
    let contact = |i: usize| {
        json!({ "op": "create_record", "subject": s, "collection": "contact",
                "fields": { "name": format!("Same {}", letters(i)), "email": format!("{}@example.com", letters(i)) } })
    };
    let items: Vec<Value> = (0..5).map(contact).collect();
    let (st, out) = srv
        .post(&batch_path(&t.id), &t.owner, json!({ "items": items }))
        .await;
    assert_eq!(st, StatusCode::OK, "{out}");
    assert_eq!(all_record_ids(&srv, &t, &s).await.len(), 5);
    let other = srv.tenant("BatchForeign").await;
    let foreign = srv.subject(&other).await;
    let items = json!({ "items": [
        contact(5),
        { "op": "create_record", "subject": foreign, "collection": "contact", "fields": { "name": "Foreign", "email": "foreign@example.com" } },
        contact(6),
    ]});
    let resp = srv.post(&batch_path(&t.id), &t.owner, items).await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(all_record_ids(&srv, &t, &s).await.len(), 5, "nothing written");
    assert!(all_record_ids(&srv, &other, &foreign).await.is_empty());
}

/// `n` in base 26 with the digits a to z.
fn letters(mut n: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + u8::try_from(n % 26).expect("below 26"));
        n /= 26;
        if n == 0 {
            break;
        }
    }
    String::from_utf8(out).expect("ascii")
}

/// Sends a batch whose last item is refused, after items that would each succeed alone, and
/// checks that none of them happened.
async fn assert_atomic(
    srv: &TestServer,
    t: &TenantFixture,
    token: &str,
    bad: Value,
    status: StatusCode,
    code: &str,
) -> Value {
    let s = srv.subject(t).await;
    let keep = srv.contact(t, &s, "Keep", "keep@example.com").await;
    let doomed = srv.contact(t, &s, "Doomed", "doomed@example.com").await;
    let before = read(srv, t, &s, &keep, ESSENTIAL).await;
    // Letters only: a random number in a value could look like a card number.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tag = format!("atomic-{}", letters(n));
    let items = json!({ "items": [
        { "op": "update_record", "subject": s, "record": keep, "purpose": "essential.service", "fields": { "name": "Changed" } },
        { "op": "delete_record", "subject": s, "record": doomed },
        { "op": "create_subject", "external_ref": tag },
        { "op": "create_record", "subject": "#2", "collection": "contact", "fields": { "name": "New", "email": format!("{tag}@example.com") } },
        { "op": "create_record", "subject": s, "collection": "contact", "fields": { "name": "Also new", "email": "also@example.com" } },
        bad,
    ]});
    let resp = srv.post(&batch_path(&t.id), token, items).await;
    let err = assert_error(&resp, status, code);
    // Nothing of it happened.
    assert_eq!(
        read(srv, t, &s, &keep, ESSENTIAL).await,
        before,
        "update rolled back"
    );
    let _ = read(srv, t, &s, &doomed, ESSENTIAL).await;
    let mut want = vec![keep, doomed];
    want.sort();
    assert_eq!(
        all_record_ids(srv, t, &s).await,
        want,
        "no record created or deleted"
    );
    let nf = find_ref(srv, t, &tag).await;
    assert_error(&nf, StatusCode::NOT_FOUND, "not_found");
    let (st, hits) = srv
        .get(
            &lookup_path(
                &t.id,
                "contact",
                "email",
                &format!("{tag}@example.com"),
                ESSENTIAL,
            ),
            &t.owner,
        )
        .await;
    assert_eq!((st, hits), (StatusCode::OK, json!([])));
    err
}

#[tokio::test]
async fn a_batch_with_an_invalid_item_writes_nothing_and_names_the_item() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Atomic").await;

    // The third item is invalid.
    let items = json!({ "items": [
        { "op": "create_subject", "external_ref": "third-1" },
        { "op": "create_record", "subject": "#0", "collection": "contact", "fields": { "name": "Ok", "email": "ok@example.com" } },
        { "op": "create_record", "subject": "#0", "collection": "contact", "fields": { "name": "Bad", "email": "bad-email" } },
    ]});
    let resp = srv.post(&batch_path(&t.id), &t.owner, items).await;
    assert_invalid_value(&resp, "items[2].email", "invalid_email");
    assert!(
        resp.1["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("item 2: "),
        "{}",
        resp.1
    );
    let nf = find_ref(&srv, &t, "third-1").await;
    assert_error(&nf, StatusCode::NOT_FOUND, "not_found");
    let (_, hits) = srv
        .get(
            &lookup_path(&t.id, "contact", "email", "ok@example.com", ESSENTIAL),
            &t.owner,
        )
        .await;
    assert_eq!(hits, json!([]));

    // Every kind of refusal at the end of a batch undoes the items before it.
    let cases: Vec<(Value, StatusCode, &str, Option<&str>)> = vec![
        (
            json!({ "op": "create_record", "subject": s, "collection": "contact", "fields": { "name": "X", "email": "x@example.com", "eye_colour": "green" } }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_field",
            Some("items[5].eye_colour"),
        ),
        (
            json!({ "op": "create_record", "subject": s, "collection": "contact", "fields": { "name": "X" } }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            Some("items[5].email"),
        ),
        (
            json!({ "op": "create_record", "subject": s, "collection": "diary", "fields": {} }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_collection",
            Some("items[5].collection"),
        ),
        (
            json!({ "op": "create_record", "subject": s, "collection": "contact", "fields": { "name": "4111 1111 1111 1111", "email": "x@example.com" } }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "card_data_refused",
            Some("items[5].name"),
        ),
        (
            json!({ "op": "create_record", "subject": NO_SUCH_ID, "collection": "contact", "fields": { "name": "X", "email": "x@example.com" } }),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            json!({ "op": "update_record", "subject": s, "record": NO_SUCH_ID, "purpose": "essential.service", "fields": { "name": "X" } }),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            json!({ "op": "delete_record", "subject": s, "record": NO_SUCH_ID }),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            json!({ "op": "create_record", "subject": "#4", "collection": "contact", "fields": { "name": "X", "email": "x@example.com" } }),
            StatusCode::BAD_REQUEST,
            "invalid_reference",
            Some("items[5].subject"),
        ),
        (
            json!({ "op": "create_record", "subject": "#9", "collection": "contact", "fields": { "name": "X", "email": "x@example.com" } }),
            StatusCode::BAD_REQUEST,
            "invalid_reference",
            Some("items[5].subject"),
        ),
        (
            json!({ "op": "create_record", "subject": "someone", "collection": "contact", "fields": { "name": "X", "email": "x@example.com" } }),
            StatusCode::BAD_REQUEST,
            "invalid_id",
            Some("items[5].subject"),
        ),
        (
            json!({ "op": "create_subject", "external_ref": "" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_external_ref",
            Some("items[5].external_ref"),
        ),
    ];
    for (bad, status, code, field) in cases {
        let err = assert_atomic(&srv, &t, &t.owner, bad.clone(), status, code).await;
        match field {
            Some(f) => assert_eq!(err["field"], f, "{bad}: {err}"),
            None => assert!(err.get("field").is_none(), "{bad}: {err}"),
        }
    }
}

#[tokio::test]
async fn a_batch_refused_by_the_access_rules_writes_nothing() {
    let srv = crate::start().await;
    let t = srv.tenant("AtomicRoles").await;
    // A member for essential purposes may write contacts but not job applications.
    let member = srv.key(&t.id, &t.owner, "member", &[ESSENTIAL]).await;
    let err = assert_atomic(
        &srv,
        &t,
        &member,
        json!({ "op": "create_record", "subject": "#2", "collection": "job_application", "fields": sample("job_application").input }),
        StatusCode::FORBIDDEN,
        "purpose_not_allowed",
    )
    .await;
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("item 5: "),
        "{err}"
    );
}

#[tokio::test]
async fn duplicate_external_refs_in_one_batch_are_409_and_write_nothing() {
    let srv = crate::start().await;
    let t = srv.tenant("DupBatch").await;
    let _ = subject_with_ref(&srv, &t, "taken").await;
    let err = assert_atomic(
        &srv,
        &t,
        &t.owner,
        json!({ "op": "create_subject", "external_ref": "taken" }),
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert!(
        err.get("field").is_none()
            || err["field"]
                .as_str()
                .is_some_and(|f| f.starts_with("items[5]")),
        "{err}"
    );
    let items = json!({ "items": [
        { "op": "create_subject", "external_ref": "twice" },
        { "op": "create_subject", "external_ref": "twice" },
    ]});
    let resp = srv.post(&batch_path(&t.id), &t.owner, items).await;
    assert_error(&resp, StatusCode::CONFLICT, "conflict");
    let nf = find_ref(&srv, &t, "twice").await;
    assert_error(&nf, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn batch_size_limits() {
    let srv = crate::start().await;
    let t = srv.tenant("Sizes").await;
    let resp = srv
        .post(&batch_path(&t.id), &t.owner, json!({ "items": [] }))
        .await;
    assert_field_error(&resp, StatusCode::BAD_REQUEST, "empty_batch", "items");

    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({ "op": "create_subject", "external_ref": format!("many-{i}") }))
        .collect();
    let resp = srv
        .post(&batch_path(&t.id), &t.owner, json!({ "items": too_many }))
        .await;
    assert_error_mentioning(&resp, StatusCode::PAYLOAD_TOO_LARGE, "too_large", "1000");
    let nf = find_ref(&srv, &t, "many-0").await;
    assert_error(&nf, StatusCode::NOT_FOUND, "not_found");

    // Exactly 1000 is fine.
    let full: Vec<Value> = (0..1000)
        .map(|i| json!({ "op": "create_subject", "external_ref": format!("full-{i}") }))
        .collect();
    let (st, out) = srv
        .post(&batch_path(&t.id), &t.owner, json!({ "items": full }))
        .await;
    assert_eq!(st, StatusCode::OK, "{out}");
    assert_eq!(out["results"].as_array().map(Vec::len), Some(1000));
    let (st, last) = find_ref(&srv, &t, "full-999").await;
    assert_eq!(st, StatusCode::OK, "{last}");
    assert_eq!(last["id"], out["results"][999]["id"]);

    // A body over 8 MiB is refused before it is parsed.
    let big = json!({ "items": [
        { "op": "create_subject", "external_ref": "big" },
        { "op": "create_record", "subject": "#0", "collection": "contact", "fields": { "name": "x".repeat(9 * 1024 * 1024), "email": "x@example.com" } },
    ]});
    let resp = srv.post(&batch_path(&t.id), &t.owner, big).await;
    assert_error(&resp, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    let nf = find_ref(&srv, &t, "big").await;
    assert_error(&nf, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn malformed_batches_are_400() {
    let srv = crate::start().await;
    let t = srv.tenant("Malformed").await;
    for body in [
        json!({}),
        json!({ "items": "everything" }),
        json!({ "items": [{ "op": "drop_table" }] }),
        json!({ "items": [{ "op": "create_subject", "external_ref": "a", "extra": 1 }] }),
        json!({ "items": [{ "op": "update_record", "subject": "not-a-uuid", "record": NO_SUCH_ID, "purpose": "essential.service", "fields": {} }] }),
        json!({ "items": [{ "subject": "#0" }] }),
        json!({ "items": [{ "op": "create_subject" }], "atomic": false }),
    ] {
        let resp = srv.post(&batch_path(&t.id), &t.owner, body.clone()).await;
        assert_eq!(resp.0, StatusCode::BAD_REQUEST, "{body}: {}", resp.1);
        assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_body");
    }
}

#[tokio::test]
async fn two_updates_of_one_record_in_a_batch() {
    // Items are applied in order, so two patches of one record either both apply (revision
    // +2) or the batch is refused deterministically, naming the second item. A 409 "changed
    // concurrently; read it again" is wrong: nothing was concurrent and a retry fails the same.
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv, "TwoUpdates").await;
    let items = json!({ "items": [
        { "op": "update_record", "subject": s, "record": r, "purpose": "essential.service", "fields": { "name": "First" } },
        { "op": "update_record", "subject": s, "record": r, "purpose": "essential.service", "fields": { "company": "Second" } },
    ]});
    let resp = srv.post(&batch_path(&t.id), &t.owner, items).await;
    let got = read(&srv, &t, &s, &r, ESSENTIAL).await;
    if resp.0 == StatusCode::OK {
        assert_eq!(got["revision"], 3, "{got}");
        assert_eq!(got["fields"]["name"], "First");
        assert_eq!(got["fields"]["company"], "Second");
        assert_eq!(resp.1["results"][1], got);
    } else {
        assert!(
            matches!(
                resp.0,
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{:?} {}",
            resp.0,
            resp.1
        );
        assert!(
            resp.1["error"]["field"]
                .as_str()
                .is_some_and(|f| f.starts_with("items[1]")),
            "{}",
            resp.1
        );
        assert_eq!(got["revision"], 1);
    }
}

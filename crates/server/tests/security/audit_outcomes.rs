//! What gets logged when a request does not simply succeed: refused writes leave nothing, a
//! denied read leaves exactly one denial, a batch is audited item by item or not at all, and
//! a search that finds nothing is still an access, so the log neither lies nor misses probes.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::audit_common::{call, one, s};
use crate::support::{audit_all, audit_page, enc, indices, send, with_rid};

#[tokio::test]
async fn refused_writes_leave_no_event() {
    let srv = crate::start().await;
    let t = srv.tenant("Refused Writes").await;
    let subj = srv.subject(&t).await;
    let rec = srv
        .contact(&t, &subj, "Valid Person", "valid@example.org")
        .await;
    let records = format!("/v1/tenants/{}/subjects/{subj}/records", t.id);

    let before = audit_page(&srv, &t.id, &t.owner, "limit=1000", Some("rid-count-1")).await;
    let before = before.json["events"].as_array().unwrap().clone();
    let last = *indices(&before).last().unwrap();

    let refused: Vec<(&str, Method, String, Value, &str)> = vec![
        (
            "rid-bad-email",
            Method::POST,
            records.clone(),
            json!({ "collection": "contact", "fields": { "name": "Refused One", "email": "not-an-email" } }),
            "invalid_email",
        ),
        (
            "rid-card-field",
            Method::POST,
            records.clone(),
            json!({ "collection": "contact", "fields": { "name": "Refused Two", "email": "r2@example.org", "company": "4111 1111 1111 1111" } }),
            "card_data_refused",
        ),
        (
            "rid-card-json",
            Method::POST,
            records.clone(),
            json!({ "collection": "customer_record", "fields": { "name": "Refused Three", "notes": { "pay": ["5500-0000-0000-0004"] } } }),
            "card_data_refused",
        ),
        (
            "rid-unknown-field",
            Method::POST,
            records.clone(),
            json!({ "collection": "contact", "fields": { "name": "Refused Four", "email": "r4@example.org", "shoe_size": 44 } }),
            "unknown_field",
        ),
        (
            "rid-missing-field",
            Method::POST,
            records.clone(),
            json!({ "collection": "contact", "fields": { "name": "Refused Five" } }),
            "missing_field",
        ),
        (
            "rid-bad-patch",
            Method::PATCH,
            format!("{records}/{rec}"),
            json!({ "purpose": "essential.service", "fields": { "email": "still not an email" } }),
            "invalid_email",
        ),
        (
            "rid-card-patch",
            Method::PATCH,
            format!("{records}/{rec}"),
            json!({ "purpose": "essential.service", "fields": { "postal_address": "card 4111111111111111 here" } }),
            "card_data_refused",
        ),
        (
            "rid-card-ref",
            Method::POST,
            format!("/v1/tenants/{}/subjects", t.id),
            json!({ "external_ref": "4111-1111-1111-1111" }),
            "card_data_refused",
        ),
    ];
    for (rid, method, path, body, code) in &refused {
        let r = send(
            &srv,
            method.clone(),
            path,
            Some(&t.owner),
            Some(body.clone()),
            Some(rid),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{rid}: {}",
            r.text
        );
        assert_eq!(r.code(), *code, "{rid}: {}", r.text);
        assert!(
            !r.text.contains("4111"),
            "{rid}: the refused value is echoed: {}",
            r.text
        );
    }

    let after = audit_all(&srv, &t.id, &t.owner, "").await;
    // Exactly one event appeared: the audit read that produced `before`.
    let new: Vec<&Value> = after
        .iter()
        .filter(|e| e["index"].as_u64().unwrap() > last)
        .collect();
    assert_eq!(new.len(), 1, "refused writes left events: {new:?}");
    assert_eq!(new[0]["action"], "audit_read");
    assert_eq!(new[0]["request_id"], "rid-count-1");
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "earlier events changed"
    );
    for (rid, ..) in &refused {
        assert!(with_rid(&after, rid).is_empty(), "{rid} left an event");
    }
    // The valid record is unchanged by the refused patches.
    let (st, b) = srv
        .get(
            &format!("{records}/{rec}?purpose=essential.service"),
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(b["revision"], 1, "{b}");
}

#[tokio::test]
async fn denied_read_leaves_exactly_one_denial_event() {
    let srv = crate::start().await;
    let t = srv.tenant("Denied Read").await;
    let subj = srv.subject(&t).await;
    let rec = srv
        .contact(&t, &subj, "Denied Person", "denied@example.org")
        .await;
    let before = audit_page(&srv, &t.id, &t.owner, "limit=1000", Some("rid-before")).await;
    let last = *indices(before.json["events"].as_array().unwrap())
        .last()
        .unwrap();

    let path = format!(
        "/v1/tenants/{}/subjects/{subj}/records/{rec}?purpose=analytics.reporting",
        t.id
    );
    let r = call(
        &srv,
        Method::GET,
        &path,
        &t.owner,
        None,
        "rid-wrong-purpose",
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(r.code(), "purpose_not_allowed");
    assert!(!r.text.contains("Denied Person"), "{}", r.text);

    let after = audit_all(&srv, &t.id, &t.owner, "").await;
    let new: Vec<&Value> = after
        .iter()
        .filter(|e| e["index"].as_u64().unwrap() > last)
        .collect();
    assert_eq!(
        new.len(),
        2,
        "expected the earlier audit read and one denial: {new:?}"
    );
    assert_eq!(new[0]["request_id"], "rid-before");
    let e = new[1];
    assert_eq!(e["request_id"], "rid-wrong-purpose");
    assert_eq!(e["outcome"], "denied");
    assert_eq!(e["action"], "record_read");
    assert_eq!(e["purpose"], "analytics.reporting");
    assert_eq!(e["record"], rec.as_str());
    assert_eq!(e["collection"], "contact");
    let reason = s(&e["reason"]);
    assert!(
        reason.contains("analytics.reporting"),
        "reason must name the purpose: {reason}"
    );
    assert!(
        !reason.contains("Denied Person") && !reason.contains("denied@example.org"),
        "{reason}"
    );

    let denied = audit_all(&srv, &t.id, &t.owner, "outcome=denied").await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0], *e);
}

#[tokio::test]
async fn batches_audit_every_item_or_nothing() {
    let srv = crate::start().await;
    let t = srv.tenant("Batch Audit").await;
    let batch = format!("/v1/tenants/{}/batch", t.id);
    let before = audit_page(&srv, &t.id, &t.owner, "limit=1000", Some("rid-batch-count")).await;
    let last = *indices(before.json["events"].as_array().unwrap())
        .last()
        .unwrap();

    // One bad item refuses the whole batch, and nothing of it is logged.
    let bad = json!({ "items": [
        { "op": "create_subject" },
        { "op": "create_record", "subject": "#0", "collection": "contact", "fields": { "name": "Batch Good", "email": "good@example.org" } },
        { "op": "create_record", "subject": "#0", "collection": "contact", "fields": { "name": "Batch Bad", "email": "no-at-sign" } }
    ]});
    let r = call(
        &srv,
        Method::POST,
        &batch,
        &t.owner,
        Some(bad),
        "rid-batch-bad",
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(r.code(), "invalid_email", "{}", r.text);
    let after = audit_all(&srv, &t.id, &t.owner, "").await;
    let new: Vec<&Value> = after
        .iter()
        .filter(|e| e["index"].as_u64().unwrap() > last)
        .collect();
    assert_eq!(new.len(), 1, "a refused batch left events: {new:?}");
    assert_eq!(new[0]["request_id"], "rid-batch-count");

    // A good batch logs every item, under the batch's request id, in item order.
    let good = json!({ "items": [
        { "op": "create_subject" },
        { "op": "create_record", "subject": "#0", "collection": "contact", "fields": { "name": "Batch One", "email": "one@example.org" } },
        { "op": "create_record", "subject": "#0", "collection": "customer_record", "fields": { "name": "Batch Two" } }
    ]});
    let r = call(
        &srv,
        Method::POST,
        &batch,
        &t.owner,
        Some(good),
        "rid-batch-ok",
        StatusCode::OK,
    )
    .await;
    let results = r.json["results"].as_array().expect("results");
    let subj = s(&results[0]["id"]);
    let events = audit_all(&srv, &t.id, &t.owner, "").await;
    let logged = with_rid(&events, "rid-batch-ok");
    let summary: Vec<(String, Option<String>, Option<String>)> = logged
        .iter()
        .map(|e| {
            (
                s(&e["action"]),
                e["record"].as_str().map(str::to_owned),
                e["collection"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("subject_create".to_owned(), None, None),
            (
                "record_create".to_owned(),
                Some(s(&results[1]["id"])),
                Some("contact".to_owned())
            ),
            (
                "record_create".to_owned(),
                Some(s(&results[2]["id"])),
                Some("customer_record".to_owned())
            ),
        ]
    );
    for e in &logged {
        assert_eq!(e["subject"], subj.as_str());
        assert_eq!(e["outcome"], "allowed");
        assert!(
            !e.to_string().contains("Batch One") && !e.to_string().contains("one@example.org"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn searches_that_find_nothing_are_audited_too() {
    // Whether someone is a data subject of the tenant is itself personal data, and external
    // references are guessable (customer numbers, e-mails): a probe that finds nothing is an
    // access and must be in the log, as the blind-index lookup already does.
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Empty Answers").await;
    srv.contact(&t, &s, "Known Person", "known@example.org")
        .await;
    let probe = "crm-ref-of-someone-else-42";

    // Control: a blind-index lookup with no hit is logged once.
    let path = format!(
        "/v1/tenants/{}/lookup?collection=contact&field=email&value={}&purpose=essential.service",
        t.id,
        enc("nobody@example.org")
    );
    let r = call(
        &srv,
        Method::GET,
        &path,
        &t.owner,
        None,
        "rid-empty-lookup",
        StatusCode::OK,
    )
    .await;
    assert_eq!(r.json, json!([]));

    // An external-reference lookup with no hit.
    let path = format!("/v1/tenants/{}/subjects?external_ref={}", t.id, enc(probe));
    call(
        &srv,
        Method::GET,
        &path,
        &t.owner,
        None,
        "rid-empty-ref",
        StatusCode::NOT_FOUND,
    )
    .await;

    let events = audit_all(&srv, &t.id, &t.owner, "").await;
    let e = one(&events, "rid-empty-lookup");
    assert_eq!(e["action"], "lookup");
    assert!(e.get("record").is_none(), "{e}");
    let found = with_rid(&events, "rid-empty-ref");
    assert_eq!(
        found.len(),
        1,
        "an external_ref lookup that found nothing left no audit event"
    );
    assert_eq!(found[0]["action"], "subject_lookup");
    assert!(found[0].get("subject").is_none(), "{}", found[0]);
    assert!(!found[0].to_string().contains(probe), "{}", found[0]);
}

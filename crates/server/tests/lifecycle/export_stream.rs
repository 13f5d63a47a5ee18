//! Exports stream. The tenant export streams: a chunked `application/x-ndjson` body (no Content-Length, the
//! server never holds the archive), read from the store a page of subjects at a time across
//! page boundaries without losing or repeating a subject, audited as before (one
//! `subject_export` per subject, one `tenant_export` with the count), and errors found before
//! the first line are ordinary JSON errors. A subject export is one JSON document whose access
//! log is written a page at a time.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};

/// More than two pages of the export (200 subjects each).
const SUBJECTS: usize = 430;

async fn audit_of(srv: &TestServer, t: &TenantFixture, action: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("?action={action}&limit=1000&cursor={c}"),
            None => format!("?action={action}&limit=1000"),
        };
        let (st, page) = srv
            .get(&format!("/v1/tenants/{}/audit{q}", t.id), &t.owner)
            .await;
        assert_eq!(st, StatusCode::OK, "{page}");
        out.extend(page["events"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn the_tenant_export_streams_every_subject_once_across_pages() {
    let srv = crate::start().await;
    let t = srv.tenant("Stream Co").await;
    let mut created = BTreeSet::new();
    for n in 0..SUBJECTS {
        let s = srv.subject(&t).await;
        if n % 50 == 0 {
            srv.contact(
                &t,
                &s,
                &format!("Streamed {n}"),
                &format!("s{n}@stream.example"),
            )
            .await;
        }
        created.insert(s);
    }
    let resp = srv
        .request(Method::GET, &format!("/v1/tenants/{}/export", t.id))
        .bearer_auth(&t.owner)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[reqwest::header::CONTENT_TYPE],
        "application/x-ndjson"
    );
    assert!(
        resp.headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .is_none(),
        "a streamed body has no length known in advance: {:?}",
        resp.headers()
    );
    assert_eq!(
        resp.headers()
            .get(reqwest::header::TRANSFER_ENCODING)
            .map(|v| v.to_str().unwrap().to_owned()),
        Some("chunked".to_owned())
    );
    let body = resp.text().await.expect("body");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
        .collect();
    assert_eq!(lines[0]["format"], "ward.tenant-export.v1");
    let exported: Vec<String> = lines[1..]
        .iter()
        .map(|l| l["subject"]["id"].as_str().expect("subject id").to_owned())
        .collect();
    assert_eq!(exported.len(), SUBJECTS, "one line per subject");
    let unique: BTreeSet<String> = exported.iter().cloned().collect();
    assert_eq!(unique, created, "every subject exactly once");
    let with_records: Vec<&Value> = lines[1..]
        .iter()
        .filter(|l| l["records"].as_array().is_some_and(|r| !r.is_empty()))
        .collect();
    assert_eq!(with_records.len(), SUBJECTS.div_ceil(50));
    assert!(body.contains("s400@stream.example"));

    // Audited as before: one access per subject, one tenant export with the count.
    let tenant_events = audit_of(&srv, &t, "tenant_export").await;
    assert_eq!(tenant_events.len(), 1, "{tenant_events:?}");
    assert_eq!(tenant_events[0]["detail"]["subjects"], SUBJECTS);
    assert!(tenant_events[0]["detail"].get("complete").is_none());
    let subject_events = audit_of(&srv, &t, "subject_export").await;
    assert_eq!(subject_events.len(), SUBJECTS);
}

#[tokio::test]
async fn a_refused_export_is_a_json_error_not_a_stream() {
    let srv = crate::start().await;
    let t = srv.tenant("Refused Co").await;
    srv.subject(&t).await;
    let member = srv
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    let other = srv.tenant("Other Co").await;
    for (token, status) in [
        (member.as_str(), StatusCode::FORBIDDEN),
        (other.owner.as_str(), StatusCode::NOT_FOUND),
        ("ward_key_not-a-key", StatusCode::UNAUTHORIZED),
    ] {
        let resp = srv
            .request(Method::GET, &format!("/v1/tenants/{}/export", t.id))
            .bearer_auth(token)
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), status);
        assert_eq!(
            resp.headers()[reqwest::header::CONTENT_TYPE],
            "application/json"
        );
        let body: Value = resp.json().await.expect("a JSON error");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    // Nothing was exported: no subject access and no completed tenant export in the log.
    assert!(audit_of(&srv, &t, "subject_export").await.is_empty());
    let exports = audit_of(&srv, &t, "tenant_export").await;
    assert!(
        exports.iter().all(|e| e["outcome"] == "denied"),
        "{exports:?}"
    );
}

#[tokio::test]
async fn a_subject_export_streams_an_access_log_longer_than_a_page() {
    // 300 records listed four times: 1,500 events on the subject, more than one page (1,000)
    // of the log the export streams.
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Long Log").await;
    let items: Vec<Value> = (0..300)
        .map(|n| json!({ "op": "create_record", "subject": s, "collection": "contact",
                         "fields": { "name": format!("Logged {n}"), "email": format!("l{n}@log.example") } }))
        .collect();
    let (st, b) = srv
        .post(
            &format!("/v1/tenants/{}/batch", t.id),
            &t.owner,
            json!({ "items": items }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let list = format!(
        "/v1/tenants/{}/subjects/{s}/records?purpose=essential.service",
        t.id
    );
    for _ in 0..4 {
        let (st, b) = srv.get(&list, &t.owner).await;
        assert_eq!(st, StatusCode::OK, "{b}");
    }
    let before: Vec<Value> = audit_of(&srv, &t, "record_list")
        .await
        .into_iter()
        .chain(audit_of(&srv, &t, "record_create").await)
        .filter(|e| e["subject"] == s.as_str())
        .collect();
    assert_eq!(before.len(), 1500);
    let resp = srv
        .request(
            Method::GET,
            &format!("/v1/tenants/{}/subjects/{s}/export", t.id),
        )
        .bearer_auth(&t.owner)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers().get("content-length").is_none(),
        "streamed, not buffered: {:?}",
        resp.headers()
    );
    assert_eq!(resp.headers()["content-type"], "application/json");
    let doc: Value =
        serde_json::from_str(&resp.text().await.expect("body")).expect("one JSON document");
    assert_eq!(doc["format"], "ward.subject-export.v1");
    assert_eq!(doc["records"].as_array().map(Vec::len), Some(300));
    let log = doc["access_log"].as_array().expect("access_log");
    assert_eq!(
        log.len(),
        1501,
        "every event on the subject before the export (its creation, 300 creates, 1,200 reads), across pages"
    );
    assert_eq!(log[0]["action"], "subject_create");
    let mut indices: Vec<u64> = log.iter().filter_map(|e| e["index"].as_u64()).collect();
    let n = indices.len();
    indices.dedup();
    assert_eq!(indices.len(), n, "no event twice");
    // The export itself is audited, after the log it exported.
    let exports = audit_of(&srv, &t, "subject_export").await;
    assert_eq!(exports.len(), 1);
    assert_eq!(exports[0]["detail"]["records"], 300);
}

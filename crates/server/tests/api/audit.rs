//! `GET /v1/tenants/{t}/audit`: every access, allowed or denied, and never a data value.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::*;

fn audit_path(t: &str, query: &str) -> String {
    format!("/v1/tenants/{t}/audit{query}")
}

#[tokio::test]
async fn reads_and_denials_are_in_the_log_without_data() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv, "Audit").await;
    let _ = read(&srv, &t, &s, &r, MARKETING).await;
    let resp = srv
        .get(&read_path(&t.id, &s, &r, ANALYTICS), &t.owner)
        .await;
    assert_error(&resp, StatusCode::FORBIDDEN, "purpose_not_allowed");

    let (st, page) = srv
        .get(&audit_path(&t.id, "?action=record_read"), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let events = page["events"].as_array().expect("events");
    assert_eq!(events.len(), 2, "{page}");
    let allowed = &events[0];
    assert_eq!(allowed["outcome"], "allowed");
    assert_eq!(allowed["purpose"], MARKETING);
    assert_eq!(allowed["record"], r.as_str());
    assert_eq!(allowed["subject"], s.as_str());
    assert_eq!(allowed["collection"], "contact");
    assert_eq!(allowed["actor"]["role"], "owner");
    let denied = &events[1];
    assert_eq!(denied["outcome"], "denied");
    assert_eq!(denied["purpose"], ANALYTICS);
    assert!(
        denied["reason"]
            .as_str()
            .unwrap_or_default()
            .contains(ANALYTICS),
        "{denied}"
    );
    assert!(denied["index"].as_u64() > allowed["index"].as_u64());

    let (st, denials) = srv
        .get(&audit_path(&t.id, "?outcome=denied"), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        denials["events"]
            .as_array()
            .expect("events")
            .iter()
            .all(|e| e["outcome"] == "denied")
    );

    let (_, all) = srv.get(&audit_path(&t.id, "?limit=1000"), &t.owner).await;
    let text = all.to_string();
    for value in [
        "Ada",
        "ada@example.com",
        "+442079460958",
        "Analytical",
        "SW1Y",
    ] {
        assert!(
            !text.contains(value),
            "the audit log holds a data value ({value}): {text}"
        );
    }
    let actions: Vec<&str> = all["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "invitation_create",
        "invitation_claim",
        "subject_create",
        "record_create",
        "record_read",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
}

#[tokio::test]
async fn audit_pages_and_formats() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv, "Pages").await;
    for _ in 0..3 {
        let _ = read(&srv, &t, &s, &r, ESSENTIAL).await;
    }
    let (st, first) = srv
        .get(&audit_path(&t.id, "?action=record_read&limit=2"), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{first}");
    assert_eq!(first["events"].as_array().map(Vec::len), Some(2));
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, second) = srv
        .get(
            &audit_path(
                &t.id,
                &format!("?action=record_read&limit=2&cursor={cursor}"),
            ),
            &t.owner,
        )
        .await;
    assert_eq!(
        second["events"].as_array().map(Vec::len),
        Some(1),
        "{second}"
    );
    assert!(second["next_cursor"].is_null());

    let resp = srv
        .request(
            Method::GET,
            &audit_path(&t.id, "?action=record_read&format=jsonl"),
        )
        .bearer_auth(&t.owner)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.expect("text");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|e| e["action"] == "record_read"));
}

#[tokio::test]
async fn audit_parameter_errors_are_400() {
    let srv = crate::start().await;
    let t = srv.tenant("AuditErrors").await;
    for (query, code) in [
        ("?action=peek", "invalid_action"),
        ("?outcome=maybe", "invalid_outcome"),
        ("?limit=0", "invalid_limit"),
        ("?limit=1001", "invalid_limit"),
        ("?since=yesterday", "invalid_time"),
        ("?format=xml", "invalid_format"),
        ("?colour=red", "invalid_query"),
    ] {
        let resp = srv.get(&audit_path(&t.id, query), &t.owner).await;
        assert_eq!(resp.0, StatusCode::BAD_REQUEST, "{query}: {}", resp.1);
        assert_error(&resp, StatusCode::BAD_REQUEST, code);
    }
}

#[tokio::test]
async fn the_request_id_and_no_reference_reach_the_log() {
    let srv = crate::start().await;
    let t = srv.tenant("RequestId").await;
    let s = subject_with_ref(&srv, &t, "crm-secret-77").await;
    let r = srv.record(&t, &s, "contact", contact()).await;
    let resp = srv
        .request(Method::GET, &read_path(&t.id, &s, &r, ESSENTIAL))
        .bearer_auth(&t.owner)
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-request-id"], "trace-abc-123");
    // The request's JSON log line carries the id its audit event carries.
    let logged = ward_testkit::log_scan::lines_with("trace-abc-123");
    assert!(
        logged.iter().any(|l| {
            let line: serde_json::Value = serde_json::from_str(l).expect("a JSON log line");
            line["message"] == "request"
                && line["span"]["request_id"] == "trace-abc-123"
                && line["route"] == "/v1/tenants/{tenant}/subjects/{subject}/records/{record}"
        }),
        "{logged:#?}"
    );
    // Without one, the server makes one and says which.
    let resp = srv
        .request(Method::GET, "/healthz")
        .send()
        .await
        .expect("sent");
    let made = resp.headers()["x-request-id"].to_str().expect("ascii");
    assert!(uuid::Uuid::parse_str(made).is_ok(), "{made}");
    let (st, page) = srv
        .get(&audit_path(&t.id, "?action=record_read"), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK);
    let events = page["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{page}");
    assert_eq!(events[0]["request_id"], "trace-abc-123");
    let (_, all) = srv.get(&audit_path(&t.id, "?limit=1000"), &t.owner).await;
    assert!(!all.to_string().contains("crm-secret-77"), "{all}");
}

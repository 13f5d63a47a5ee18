//! Every path that can answer with field values, under every reason to refuse them.
//!
//! Values leave Ward only through the access decision: reads, lists, lookups, exports, and
//! writes that ask for their values back (`return_fields`), single or in a batch. For each of
//! those paths this table tries no purpose, a purpose the collection does not allow, a purpose
//! the subject restricted, an expired record, and finally an allowed request, and scans the
//! raw response body for every test value. The allowed row proves the scan can see values.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};

use crate::common::{denied_events, enc, read_path, record_path, records_path};

const NAME: &str = "Zenobia Quillfeather";
const EMAIL: &str = "zenobia.q@disclosure.example";
const BROWSER: &str = "Pangolin Browser 9.1";
const REFERRER: &str = "https://secret-referrer.example/zq";
const IP: &str = "198.51.100.77";
const NEW_NAME: &str = "Xanthippe Createvalue";
const NEW_EMAIL: &str = "xanthippe.new@disclosure.example";

const ALLOWED: &str = "essential.service";
const FOREIGN: &str = "employment.recruitment";
const RESTRICTED: &str = "marketing.communications.email";
const VISIT_PURPOSE: &str = "analytics.reporting";

/// Why a request should be refused (or, for `Allowed`, not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    NoPurpose,
    ForeignPurpose,
    RestrictedPurpose,
    Expired,
    Allowed,
}

const CASES: [Case; 5] = [
    Case::NoPurpose,
    Case::ForeignPurpose,
    Case::RestrictedPurpose,
    Case::Expired,
    Case::Allowed,
];

struct Fixture {
    srv: TestServer,
    t: TenantFixture,
    s: String,
    contact: String,
    visit: String,
}

async fn fixture() -> Fixture {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Disclosure").await;
    let contact = srv.contact(&t, &s, NAME, EMAIL).await;
    let visit = srv
        .record(
            &t,
            &s,
            "browser_visit",
            json!({ "ip": IP, "browser": BROWSER, "referrer": REFERRER, "visited_at": "2026-01-15T08:00:00Z" }),
        )
        .await;
    let (st, b) = srv
        .post(
            &format!("/v1/tenants/{}/subjects/{s}/restrictions", t.id),
            &t.owner,
            json!({ "purposes": [RESTRICTED] }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "restrict: {b}");
    // The visit's 60 days are over; the contact's three years are not.
    srv.clock.advance(time::Duration::days(61));
    Fixture {
        srv,
        t,
        s,
        contact,
        visit,
    }
}

/// One request of the table: what to send and which values must not come back if refused.
struct Probe {
    method: Method,
    path: String,
    body: Option<Value>,
    secrets: &'static [&'static str],
}

fn purpose_query(case: Case) -> String {
    match case {
        Case::NoPurpose => String::new(),
        Case::ForeignPurpose => format!("purpose={FOREIGN}"),
        Case::RestrictedPurpose => format!("purpose={}", enc(RESTRICTED)),
        Case::Expired => format!("purpose={VISIT_PURPOSE}"),
        Case::Allowed => format!("purpose={ALLOWED}"),
    }
}

fn purpose_value(case: Case) -> Value {
    match case {
        Case::NoPurpose => Value::Null,
        Case::ForeignPurpose => json!(FOREIGN),
        Case::RestrictedPurpose => json!(RESTRICTED),
        Case::Expired => json!(VISIT_PURPOSE),
        Case::Allowed => json!(ALLOWED),
    }
}

const STORED: &[&str] = &[NAME, EMAIL, BROWSER, REFERRER, IP];
const CREATED: &[&str] = &[NEW_NAME, NEW_EMAIL];

/// The record a case reads: the expired visit, or the live contact.
fn target(f: &Fixture, case: Case) -> &str {
    if case == Case::Expired {
        &f.visit
    } else {
        &f.contact
    }
}

/// A record to create: a contact, or for the expired case a job application whose retention
/// (two years from `applied_on`) ended long ago.
fn new_record(case: Case) -> (&'static str, Value) {
    if case == Case::Expired {
        (
            "job_application",
            json!({ "name": NEW_NAME, "email": NEW_EMAIL, "applied_on": "2020-01-10" }),
        )
    } else {
        ("contact", json!({ "name": NEW_NAME, "email": NEW_EMAIL }))
    }
}

fn probes(f: &Fixture, case: Case) -> Vec<(&'static str, Probe)> {
    let (t, s) = (&f.t.id, &f.s);
    let q = purpose_query(case);
    let record = target(f, case);
    let (lookup_field, lookup_value, lookup_collection) = if case == Case::Expired {
        ("ip", IP, "browser_visit")
    } else {
        ("email", EMAIL, "contact")
    };
    let (new_collection, new_fields) = new_record(case);
    let write_body = |extra: Value| {
        let mut b = extra;
        if let Value::Object(o) = &mut b {
            if case != Case::NoPurpose {
                o.insert("purpose".into(), purpose_value(case));
            }
            o.insert("return_fields".into(), json!(true));
        }
        b
    };
    vec![
        (
            "read",
            Probe {
                method: Method::GET,
                path: format!("{}?{q}", record_path(t, s, record)),
                body: None,
                secrets: STORED,
            },
        ),
        (
            "list",
            Probe {
                method: Method::GET,
                path: format!("{}?{q}", records_path(t, s)),
                body: None,
                secrets: STORED,
            },
        ),
        (
            "lookup",
            Probe {
                method: Method::GET,
                path: format!(
                    "/v1/tenants/{t}/lookup?collection={lookup_collection}&field={lookup_field}&value={}&{q}",
                    enc(lookup_value)
                ),
                body: None,
                secrets: STORED,
            },
        ),
        (
            "update",
            Probe {
                method: Method::PATCH,
                path: record_path(t, s, record),
                body: Some(write_body(json!({ "fields": {} }))),
                secrets: STORED,
            },
        ),
        (
            "create",
            Probe {
                method: Method::POST,
                path: records_path(t, s),
                body: Some(write_body(
                    json!({ "collection": new_collection, "fields": new_fields }),
                )),
                secrets: CREATED,
            },
        ),
        (
            "batch update_record",
            Probe {
                method: Method::POST,
                path: format!("/v1/tenants/{t}/batch"),
                body: Some(json!({ "items": [write_body(json!({
                    "op": "update_record", "subject": s, "record": record, "fields": {}
                }))] })),
                secrets: STORED,
            },
        ),
        (
            "batch create_record",
            Probe {
                method: Method::POST,
                path: format!("/v1/tenants/{t}/batch"),
                body: Some(json!({ "items": [write_body(json!({
                    "op": "create_record", "subject": s, "collection": new_collection, "fields": new_fields
                }))] })),
                secrets: CREATED,
            },
        ),
    ]
}

async fn send(srv: &TestServer, token: &str, p: &Probe) -> (StatusCode, String) {
    let mut req = srv.request(p.method.clone(), &p.path).bearer_auth(token);
    if let Some(b) = &p.body {
        req = req.json(b);
    }
    let resp = req.send().await.expect("sent");
    (resp.status(), resp.text().await.expect("body"))
}

#[tokio::test]
async fn no_path_returns_field_values_without_an_allowed_purpose() {
    let f = fixture().await;
    let mut leaks = Vec::new();
    for case in CASES {
        // A write of the contact needs it unchanged by the denied cases before it.
        for (name, probe) in probes(&f, case) {
            let (status, body) = send(&f.srv, &f.t.owner, &probe).await;
            let found: Vec<&str> = probe
                .secrets
                .iter()
                .copied()
                .filter(|v| body.contains(v))
                .collect();
            let field_values = serde_json::from_str::<Value>(&body)
                .map(|v| has_fields(&v))
                .unwrap_or(false);
            if case == Case::Allowed {
                assert!(
                    status.is_success() && !found.is_empty() && field_values,
                    "{name} allowed: {status} must answer with the values: {body}"
                );
                continue;
            }
            // A refused disclosure is refused: an error, or (for lists and lookups, which
            // skip what they may not show) an answer without any record's values.
            if !found.is_empty() || field_values {
                leaks.push(format!("{name} × {case:?}: {status} {body}"));
            }
            let filtered = matches!(name, "list" | "lookup") && status == StatusCode::OK;
            assert!(
                status.is_client_error() || filtered,
                "{name} × {case:?} must be refused: {status} {body}"
            );
        }
        if case != Case::Allowed {
            // Nothing was changed by a refused write either.
            let (_, got) = f
                .srv
                .get(&read_path(&f.t.id, &f.s, &f.contact, ALLOWED), &f.t.owner)
                .await;
            assert_eq!(got["revision"], 1, "after {case:?}: {got}");
        }
    }
    assert!(leaks.is_empty(), "values leaked:\n{}", leaks.join("\n"));
}

/// Whether a JSON answer carries a record's `fields` anywhere.
fn has_fields(v: &Value) -> bool {
    match v {
        Value::Object(o) => {
            o.get("fields").is_some_and(|f| f.is_object()) || o.values().any(has_fields)
        }
        Value::Array(a) => a.iter().any(has_fields),
        _ => false,
    }
}

#[tokio::test]
async fn exports_leave_expired_records_out_and_refuse_keys_that_do_not_handle_rights() {
    let f = fixture().await;
    let member = f.srv.key(&f.t.id, &f.t.owner, "member", &[ALLOWED]).await;
    let subject_export = format!("/v1/tenants/{}/subjects/{}/export", f.t.id, f.s);
    let tenant_export = format!("/v1/tenants/{}/export", f.t.id);
    for path in [&subject_export, &tenant_export] {
        let probe = Probe {
            method: Method::GET,
            path: path.clone(),
            body: None,
            secrets: STORED,
        };
        let (status, body) = send(&f.srv, &member, &probe).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} by a member: {body}");
        assert!(
            STORED.iter().all(|v| !body.contains(v)),
            "{path} by a member leaked: {body}"
        );
        let (status, body) = send(&f.srv, &f.t.owner, &probe).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        assert!(
            body.contains(NAME) && body.contains(EMAIL),
            "{path} carries the live contact: {body}"
        );
        for v in [BROWSER, REFERRER, IP] {
            assert!(
                !body.contains(v),
                "{path} carries the expired visit's {v}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn updates_state_a_purpose_and_answer_without_values_by_default() {
    let f = fixture().await;
    let path = record_path(&f.t.id, &f.s, &f.contact);
    // No purpose at all: refused before anything is read.
    let (st, b) = f
        .srv
        .patch(&path, &f.t.owner, json!({ "fields": { "company": "Q" } }))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["code"], "purpose_required");
    assert_eq!(b["error"]["field"], "purpose");
    // Query and body may not disagree.
    let (st, b) = f
        .srv
        .patch(
            &format!("{path}?purpose={ALLOWED}"),
            &f.t.owner,
            json!({ "purpose": FOREIGN, "fields": {} }),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["code"], "conflicting_purpose");
    // A restricted purpose is refused with the reason, and the refusal is audited.
    let (st, b) = f
        .srv
        .patch(
            &format!("{path}?purpose={}", enc(RESTRICTED)),
            &f.t.owner,
            json!({ "fields": { "company": "Q" } }),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["code"], "processing_restricted");
    let denied = denied_events(&f.srv, &f.t, "record_update").await;
    assert_eq!(
        denied.len(),
        1,
        "the refused update is in the tenant's log: {denied:?}"
    );
    // The purpose in the query works as in the body; the answer has no values.
    let (st, b) = f
        .srv
        .patch(
            &format!("{path}?purpose={ALLOWED}"),
            &f.t.owner,
            json!({ "fields": { "company": "Quill & Co" } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["revision"], 2);
    assert!(b.get("fields").is_none(), "{b}");
    assert!(!b.to_string().contains(NAME), "{b}");
    // A member whose key does not cover the purpose may not update for it.
    let member = f
        .srv
        .key(
            &f.t.id,
            &f.t.owner,
            "member",
            &["essential.service.authentication"],
        )
        .await;
    let (st, b) = f
        .srv
        .patch(
            &format!("{path}?purpose={ALLOWED}"),
            &member,
            json!({ "fields": { "company": "Member Co" } }),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["code"], "purpose_not_allowed");
}

#[tokio::test]
async fn a_create_that_asks_for_its_values_needs_a_purpose() {
    let f = fixture().await;
    let (st, b) = f
        .srv
        .post(
            &records_path(&f.t.id, &f.s),
            &f.t.owner,
            json!({ "collection": "contact", "return_fields": true, "fields": { "name": NEW_NAME, "email": NEW_EMAIL } }),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["code"], "purpose_required");
    assert!(!b.to_string().contains(NEW_NAME), "{b}");
    // Nothing was written.
    let (_, list) = f
        .srv
        .get(
            &format!("{}?purpose={ALLOWED}", records_path(&f.t.id, &f.s)),
            &f.t.owner,
        )
        .await;
    assert!(!list.to_string().contains(NEW_NAME), "{list}");
}

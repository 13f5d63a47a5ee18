//! Helpers shared by the API suite: paths, error-shape assertions and small fixtures.
//!
//! Nothing here knows which database the server runs on.

use reqwest::StatusCode;
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};

pub(crate) use ward_testkit::api::{
    ANALYTICS, ESSENTIAL, LEGAL, MARKETING, RECRUITMENT, SECURITY, assert_error,
    assert_error_mentioning, assert_field_error, enc, item, list_path, lookup_path, read_path,
    record_path, records_path, rfc3339,
};

/// A well-formed UUID that names nothing.
pub(crate) const NO_SUCH_ID: &str = "0190a5d2-0000-7000-8000-000000000000";

pub(crate) fn subjects_path(t: &str) -> String {
    format!("/v1/tenants/{t}/subjects")
}

/// A 422 for a value that does not fit its field's type. The type-specific code (for example
/// `invalid_email`) is either the error code or, with the generic `invalid_value` code, the
/// start of the message; `invalid_value_codes_are_the_type_codes` pins which one it must be.
#[track_caller]
pub(crate) fn assert_invalid_value(resp: &(StatusCode, Value), field: &str, type_code: &str) {
    let (st, body) = resp;
    // A control character is malformed input wherever it appears (400); every other invalid
    // value breaks a rule of the policy (422).
    let status = if type_code == "control_character" {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    assert_eq!(*st, status, "{body}");
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let err = assert_error(resp, status, &code);
    assert_eq!(err["field"], field, "error names the wrong field: {body}");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        code == type_code
            || (code == "invalid_value" && message.split(": ").any(|part| part == type_code)),
        "expected a {type_code} refusal of {field}, got {body}"
    );
}

/// Creates a subject with an external reference; returns its id.
pub(crate) async fn subject_with_ref(
    srv: &TestServer,
    t: &TenantFixture,
    external_ref: &str,
) -> String {
    let (s, b) = srv
        .post(
            &subjects_path(&t.id),
            &t.owner,
            json!({ "external_ref": external_ref }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "create subject: {b}");
    b["id"].as_str().expect("subject id").to_owned()
}

/// The tenant owner's write of `fields` into `collection` for subject `s`, answered as it
/// is: the write and refusal tests check the status and body themselves.
pub(crate) async fn write_raw(
    srv: &TestServer,
    t: &TenantFixture,
    s: &str,
    collection: &str,
    fields: Value,
) -> (StatusCode, Value) {
    srv.post(
        &records_path(&t.id, s),
        &t.owner,
        json!({ "collection": collection, "fields": fields }),
    )
    .await
}

/// Ids of the subject's records readable by the owner for `purpose`, in order.
pub(crate) async fn record_ids(
    srv: &TestServer,
    t: &TenantFixture,
    s: &str,
    purpose: &str,
) -> Vec<String> {
    let (st, b) = srv.get(&list_path(&t.id, s, purpose), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "list records: {b}");
    b.as_array()
        .expect("list is an array")
        .iter()
        .map(|r| r["id"].as_str().expect("record id").to_owned())
        .collect()
}

/// Every record of the subject the owner can see, over every purpose of the example policy.
pub(crate) async fn all_record_ids(srv: &TestServer, t: &TenantFixture, s: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for purpose in [
        ESSENTIAL,
        RECRUITMENT,
        ANALYTICS,
        LEGAL,
        SECURITY,
        "essential.service.operations",
    ] {
        for id in record_ids(srv, t, s, purpose).await {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids.sort();
    ids
}

/// Reads a record with the owner key and returns it (asserting 200).
pub(crate) async fn read(
    srv: &TestServer,
    t: &TenantFixture,
    s: &str,
    r: &str,
    purpose: &str,
) -> Value {
    let (st, b) = srv.get(&read_path(&t.id, s, r, purpose), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "read record: {b}");
    b
}

/// A realistic contact record.
pub(crate) fn contact() -> Value {
    json!({
        "name": "Ada Lovelace",
        "company": "Analytical Engines Ltd",
        "email": "ada@example.com",
        "phone": "+44 20 7946 0958",
        "postal_address": "12 St James's Square\nLondon SW1Y 4JH",
        "country": "GB",
    })
}

/// A tenant with a subject that has one contact record: (tenant, subject, record).
pub(crate) async fn tenant_with_contact(
    srv: &TestServer,
    name: &str,
) -> (TenantFixture, String, String) {
    let (t, s) = srv.tenant_and_subject(name).await;
    let r = srv.record(&t, &s, "contact", contact()).await;
    (t, s, r)
}

/// The test clock's start (see `ward_testkit::Options::default`).
pub(crate) const START: time::OffsetDateTime = time::macros::datetime!(2026-01-15 09:00 UTC);

/// A realistic record of one collection of the example policy: what is sent, what is stored
/// (normalized), a purpose that may read it, and when it expires if created at [`START`].
pub(crate) struct Sample {
    pub(crate) collection: &'static str,
    pub(crate) purpose: &'static str,
    pub(crate) input: Value,
    pub(crate) stored: Value,
    pub(crate) expires_at: String,
}

/// One sample per collection of the example policy.
pub(crate) fn samples() -> Vec<Sample> {
    use time::Duration;
    use time::macros::datetime;
    vec![
        Sample {
            collection: "contact",
            purpose: ESSENTIAL,
            input: json!({
                "name": "Ada Lovelace",
                "company": "Analytical Engines Ltd",
                "email": "Ada.Lovelace@Example.COM",
                "phone": "+44 (0)20 7946 0958",
                "postal_address": "12 St James's Square\r\nLondon SW1Y 4JH",
                "country": "gb",
            }),
            stored: json!({
                "name": "Ada Lovelace",
                "company": "Analytical Engines Ltd",
                "email": "Ada.Lovelace@example.com",
                "phone": "+442079460958",
                "postal_address": "12 St James's Square\nLondon SW1Y 4JH",
                "country": "GB",
            }),
            expires_at: rfc3339(START + Duration::days(3 * 365)),
        },
        Sample {
            collection: "job_application",
            purpose: RECRUITMENT,
            input: json!({
                "name": "Grace Hopper",
                "email": "grace.hopper@Navy.MIL",
                "phone": "001 202-555-0147",
                "cover_letter": "Dear team,\r\n\r\nI would like to apply for the compiler position.\r\n",
                "cv": "1944-1949: Harvard Mark I\n1949-1967: Eckert-Mauchly, Remington Rand\n\tUNIVAC I, A-0, FLOW-MATIC",
                "applied_on": "2026-01-10",
            }),
            stored: json!({
                "name": "Grace Hopper",
                "email": "grace.hopper@navy.mil",
                "phone": "+12025550147",
                "cover_letter": "Dear team,\n\nI would like to apply for the compiler position.\n",
                "cv": "1944-1949: Harvard Mark I\n1949-1967: Eckert-Mauchly, Remington Rand\n\tUNIVAC I, A-0, FLOW-MATIC",
                "applied_on": "2026-01-10",
            }),
            expires_at: rfc3339(datetime!(2026-01-10 00:00 UTC) + Duration::days(2 * 365)),
        },
        Sample {
            collection: "browser_visit",
            purpose: ANALYTICS,
            input: json!({
                "ip": "::ffff:192.0.2.17",
                "language": "pt_br",
                "geo": { "lat": 48.8566, "lon": 2.3522 },
                "country": "fr",
                "browser": "Firefox 128.0 on Linux x86_64",
                "referrer": "https://news.example.org/article?id=7",
                "visited_at": "2026-01-15T10:30:00+01:00",
            }),
            stored: json!({
                "ip": "192.0.2.17",
                "language": "pt-BR",
                "geo": { "lat": 48.8566, "lon": 2.3522 },
                "country": "FR",
                "browser": "Firefox 128.0 on Linux x86_64",
                "referrer": "https://news.example.org/article?id=7",
                "visited_at": "2026-01-15T09:30:00Z",
            }),
            expires_at: rfc3339(START + Duration::days(60)),
        },
        Sample {
            collection: "customer_record",
            purpose: ESSENTIAL,
            input: json!({
                "name": "Linus Example",
                "email": "linus@Example.fi",
                "phone": "+358 40 123 4567",
                "birth_date": "1969-12-28",
                "loyalty_points": 1250,
                "notes": { "tier": "gold", "preferences": { "newsletter": false, "channels": ["email", "sms"] }, "since": 2019 },
                "city": "Helsinki",
                "delivery_location": { "lat": 60.1699, "lon": 24.9384 },
                "last_seen_ip": "2001:DB8:0:0:0:0:0:1",
                "contract_end": "2026-06-30",
            }),
            stored: json!({
                "name": "Linus Example",
                "email": "linus@example.fi",
                "phone": "+358401234567",
                "birth_date": "1969-12-28",
                "loyalty_points": 1250,
                "notes": { "tier": "gold", "preferences": { "newsletter": false, "channels": ["email", "sms"] }, "since": 2019 },
                "city": "Helsinki",
                "delivery_location": { "lat": 60.1699, "lon": 24.9384 },
                "last_seen_ip": "2001:db8::1",
                "contract_end": "2026-06-30",
            }),
            expires_at: rfc3339(datetime!(2026-06-30 00:00 UTC) + Duration::days(90)),
        },
        Sample {
            collection: "billing",
            purpose: LEGAL,
            input: json!({
                "invoice_number": "INV-2026-0001",
                "amount": "0120.50",
                "billing_name": "Acme GmbH",
                "billing_address": "Hauptstraße 1, 10115 Berlin",
                "vat_id": "DE123456789",
                "issued_on": "2026-01-02",
            }),
            stored: json!({
                "invoice_number": "INV-2026-0001",
                "amount": "120.50",
                "billing_name": "Acme GmbH",
                "billing_address": "Hauptstraße 1, 10115 Berlin",
                "vat_id": "DE123456789",
                "issued_on": "2026-01-02",
            }),
            expires_at: rfc3339(datetime!(2026-01-02 00:00 UTC) + Duration::days(10 * 365)),
        },
        Sample {
            collection: "server_log",
            purpose: SECURITY,
            input: json!({
                "ip": "203.0.113.9",
                "user_agent": "curl/8.5.0",
                "path": "/login?next=%2Fdashboard",
                "at": "2026-01-15T08:59:30.250Z",
            }),
            stored: json!({
                "ip": "203.0.113.9",
                "user_agent": "curl/8.5.0",
                "path": "/login?next=%2Fdashboard",
                "at": "2026-01-15T08:59:30.25Z",
            }),
            expires_at: rfc3339(datetime!(2026-01-15 08:59:30.25 UTC) + Duration::days(14)),
        },
    ]
}

/// The sample of one collection.
pub(crate) fn sample(collection: &str) -> Sample {
    samples()
        .into_iter()
        .find(|s| s.collection == collection)
        .expect("sample collection")
}

/// The runtime a property test drives its server on: proptest's closures are synchronous, so
/// each case blocks on the server's runtime.
pub(crate) fn property_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The tenant's audit events of `action` with outcome `denied`, read by its owner: the tests
/// that check a refusal left its trace in the tenant's own log all read it this way.
pub(crate) async fn denied_events(srv: &TestServer, t: &TenantFixture, action: &str) -> Vec<Value> {
    let log = srv
        .tenant_audit(t, &format!("action={action}&outcome=denied"))
        .await;
    log["events"].as_array().expect("events").clone()
}

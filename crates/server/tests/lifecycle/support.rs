//! Helpers shared by the lifecycle suite: paths, the error shape, time, retention runs, audit
//! queries and data-directory scans. Nothing here knows which database the server runs on.

use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use ward_testkit::{TenantFixture, TestServer, contains_bytes};

pub(crate) use ward_testkit::api::{
    ANALYTICS, ESSENTIAL, LEGAL, MARKETING, RECRUITMENT, SECURITY, assert_error, enc, list_path,
    lookup_path, read_path, record_path,
};

/// Length of a policy year (a year is 365 days in Ward's periods).
pub(crate) const YEAR_DAYS: i64 = 365;

pub(crate) fn days(n: i64) -> Duration {
    Duration::days(n)
}

pub(crate) fn subject_path(t: &str, s: &str) -> String {
    format!("/v1/tenants/{t}/subjects/{s}")
}

pub(crate) fn export_path(t: &str, s: &str) -> String {
    format!("{}/export", subject_path(t, s))
}

pub(crate) fn ref_export_path(t: &str, external_ref: &str) -> String {
    format!(
        "/v1/tenants/{t}/subjects/export?external_ref={}",
        enc(external_ref)
    )
}

pub(crate) fn find_path(t: &str, external_ref: &str) -> String {
    format!(
        "/v1/tenants/{t}/subjects?external_ref={}",
        enc(external_ref)
    )
}

/// Parses an RFC 3339 time from a JSON string.
#[track_caller]
pub(crate) fn at(v: &Value) -> OffsetDateTime {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("not RFC 3339: {s}: {e}"))
}

pub(crate) fn rfc(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// Writes a record and returns the whole response (normalized fields, times): the write
/// asks for its values back, for the collection's first purpose.
pub(crate) async fn write(
    srv: &TestServer,
    t: &TenantFixture,
    s: &str,
    collection: &str,
    fields: Value,
) -> Value {
    let purpose = srv
        .policy
        .collection(collection)
        .and_then(|c| c.purposes.first())
        .map(|p| p.as_str().to_owned());
    let (st, b) = srv
        .post(
            &format!("{}/records", subject_path(&t.id, s)),
            &t.owner,
            json!({ "collection": collection, "fields": fields, "purpose": purpose, "return_fields": purpose.is_some() }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "create {collection} record: {b}");
    b
}

/// Writes a `server_log` record from `ip` stamped with the clock's now (its retention counts
/// from that field); returns the created record.
pub(crate) async fn log_now(srv: &TestServer, t: &TenantFixture, s: &str, ip: &str) -> Value {
    let now = rfc(srv.vault.now());
    write(srv, t, s, "server_log", json!({ "ip": ip, "at": now })).await
}

/// The id of a JSON object.
#[track_caller]
pub(crate) fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

/// Creates a subject with the tenant's own reference.
pub(crate) async fn subject_with_ref(
    srv: &TestServer,
    t: &TenantFixture,
    external_ref: &str,
) -> String {
    let (st, b) = srv
        .post(
            &format!("/v1/tenants/{}/subjects", t.id),
            &t.owner,
            json!({ "external_ref": external_ref }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "create subject: {b}");
    id(&b)
}

pub(crate) async fn erase(srv: &TestServer, t: &TenantFixture, s: &str) -> (StatusCode, Value) {
    srv.call(
        Method::POST,
        &format!("{}/erase", subject_path(&t.id, s)),
        Some(&t.owner),
        None,
    )
    .await
}

pub(crate) async fn put(
    srv: &TestServer,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    srv.call(Method::PUT, path, Some(token), Some(body)).await
}

pub(crate) async fn hold(
    srv: &TestServer,
    t: &TenantFixture,
    s: &str,
    until: Option<OffsetDateTime>,
) -> (StatusCode, Value) {
    put(
        srv,
        &format!("{}/hold", subject_path(&t.id, s)),
        &t.owner,
        json!({ "until": until.map(rfc) }),
    )
    .await
}

/// Runs retention as the operator and returns the report.
pub(crate) async fn run_retention(srv: &TestServer, dry_run: bool) -> Value {
    let path = if dry_run {
        "/v1/retention/run?dry_run=true"
    } else {
        "/v1/retention/run"
    };
    let (st, report) = srv
        .call(Method::POST, path, Some(&srv.operator), None)
        .await;
    assert_eq!(st, StatusCode::OK, "retention run: {report}");
    assert_eq!(report["dry_run"], dry_run, "{report}");
    report
}

/// The report's counts for one tenant and collection (`Null` when absent).
pub(crate) fn counts<'a>(report: &'a Value, tenant: &str, collection: &str) -> &'a Value {
    &report["tenants"][tenant][collection]
}

/// `{"deleted": d, "anonymized": a, "held": h}`.
pub(crate) fn tally(deleted: u64, anonymized: u64, held: u64) -> Value {
    json!({ "deleted": deleted, "anonymized": anonymized, "held": held })
}

/// Every audit event of a tenant matching `query` (e.g. `action=record_read`), read by the owner.
pub(crate) async fn audit(srv: &TestServer, t: &TenantFixture, query: &str) -> Vec<Value> {
    let (st, page) = srv
        .get(
            &format!("/v1/tenants/{}/audit?limit=1000&{query}", t.id),
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "audit: {page}");
    assert!(
        page["next_cursor"].is_null(),
        "more than one page of audit events: {page}"
    );
    page["events"].as_array().unwrap().clone()
}

/// (file, needle) pairs found anywhere in the data directory.
pub(crate) fn scan(srv: &TestServer, needles: &[&str]) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for (file, bytes) in srv.data_dir_bytes() {
        for n in needles {
            if contains_bytes(&bytes, n.as_bytes()) {
                found.push((file.clone(), (*n).to_owned()));
            }
        }
    }
    found
}

/// Asserts that none of `values` occurs in `body` (an error or an audit event).
#[track_caller]
pub(crate) fn assert_leaks_none(body: &Value, values: &[&str]) {
    let text = body.to_string();
    for v in values {
        assert!(!text.contains(v), "{v:?} leaked into {text}");
    }
}

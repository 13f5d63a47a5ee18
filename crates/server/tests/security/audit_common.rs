//! Helpers shared by the `audit_*` modules: the request wrapper that tags every call with a
//! request id (events are found by it), key issuing and a burst of ordinary traffic, so each
//! area's tests can build the log they inspect without copying the setup.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};

use crate::support::{Resp, send, with_rid};

/// Posts/gets with a request id; asserts the status.
pub(crate) async fn call(
    srv: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    rid: &str,
    expect: StatusCode,
) -> Resp {
    let r = send(srv, method.clone(), path, Some(token), body, Some(rid)).await;
    assert_eq!(r.status, expect, "{method} {path} ({rid}): {}", r.text);
    r
}

pub(crate) fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_owned()
}

pub(crate) fn one<'a>(events: &'a [Value], rid: &str) -> &'a Value {
    let found = with_rid(events, rid);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one event with request id {rid}: {found:?}"
    );
    found[0]
}

/// A new key through the API; returns (key id, token).
pub(crate) async fn issue_key(
    srv: &TestServer,
    tenant: &str,
    issuer: &str,
    role: &str,
    purposes: &[&str],
    rid: &str,
) -> (String, String) {
    let r = call(
        srv,
        Method::POST,
        &format!("/v1/tenants/{tenant}/keys"),
        issuer,
        Some(json!({ "name": format!("{role} key"), "role": role, "purposes": purposes })),
        rid,
        StatusCode::CREATED,
    )
    .await;
    (s(&r.json["id"]), s(&r.json["token"]))
}

/// Some traffic in a tenant; every request id starts with `prefix`.
pub(crate) async fn traffic(srv: &TestServer, t: &TenantFixture, prefix: &str) -> (String, String) {
    let r = call(
        srv,
        Method::POST,
        &format!("/v1/tenants/{}/subjects", t.id),
        &t.owner,
        Some(json!({})),
        &format!("{prefix}-subject"),
        StatusCode::CREATED,
    )
    .await;
    let subj = s(&r.json["id"]);
    let r = call(
        srv,
        Method::POST,
        &format!("/v1/tenants/{}/subjects/{subj}/records", t.id),
        &t.owner,
        Some(json!({ "collection": "contact", "fields": { "name": format!("{prefix} Person"), "email": format!("{prefix}@example.org") } })),
        &format!("{prefix}-create"),
        StatusCode::CREATED,
    )
    .await;
    let rec = s(&r.json["id"]);
    call(
        srv,
        Method::GET,
        &format!(
            "/v1/tenants/{}/subjects/{subj}/records/{rec}?purpose=essential.service",
            t.id
        ),
        &t.owner,
        None,
        &format!("{prefix}-read"),
        StatusCode::OK,
    )
    .await;
    call(
        srv,
        Method::GET,
        &format!(
            "/v1/tenants/{}/subjects/{subj}/records/{rec}?purpose=employment.recruitment",
            t.id
        ),
        &t.owner,
        None,
        &format!("{prefix}-denied"),
        StatusCode::FORBIDDEN,
    )
    .await;
    (subj, rec)
}

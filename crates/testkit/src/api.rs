//! What every HTTP suite says the same way: the example policy's purposes, the record paths,
//! query encoding, the API's time format and the one error shape.

use reqwest::StatusCode;
use serde_json::Value;

/// A purpose allowed for `contact` and `customer_record`.
pub const ESSENTIAL: &str = "essential.service";
/// The purpose of `job_application`.
pub const RECRUITMENT: &str = "employment.recruitment";
/// A non-essential purpose of `browser_visit`.
pub const ANALYTICS: &str = "analytics.reporting";
/// An essential purpose of `billing`.
pub const LEGAL: &str = "essential.legal_obligation";
/// An essential purpose of `server_log` and `browser_visit`.
pub const SECURITY: &str = "essential.service.security";
/// A non-essential purpose of `contact` only.
pub const MARKETING: &str = "marketing.communications.email";

/// The records of subject `s` of tenant `t`.
#[must_use]
pub fn records_path(t: &str, s: &str) -> String {
    format!("/v1/tenants/{t}/subjects/{s}/records")
}

/// Record `r` of subject `s` of tenant `t`.
#[must_use]
pub fn record_path(t: &str, s: &str, r: &str) -> String {
    format!("/v1/tenants/{t}/subjects/{s}/records/{r}")
}

/// Reading record `r` for `purpose`.
#[must_use]
pub fn read_path(t: &str, s: &str, r: &str, purpose: &str) -> String {
    format!("{}?purpose={purpose}", record_path(t, s, r))
}

/// Listing the records of subject `s` for `purpose`.
#[must_use]
pub fn list_path(t: &str, s: &str, purpose: &str) -> String {
    format!("{}?purpose={purpose}", records_path(t, s))
}

/// Looking a subject up by one field's value, for `purpose`.
#[must_use]
pub fn lookup_path(t: &str, collection: &str, field: &str, value: &str, purpose: &str) -> String {
    format!(
        "/v1/tenants/{t}/lookup?collection={collection}&field={field}&value={}&purpose={purpose}",
        enc(value)
    )
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
#[must_use]
pub fn enc(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Formats a time the way the API does (RFC 3339).
///
/// # Panics
/// If the time cannot be formatted (a year beyond 9999).
#[must_use]
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// The first item of the JSON array `list` whose `key` is the string `value` (a key by its
/// role or id in a key list, a user by its e-mail address).
///
/// # Panics
/// When `list` is not an array or holds no such item.
#[track_caller]
#[must_use]
pub fn item<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .find(|i| i[key] == value)
        .unwrap_or_else(|| panic!("no item with {key} = {value} in {list}"))
}

/// Asserts the one error shape `{"error": {"code", "message", "field"?}}` (nothing else) with
/// this status and code, and returns the error object.
///
/// # Panics
/// When the response is anything else.
#[track_caller]
pub fn assert_error(resp: &(StatusCode, Value), status: StatusCode, code: &str) -> Value {
    let (st, body) = resp;
    assert_eq!(*st, status, "unexpected status; body: {body}");
    let err = body
        .get("error")
        .unwrap_or_else(|| panic!("no `error` object in {body}"));
    let obj = err
        .as_object()
        .unwrap_or_else(|| panic!("`error` is not an object: {body}"));
    assert_eq!(
        body.as_object().map(serde_json::Map::len),
        Some(1),
        "error body has extra keys: {body}"
    );
    assert_eq!(err["code"], code, "unexpected error code; body: {body}");
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error without message: {body}"
    );
    for key in obj.keys() {
        assert!(
            matches!(key.as_str(), "code" | "message" | "field"),
            "unexpected key {key} in {body}"
        );
    }
    if let Some(f) = obj.get("field") {
        assert!(f.is_string(), "field must be a string: {body}");
    }
    err.clone()
}

/// Like [`assert_error`], and the message mentions `needle`: what a refusal says the caller
/// lacks (the role, the purpose, the limit) is part of the contract.
///
/// # Panics
/// When the response is anything else.
#[track_caller]
pub fn assert_error_mentioning(
    resp: &(StatusCode, Value),
    status: StatusCode,
    code: &str,
    needle: &str,
) -> Value {
    let err = assert_error(resp, status, code);
    assert!(
        err["message"].as_str().unwrap_or_default().contains(needle),
        "{err}"
    );
    err
}

/// Like [`assert_error`], and the error names `field`.
///
/// # Panics
/// When the response is anything else.
#[track_caller]
pub fn assert_field_error(resp: &(StatusCode, Value), status: StatusCode, code: &str, field: &str) {
    let err = assert_error(resp, status, code);
    assert_eq!(
        err["field"], field,
        "error names the wrong field: {}",
        resp.1
    );
}

/// The example policy with the repeated-denials rule lowered to 3 denials in 5 minutes, so
/// a test makes a real alert with three refused requests.
#[must_use]
pub fn policy_with_quick_denial_alerts() -> String {
    format!(
        "{}\n[monitoring.rules.repeated_denials]\nthreshold = 3\nwindow = \"5min\"\n",
        ward_policy::EXAMPLE_POLICY
    )
}

/// `opts` with the policy of [`policy_with_quick_denial_alerts`]: the alert, incident and
/// webhook suites all start their servers this way to make real alerts quickly.
#[must_use]
pub fn with_quick_denial_alerts(opts: crate::Options) -> crate::Options {
    crate::Options {
        policy: Some(policy_with_quick_denial_alerts()),
        ..opts
    }
}

/// The actions of the tenant's audit view, oldest first (at most 1,000), as its owner sees
/// them.
///
/// # Panics
/// Unless the view answers 200 with events.
pub async fn tenant_actions(srv: &crate::TestServer, t: &crate::TenantFixture) -> Vec<String> {
    let (st, page) = srv
        .get(&format!("/v1/tenants/{}/audit?limit=1000", t.id), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enc_leaves_only_unreserved_characters() {
        assert_eq!(enc("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(enc("a b+c@é"), "a%20b%2Bc%40%C3%A9");
    }
}

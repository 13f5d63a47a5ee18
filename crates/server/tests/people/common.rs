//! Helpers of the people suite: accounts made through the vault (as `ward user add` makes
//! them), and an HTTP client that carries a session cookie by hand so tests see every header.
#![allow(dead_code)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_crypto::Zeroizing;
use ward_testkit::{TenantFixture, TestServer};
use ward_vault::{Clock as _, Email, NewUser, Role};

/// The password every test account gets.
pub(crate) const PASSWORD: &str = "violet tractor pebble ocean";

/// A created account: id, e-mail, enrolment URI, recovery codes.
pub(crate) struct Account {
    pub(crate) id: String,
    pub(crate) email: String,
    pub(crate) uri: Option<String>,
    pub(crate) recovery: Vec<String>,
}

pub(crate) async fn account(
    srv: &TestServer,
    email: &str,
    role: Role,
    tenant: Option<&str>,
    totp: bool,
) -> Account {
    let created = srv
        .vault
        .create_user(
            NewUser {
                email: Email::parse(email).expect("email"),
                role,
                tenant: tenant.map(|t| t.parse().expect("tenant id")),
                password: Zeroizing::new(PASSWORD.to_owned()),
                totp,
            },
            "test",
        )
        .await
        .expect("create user");
    Account {
        id: created.user.id.to_string(),
        email: email.to_owned(),
        uri: created.otpauth_uri,
        recovery: created.recovery_codes,
    }
}

/// The TOTP code of `a` at the server's current (injected) time.
pub(crate) fn code(srv: &TestServer, a: &Account) -> String {
    ward_vault::totp_code(
        a.uri.as_deref().expect("enrolled"),
        srv.clock.now().unix_timestamp(),
    )
    .expect("code")
}

/// A raw login: status, body and the `Set-Cookie` header.
pub(crate) async fn login_raw(
    srv: &TestServer,
    body: Value,
    cookie: Option<&str>,
) -> (StatusCode, Value, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/auth/login", srv.url))
        .json(&body);
    if let Some(c) = cookie {
        req = req.header("cookie", format!("ward_session={c}"));
    }
    let resp = req.send().await.expect("login");
    let status = resp.status();
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body, set_cookie)
}

/// A logged-in user's session: the cookie value and the CSRF token.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

/// Logs `a` in (with its TOTP code when enrolled) and returns the session.
pub(crate) async fn login(srv: &TestServer, a: &Account) -> Session {
    let mut body = json!({ "email": a.email, "password": PASSWORD });
    if a.uri.is_some() {
        body["totp"] = json!(code(srv, a));
    }
    let (st, b, set_cookie) = login_raw(srv, body, None).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    Session {
        cookie: cookie_value(set_cookie.as_deref().expect("set-cookie")),
        csrf: b["csrf_token"].as_str().expect("csrf").to_owned(),
    }
}

/// The session id in a `Set-Cookie` header.
pub(crate) fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.strip_prefix("ward_session="))
        .expect("ward_session cookie")
        .to_owned()
}

/// A request with the session cookie, and the CSRF header when `csrf`.
pub(crate) async fn call(
    srv: &TestServer,
    s: &Session,
    method: Method,
    path: &str,
    body: Option<Value>,
    csrf: bool,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", srv.url))
        .header("cookie", format!("ward_session={}", s.cookie));
    if csrf {
        req = req.header("x-csrf-token", &s.csrf);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A GET with the session's cookie alone (a read needs no CSRF header): most calls here.
pub(crate) async fn get_as(srv: &TestServer, s: &Session, path: &str) -> (StatusCode, Value) {
    call(srv, s, Method::GET, path, None, false).await
}

/// The session's write of a contact record for subject `s` (with the CSRF header): the
/// role and grant tests check who may write by this one request.
pub(crate) async fn write_contact(
    srv: &TestServer,
    session: &Session,
    t: &TenantFixture,
    s: &str,
) -> (StatusCode, Value) {
    call(
        srv,
        session,
        Method::POST,
        &format!("/v1/tenants/{}/subjects/{s}/records", t.id),
        Some(json!({ "collection": "contact", "fields": contact() })),
        true,
    )
    .await
}

pub(crate) fn contact() -> Value {
    json!({
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "country": "GB",
    })
}

/// A tenant with one subject and one contact record: (tenant, subject, record).
pub(crate) async fn tenant_with_contact(srv: &TestServer) -> (TenantFixture, String, String) {
    let (t, s) = srv.tenant_and_subject("Acme").await;
    let r = srv.record(&t, &s, "contact", contact()).await;
    (t, s, r)
}

pub(crate) fn read_path(t: &str, s: &str, r: &str) -> String {
    format!("/v1/tenants/{t}/subjects/{s}/records/{r}?purpose=essential.service")
}

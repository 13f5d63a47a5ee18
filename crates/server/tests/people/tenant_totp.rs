//! A tenant whose owner requires TOTP: sessions opened with a password alone are refused on
//! its routes (403 `totp_required`) until the user enrols; only owners change the setting,
//! never locking themselves out; API keys and other tenants are not affected.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};
use ward_vault::{Clock as _, Role};

use crate::common::*;

fn settings_path(t: &TenantFixture) -> String {
    format!("/v1/tenants/{}/settings", t.id)
}

/// Invites `email` to `t` as a member reading for `essential.service`, claims the invitation
/// (a new account, without TOTP) and logs in with the password alone.
async fn invited_member(srv: &TestServer, t: &TenantFixture, email: &str) -> (Account, Session) {
    let (st, inv) = srv
        .post(
            &format!("/v1/tenants/{}/invitations", t.id),
            &t.owner,
            json!({ "role": "member", "purposes": ["essential.service"] }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{inv}");
    let (st, joined) = srv
        .call(
            Method::POST,
            "/v1/invitations/claim",
            None,
            Some(json!({ "token": inv["token"], "email": email, "password": PASSWORD })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{joined}");
    assert_eq!(joined["user"]["totp"], false, "{joined}");
    let a = Account {
        id: joined["user"]["id"].as_str().unwrap().to_owned(),
        email: email.to_owned(),
        uri: None,
        recovery: Vec::new(),
    };
    let s = login(srv, &a).await;
    (a, s)
}

/// A cookie-authenticated POST with its CSRF token: status, body and `Set-Cookie`.
async fn post_raw(
    srv: &TestServer,
    s: &Session,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", srv.url))
        .header("cookie", format!("ward_session={}", s.cookie))
        .header("x-csrf-token", &s.csrf);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, resp.json().await.unwrap_or(Value::Null), set_cookie)
}

/// Enrols the session's user in TOTP: the URI, the recovery codes and the session that
/// replaces `s`.
async fn enrol(srv: &TestServer, s: &Session) -> (String, Vec<String>, Session) {
    let (st, start, _) = post_raw(srv, s, "/v1/auth/totp", None).await;
    assert_eq!(st, StatusCode::OK, "{start}");
    let uri = start["otpauth_uri"].as_str().unwrap().to_owned();
    let code = ward_vault::totp_code(&uri, srv.clock.now().unix_timestamp()).unwrap();
    let (st, done, set_cookie) = post_raw(
        srv,
        s,
        "/v1/auth/totp/confirm",
        Some(json!({ "code": code })),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["user"]["totp"], true, "{done}");
    let codes: Vec<String> = done["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let session = Session {
        cookie: cookie_value(set_cookie.as_deref().expect("set-cookie")),
        csrf: done["csrf_token"].as_str().unwrap().to_owned(),
    };
    (uri, codes, session)
}

fn assert_totp_required(st: StatusCode, b: &Value) {
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["code"], "totp_required", "{b}");
    let message = b["error"]["message"].as_str().unwrap();
    assert!(message.contains("two-step verification"), "{message}");
    assert!(message.contains("POST /v1/auth/totp"), "{message}");
}

#[tokio::test]
async fn an_owner_requires_totp_and_a_member_without_it_gets_through_only_once_enrolled() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv).await;
    let read = read_path(&t.id, &s, &r);
    let records = format!("/v1/tenants/{}/subjects/{s}/records", t.id);

    // An owner without TOTP cannot turn the requirement on: it would lock itself out.
    let plain_owner = account(&srv, "plain@example.com", Role::Owner, Some(&t.id), false).await;
    let plain = login(&srv, &plain_owner).await;
    let on = json!({ "require_totp": true });
    let (st, b) = call(
        &srv,
        &plain,
        Method::PATCH,
        &settings_path(&t),
        Some(on.clone()),
        true,
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], "totp_not_enrolled", "{b}");
    let (st, tenant) = srv.get(&format!("/v1/tenants/{}", t.id), &t.owner).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(tenant["require_totp"], false, "{tenant}");

    // An invited member (no TOTP) reads while nothing is required.
    let (_, member) = invited_member(&srv, &t, "mia@example.com").await;
    let (st, b) = get_as(&srv, &member, &read).await;
    assert_eq!(st, StatusCode::OK, "{b}");

    // An owner with TOTP turns it on.
    let owner_account = account(&srv, "olga@example.com", Role::Owner, Some(&t.id), true).await;
    let owner = login(&srv, &owner_account).await;
    let (st, b) = call(
        &srv,
        &owner,
        Method::PATCH,
        &settings_path(&t),
        Some(on.clone()),
        true,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b, json!({ "require_totp": true }));
    let (st, tenant) = srv.get(&format!("/v1/tenants/{}", t.id), &t.owner).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(tenant["require_totp"], true, "{tenant}");

    // The member's password-only session is refused on the tenant's routes, reads and writes.
    let (st, b) = get_as(&srv, &member, &read).await;
    assert_totp_required(st, &b);
    let write = json!({ "collection": "contact", "fields": contact() });
    let (st, b) = call(
        &srv,
        &member,
        Method::POST,
        &records,
        Some(write.clone()),
        true,
    )
    .await;
    assert_totp_required(st, &b);
    let (st, b) = get_as(&srv, &member, &format!("/v1/tenants/{}", t.id)).await;
    assert_totp_required(st, &b);
    // So is the owner without TOTP, even to turn the requirement off again.
    let off = json!({ "require_totp": false });
    let (st, b) = call(
        &srv,
        &plain,
        Method::PATCH,
        &settings_path(&t),
        Some(off.clone()),
        true,
    )
    .await;
    assert_totp_required(st, &b);
    // Its own sessions stay open to it.
    let (st, b) = get_as(&srv, &member, "/v1/auth/sessions").await;
    assert_eq!(st, StatusCode::OK, "{b}");

    // The member enrols. A wrong or malformed code changes nothing.
    let (st, start, _) = post_raw(&srv, &member, "/v1/auth/totp", None).await;
    assert_eq!(st, StatusCode::OK, "{start}");
    let uri = start["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Ward:mia%40example.com?"),
        "{uri}"
    );
    let (_, again, _) = post_raw(&srv, &member, "/v1/auth/totp", None).await;
    assert_eq!(again["otpauth_uri"], uri, "one session, one offered secret");
    let right = ward_vault::totp_code(uri, srv.clock.now().unix_timestamp()).unwrap();
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (st, b, c) = post_raw(
        &srv,
        &member,
        "/v1/auth/totp/confirm",
        Some(json!({ "code": wrong })),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["code"], "wrong_totp_code");
    assert_eq!(b["error"]["field"], "code");
    assert!(c.is_none());
    let (st, b, _) = post_raw(
        &srv,
        &member,
        "/v1/auth/totp/confirm",
        Some(json!({ "code": "12ab" })),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["code"], "invalid_totp");
    let (st, b) = get_as(&srv, &member, &read).await;
    assert_totp_required(st, &b);

    let (uri, recovery, enrolled) = enrol(&srv, &member).await;
    assert_eq!(recovery.len(), 10);
    // Enrolment replaced the session: the old cookie is gone, the new one gets through.
    let (st, _) = get_as(&srv, &member, "/v1/auth/sessions").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, b) = get_as(&srv, &enrolled, &read).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    // Enrolling again is refused: a session cannot swap an enrolled secret.
    let (st, b, _) = post_raw(&srv, &enrolled, "/v1/auth/totp", None).await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], "totp_enrolled");

    // The member logs in again: the password alone no longer does, with a code it gets through.
    let mia = Account {
        id: String::new(),
        email: "mia@example.com".into(),
        uri: Some(uri),
        recovery,
    };
    let (st, b, _) = login_raw(
        &srv,
        json!({ "email": mia.email, "password": PASSWORD }),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{b}");
    assert_eq!(b["error"]["code"], "totp_required");
    srv.clock.advance(time::Duration::seconds(30));
    let fresh = login(&srv, &mia).await;
    let (st, b) = get_as(&srv, &fresh, &read).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (st, b) = call(&srv, &fresh, Method::POST, &records, Some(write), true).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");

    // A second member without TOTP is refused until the owner turns the requirement off.
    let (_, second) = invited_member(&srv, &t, "max@example.com").await;
    let (st, b) = get_as(&srv, &second, &read).await;
    assert_totp_required(st, &b);
    let (st, b) = call(
        &srv,
        &owner,
        Method::PATCH,
        &settings_path(&t),
        Some(off),
        true,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b, json!({ "require_totp": false }));
    let (st, b) = get_as(&srv, &second, &read).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (st, b) = get_as(&srv, &plain, &format!("/v1/tenants/{}", t.id)).await;
    assert_eq!(st, StatusCode::OK, "{b}");

    // Every change, and the refusals, are in the tenant's log with the old and new value.
    let log = srv.tenant_audit(&t, "action=tenant_settings_update").await;
    let events = log["events"].as_array().unwrap();
    let mut seen: Vec<(String, bool, bool)> = events
        .iter()
        .map(|e| {
            let d = &e["detail"]["require_totp"];
            (
                e["outcome"].as_str().unwrap().to_owned(),
                d["old"].as_bool().unwrap(),
                d["new"].as_bool().unwrap(),
            )
        })
        .collect();
    seen.sort();
    let want = [
        ("allowed", false, true),
        ("allowed", true, false),
        // The owner without TOTP: turning it on (409), then off (403 totp_required).
        ("denied", false, true),
        ("denied", true, false),
    ]
    .map(|(o, old, new)| (o.to_owned(), old, new));
    assert_eq!(seen, want, "{log}");
}

#[tokio::test]
async fn only_owners_change_the_setting_and_api_keys_and_other_tenants_are_not_affected() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv).await;
    let read = read_path(&t.id, &s, &r);
    let on = json!({ "require_totp": true });

    // Admins cannot change it, in either direction, with TOTP or a key.
    let admin_account = account(&srv, "ada@example.com", Role::Admin, Some(&t.id), true).await;
    let admin = login(&srv, &admin_account).await;
    for body in [on.clone(), json!({ "require_totp": false })] {
        let (st, b) = call(
            &srv,
            &admin,
            Method::PATCH,
            &settings_path(&t),
            Some(body.clone()),
            true,
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
        assert_eq!(b["error"]["code"], "role_not_permitted", "{b}");
        let admin_key = srv.key(&t.id, &t.owner, "admin", &[]).await;
        let (st, b) = srv.patch(&settings_path(&t), &admin_key, body).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
        assert_eq!(b["error"]["code"], "role_not_permitted", "{b}");
    }
    // An unknown setting is refused and changes nothing.
    let (st, b) = srv
        .patch(&settings_path(&t), &t.owner, json!({ "require_mfa": true }))
        .await;
    assert!(st.is_client_error(), "{st} {b}");
    // The tenant's owner key may set it (keys are the owner's applications).
    let (st, b) = srv.patch(&settings_path(&t), &t.owner, on.clone()).await;
    assert_eq!(st, StatusCode::OK, "{b}");

    // API keys are applications, not people: unaffected.
    let member_key = srv
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    let (st, b) = srv.get(&read, &member_key).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (st, b) = srv.get(&read, &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{b}");

    // A user without TOTP in another tenant is not affected, nor its records.
    let other = srv.tenant("Other").await;
    let other_subject = srv.subject(&other).await;
    let other_record = srv
        .record(&other, &other_subject, "contact", contact())
        .await;
    let plain_admin = account(
        &srv,
        "oscar@example.com",
        Role::Admin,
        Some(&other.id),
        false,
    )
    .await;
    let plain = login(&srv, &plain_admin).await;
    let (st, b) = get_as(
        &srv,
        &plain,
        &read_path(&other.id, &other_subject, &other_record),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (st, b) = srv
        .get(&format!("/v1/tenants/{}", other.id), &other.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["require_totp"], false, "{b}");
    // ... while the tenant that requires TOTP stays hidden from it, as before.
    let (st, _) = get_as(&srv, &plain, &read).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // An API key cannot enrol TOTP: it has no account.
    let (st, b) = srv.post("/v1/auth/totp", &t.owner, json!({})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["code"], "session_required", "{b}");
}

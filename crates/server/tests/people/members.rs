//! Tenant users: invited by an owner or admin (role order), claimed with an e-mail address and
//! a password, logged in, acting with the membership's role; memberships listed (never a
//! secret), changed (sessions end), removed (at once) and ending (injected clock).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};
use ward_vault::Clock as _;

use crate::common::*;
use ward_testkit::api::assert_error;

/// A user id no tenant has.
const NO_SUCH_USER: &str = "0190a5d2-0000-7000-8000-000000000000";

/// Invites a person to `t` as `role` (with `extra` fields) using `issuer`'s key.
async fn invite(
    srv: &TestServer,
    t: &TenantFixture,
    issuer: &str,
    role: &str,
    extra: Value,
) -> (StatusCode, Value) {
    let mut body = json!({ "role": role });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    srv.post(&format!("/v1/tenants/{}/invitations", t.id), issuer, body)
        .await
}

/// Claims a person's invitation without credentials.
async fn claim(srv: &TestServer, token: &str, email: &str, password: &str) -> (StatusCode, Value) {
    srv.call(
        Method::POST,
        "/v1/invitations/claim",
        None,
        Some(json!({ "token": token, "email": email, "password": password })),
    )
    .await
}

/// Invites `email` as `role`, claims it and logs in: the account and its session.
async fn join(
    srv: &TestServer,
    t: &TenantFixture,
    email: &str,
    role: &str,
    extra: Value,
) -> (Account, Session) {
    let (st, inv) = invite(srv, t, &t.owner, role, extra).await;
    assert_eq!(st, StatusCode::CREATED, "{inv}");
    assert_eq!(inv["role"], role);
    let (st, joined) = claim(srv, inv["token"].as_str().unwrap(), email, PASSWORD).await;
    assert_eq!(st, StatusCode::CREATED, "{joined}");
    assert_eq!(joined["role"], role);
    let a = Account {
        id: joined["user"]["id"].as_str().unwrap().to_owned(),
        email: email.to_owned(),
        uri: None,
        recovery: Vec::new(),
    };
    let s = login(srv, &a).await;
    (a, s)
}

fn member() -> Value {
    json!({ "purposes": ["essential.service"] })
}

#[tokio::test]
async fn an_invited_member_logs_in_reads_for_a_purpose_and_is_refused_what_the_role_may_not() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv).await;
    let (a, session) = join(&srv, &t, "mia@example.com", "member", member()).await;
    let read = read_path(&t.id, &s, &r);
    let (st, rec) = get_as(&srv, &session, &read).await;
    assert_eq!(st, StatusCode::OK, "{rec}");
    assert_eq!(rec["fields"]["name"], "Ada Lovelace");
    // A purpose the membership does not name.
    let (st, b) = get_as(
        &srv,
        &session,
        &format!(
            "/v1/tenants/{}/subjects/{s}/records/{r}?purpose=marketing.communications.email",
            t.id
        ),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    // Members write records but manage no keys, users or rights.
    let (st, b) = write_contact(&srv, &session, &t, &s).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let (st, b) = call(
        &srv,
        &session,
        Method::POST,
        &format!("/v1/tenants/{}/keys", t.id),
        Some(json!({ "name": "k", "role": "member", "purposes": ["essential.service"] })),
        true,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    let (st, b) = get_as(&srv, &session, &format!("/v1/tenants/{}/users", t.id)).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    // An auditor reads the log, not the data, and writes nothing.
    let (_, aud) = join(&srv, &t, "avi@example.com", "auditor", json!({})).await;
    let (st, _) = get_as(&srv, &aud, &read).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = write_contact(&srv, &aud, &t, &s).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // The tenant's log has the invitation, its claim and the member's read, by the user.
    let (st, log) = get_as(&srv, &aud, &format!("/v1/tenants/{}/audit", t.id)).await;
    assert_eq!(st, StatusCode::OK, "{log}");
    let events = log["events"].as_array().unwrap();
    for action in ["invitation_create", "invitation_claim", "record_read"] {
        assert!(
            events.iter().any(|e| e["action"] == action),
            "{action}: {log}"
        );
    }
    let actor = format!("user:{}", a.id);
    assert!(
        events.iter().any(|e| e["action"] == "record_read"
            && e["actor"]["id"] == actor.as_str()
            && e["actor"]["role"] == "member"),
        "{log}"
    );
    // Another tenant does not exist for the member.
    let other = srv.tenant("Other").await;
    let (st, _) = get_as(&srv, &session, &format!("/v1/tenants/{}", other.id)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admins_invite_only_below_admin_and_members_invite_nobody() {
    let srv = crate::start().await;
    let t = srv.tenant("Acme").await;
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    for role in ["owner", "admin"] {
        let (st, b) = invite(&srv, &t, &admin, role, json!({})).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{role}: {b}");
        assert_eq!(b["error"]["code"], "role_not_permitted");
    }
    let (st, b) = invite(&srv, &t, &admin, "member", member()).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let (st, b) = invite(&srv, &t, &admin, "auditor", json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let m = srv
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    let (st, _) = invite(&srv, &t, &m, "member", member()).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Owners invite owners; a member needs purposes; the end must be ahead.
    let (st, b) = invite(&srv, &t, &t.owner, "owner", json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let (st, b) = invite(&srv, &t, &t.owner, "member", json!({})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["field"], "purposes");
    let (st, b) = invite(
        &srv,
        &t,
        &t.owner,
        "auditor",
        json!({ "membership_expires_at": "2001-01-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["field"], "membership_expires_at");
    let (st, b) = invite(&srv, &t, &t.owner, "operator", json!({})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    // The operator invites no person (the tenant's users are not its business).
    let (st, _) = invite(&srv, &t, &srv.operator, "member", member()).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Person invitations do not replace each other: both still work.
    let (_, one) = invite(&srv, &t, &t.owner, "auditor", json!({})).await;
    let (_, two) = invite(&srv, &t, &t.owner, "auditor", json!({})).await;
    for (inv, email) in [(one, "one@example.com"), (two, "two@example.com")] {
        let (st, b) = claim(&srv, inv["token"].as_str().unwrap(), email, PASSWORD).await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
    }
}

#[tokio::test]
async fn an_ended_membership_is_not_found() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv).await;
    let end = srv.clock.now() + time::Duration::hours(1);
    let end = end
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let extra = json!({ "purposes": ["essential.service"], "membership_expires_at": end });
    let (_, session) = join(&srv, &t, "tim@example.com", "member", extra).await;
    let read = read_path(&t.id, &s, &r);
    let (st, _) = get_as(&srv, &session, &read).await;
    assert_eq!(st, StatusCode::OK);
    srv.clock.advance(time::Duration::minutes(61));
    // Sessions idle out after a while too: log in again, the membership is still over.
    let a = Account {
        id: String::new(),
        email: "tim@example.com".into(),
        uri: None,
        recovery: Vec::new(),
    };
    let session = login(&srv, &a).await;
    for path in [read.clone(), format!("/v1/tenants/{}", t.id)] {
        let (st, b) = get_as(&srv, &session, &path).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}: {b}");
    }
    // The refusal is in the tenant's log with its reason.
    let (st, log) = srv
        .get(
            &format!("/v1/tenants/{}/audit?outcome=denied", t.id),
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{log}");
    assert!(
        log["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "membership expired"),
        "{log}"
    );
    // The list shows when it ended.
    let (st, list) = srv
        .get(&format!("/v1/tenants/{}/users", t.id), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list[0]["expires_at"], end.as_str());
}

#[tokio::test]
async fn a_role_change_ends_the_users_sessions_and_follows_role_order() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv).await;
    let (a, old) = join(&srv, &t, "rob@example.com", "member", member()).await;
    let user = format!("/v1/tenants/{}/users/{}", t.id, a.id);
    // Admins change roles only among member and auditor.
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    let (st, b) = srv.patch(&user, &admin, json!({ "role": "admin" })).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    let (st, b) = srv.patch(&user, &admin, json!({ "role": "auditor" })).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["role"], "auditor");
    assert_eq!(b["purposes"], json!([]));
    // The old cookie carries nothing any more.
    let (st, _) = get_as(&srv, &old, &read_path(&t.id, &s, &r)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let new = login(&srv, &a).await;
    assert_ne!(new.cookie, old.cookie);
    let (st, _) = get_as(&srv, &new, &read_path(&t.id, &s, &r)).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "auditors do not read data");
    let (st, _) = get_as(&srv, &new, &format!("/v1/tenants/{}/audit", t.id)).await;
    assert_eq!(st, StatusCode::OK);
    // Back to member needs purposes; bad roles are named.
    let (st, b) = srv
        .patch(&user, &t.owner, json!({ "role": "member" }))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (st, b) = srv.patch(&user, &t.owner, json!({ "role": "boss" })).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["field"], "role");
    let (st, b) = srv
        .patch(
            &format!("/v1/tenants/{}/users/{}", t.id, uuid::Uuid::now_v7()),
            &t.owner,
            json!({ "role": "auditor" }),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{b}");
    // Owners make owners; the event is in the log.
    let (st, b) = srv.patch(&user, &t.owner, json!({ "role": "owner" })).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (st, _) = get_as(&srv, &new, &format!("/v1/tenants/{}", t.id)).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "the session ended at the change"
    );
    let (st, log) = srv
        .get(
            &format!(
                "/v1/tenants/{}/audit?action=membership_update&outcome=allowed",
                t.id
            ),
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(log["events"].as_array().unwrap().len(), 2, "{log}");
    // An owner user manages users with a session.
    let owner = login(&srv, &a).await;
    let (st, b) = get_as(&srv, &owner, &format!("/v1/tenants/{}/users", t.id)).await;
    assert_eq!(st, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn removal_is_immediate_and_the_last_owner_stays() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv).await;
    let (a, session) = join(&srv, &t, "rex@example.com", "member", member()).await;
    let read = read_path(&t.id, &s, &r);
    let (st, _) = get_as(&srv, &session, &read).await;
    assert_eq!(st, StatusCode::OK);
    let user = format!("/v1/tenants/{}/users/{}", t.id, a.id);
    let (st, b) = srv.delete(&user, &t.owner).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
    let (st, _) = get_as(&srv, &session, &read).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // The account remains, the tenant is gone for it.
    let again = login(&srv, &a).await;
    let (st, _) = get_as(&srv, &again, &read).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = srv.delete(&user, &t.owner).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // A tenant whose only owner is a user keeps that owner.
    let (st, created) = srv
        .post("/v1/tenants", &srv.operator, json!({ "name": "Userland" }))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let t2 = created["id"].as_str().unwrap().to_owned();
    let key = srv
        .claim(created["invitation"]["token"].as_str().unwrap(), "first")
        .await;
    let t2 = TenantFixture { id: t2, owner: key };
    let (boss, boss_session) = join(&srv, &t2, "boss@example.com", "owner", json!({})).await;
    let keys = srv
        .get(&format!("/v1/tenants/{}/keys", t2.id), &t2.owner)
        .await
        .1;
    let key_id = keys[0]["id"].as_str().unwrap().to_owned();
    // The owner key may go: an owner user remains.
    let (st, b) = call(
        &srv,
        &boss_session,
        Method::DELETE,
        &format!("/v1/tenants/{}/keys/{key_id}", t2.id),
        None,
        true,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
    let me = format!("/v1/tenants/{}/users/{}", t2.id, boss.id);
    let (st, b) = call(&srv, &boss_session, Method::DELETE, &me, None, true).await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], "last_owner");
    let (st, b) = call(
        &srv,
        &boss_session,
        Method::PATCH,
        &me,
        Some(json!({ "role": "admin" })),
        true,
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
}

#[tokio::test]
async fn the_list_carries_no_secret() {
    let srv = crate::start().await;
    let t = srv.tenant("Acme").await;
    join(&srv, &t, "lia@example.com", "member", member()).await;
    let path = format!("/v1/tenants/{}/users", t.id);
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    for who in [&t.owner, &auditor] {
        let (st, list) = srv.get(&path, who).await;
        assert_eq!(st, StatusCode::OK, "{list}");
        let users = list.as_array().unwrap();
        assert_eq!(users.len(), 1);
        let keys: Vec<&str> = users[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "created_at",
                "email",
                "expires_at",
                "id",
                "purposes",
                "role"
            ]
        );
        assert_eq!(users[0]["email"], "lia@example.com");
        let text = list.to_string();
        for secret in [
            "argon2", "otpauth", "password", "totp", "recovery", PASSWORD,
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    let m = srv
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    let (st, _) = srv.get(&path, &m).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = srv.get(&path, &srv.operator).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_reused_expired_or_unknown_invitation_fails_alike() {
    let srv = crate::start().await;
    let t = srv.tenant("Acme").await;
    let (_, inv) = invite(&srv, &t, &t.owner, "auditor", json!({})).await;
    let token = inv["token"].as_str().unwrap();
    let (st, _) = claim(&srv, token, "ann@example.com", PASSWORD).await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, reused) = claim(&srv, token, "bob@example.com", PASSWORD).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{reused}");
    let (_, inv) = invite(&srv, &t, &t.owner, "auditor", json!({})).await;
    srv.clock.advance(time::Duration::hours(73));
    let (st, expired) = claim(
        &srv,
        inv["token"].as_str().unwrap(),
        "cid@example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, unknown) = claim(&srv, "ward_inv_nothing", "dee@example.com", PASSWORD).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(reused, expired);
    assert_eq!(reused, unknown);
    assert_eq!(reused["error"]["code"], "invitation_invalid");
    // Neither made an account.
    for email in ["bob@example.com", "cid@example.com"] {
        let (st, _, _) =
            login_raw(&srv, json!({ "email": email, "password": PASSWORD }), None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn an_existing_account_joins_another_tenant_with_its_password() {
    let srv = crate::start().await;
    let (t, s, r) = tenant_with_contact(&srv).await;
    let (t2, s2, r2) = tenant_with_contact(&srv).await;
    let (a, first) = join(&srv, &t, "eve@example.com", "member", member()).await;
    let (_, inv) = invite(&srv, &t2, &t2.owner, "member", member()).await;
    let token = inv["token"].as_str().unwrap();
    let (st, b) = claim(&srv, token, "eve@example.com", "not the password at all").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{b}");
    let (st, b) = claim(&srv, token, "EVE@example.com", PASSWORD).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_eq!(b["user"]["id"], a.id.as_str());
    // A membership added is a privilege change: the old session ended.
    let (st, _) = get_as(&srv, &first, &read_path(&t.id, &s, &r)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let session = login(&srv, &a).await;
    for path in [read_path(&t.id, &s, &r), read_path(&t2.id, &s2, &r2)] {
        let (st, b) = get_as(&srv, &session, &path).await;
        assert_eq!(st, StatusCode::OK, "{path}: {b}");
    }
    // Weak passwords make no account.
    let (_, inv) = invite(&srv, &t2, &t2.owner, "auditor", json!({})).await;
    let (st, b) = claim(
        &srv,
        inv["token"].as_str().unwrap(),
        "new@example.com",
        "short",
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["field"], "password");
    // A first-owner invitation still needs its name; a person's its e-mail address.
    let (st, b) = srv
        .call(
            Method::POST,
            "/v1/invitations/claim",
            None,
            Some(json!({ "token": inv["token"], "name": "x" })),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["field"], "email");
}

/// `POST /v1/tenants/{t}/users/{u}/password-reset` with `token`.
async fn reset_of(
    srv: &TestServer,
    t: &TenantFixture,
    user: &str,
    token: &str,
) -> (StatusCode, Value) {
    srv.post(
        &format!("/v1/tenants/{}/users/{user}/password-reset", t.id),
        token,
        json!({}),
    )
    .await
}

/// `POST /v1/auth/password/reset` without credentials.
async fn reset_with(srv: &TestServer, email: &str, token: &str, new: &str) -> (StatusCode, Value) {
    srv.call(
        Method::POST,
        "/v1/auth/password/reset",
        None,
        Some(json!({ "email": email, "token": token, "new_password": new })),
    )
    .await
}

#[tokio::test]
async fn owners_and_admins_issue_password_resets_by_role_order_and_never_for_shared_accounts() {
    let srv = crate::start().await;
    let (t, _, _) = tenant_with_contact(&srv).await;
    let (member_acct, member_session) = join(&srv, &t, "mo@example.com", "member", member()).await;
    let (owner_acct, _) = join(&srv, &t, "oona@example.com", "owner", json!({})).await;
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    // Role order: admins reset members, not owners; auditors and members reset nobody.
    let resp = reset_of(&srv, &t, &owner_acct.id, &admin).await;
    assert_error(&resp, StatusCode::FORBIDDEN, "role_not_permitted");
    let resp = reset_of(&srv, &t, &member_acct.id, &auditor).await;
    assert_eq!(resp.0, StatusCode::FORBIDDEN, "{}", resp.1);
    let resp = reset_of(&srv, &t, NO_SUCH_USER, &t.owner).await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    // An admin's token for the member, replaced by the owner's: only the newer one works.
    let (st, first) = reset_of(&srv, &t, &member_acct.id, &admin).await;
    assert_eq!(st, StatusCode::CREATED, "{first}");
    assert_eq!(first["user"], member_acct.id.as_str());
    let (st, issued) = reset_of(&srv, &t, &member_acct.id, &t.owner).await;
    assert_eq!(st, StatusCode::CREATED, "{issued}");
    let expires = time::OffsetDateTime::parse(
        issued["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires, srv.clock.now() + time::Duration::hours(24));
    let token = issued["token"].as_str().unwrap();
    let new = "a brand new passphrase here";
    let resp = reset_with(
        &srv,
        "mo@example.com",
        first["token"].as_str().unwrap(),
        new,
    )
    .await;
    assert_error(&resp, StatusCode::UNAUTHORIZED, "reset_token_invalid");
    let (st, b) = reset_with(&srv, "mo@example.com", token, new).await;
    assert_eq!(st.as_u16() / 100, 2, "{b}");
    // Used once; the old password and the old session are gone, the new password logs in.
    let resp = reset_with(&srv, "mo@example.com", token, "yet another passphrase").await;
    assert_error(&resp, StatusCode::UNAUTHORIZED, "reset_token_invalid");
    let (st, _) = get_as(&srv, &member_session, "/v1/auth/sessions").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, b, _) = login_raw(
        &srv,
        json!({ "email": "mo@example.com", "password": PASSWORD }),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{b}");
    let (st, b, _) = login_raw(
        &srv,
        json!({ "email": "mo@example.com", "password": new }),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    // The tenant's log says who issued what for whom, never the token.
    let log = srv.tenant_audit(&t, "action=user_update").await;
    let events = log["events"].as_array().unwrap();
    let allowed = events.iter().filter(|e| e["outcome"] == "allowed").count();
    assert_eq!(allowed, 2, "{log}");
    assert!(!log.to_string().contains(token), "{log}");
    // An account that is also a user of another tenant: that tenant relies on its password.
    let (t2, _, _) = tenant_with_contact(&srv).await;
    let (st, inv) = invite(&srv, &t2, &t2.owner, "auditor", json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{inv}");
    let (st, b) = claim(
        &srv,
        inv["token"].as_str().unwrap(),
        "oona@example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    for (tenant, owner) in [(&t, &t.owner), (&t2, &t2.owner)] {
        let resp = reset_of(&srv, tenant, &owner_acct.id, owner).await;
        assert_error(&resp, StatusCode::CONFLICT, "account_shared");
    }
}

//! Sessions: cookie flags, session fixation, CSRF, logout, listing, timeouts.

use reqwest::{Method, StatusCode};
use serde_json::json;
use ward_vault::Role;

use crate::common::*;

#[tokio::test]
async fn the_cookie_is_httponly_strict_and_carries_a_256_bit_id() {
    let srv = crate::start().await;
    let a = account(&srv, "hal@example.com", Role::Support, None, true).await;
    let (st, b, c) = login_raw(
        &srv,
        json!({ "email": a.email, "password": PASSWORD, "totp": code(&srv, &a) }),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let c = c.expect("set-cookie");
    assert!(c.starts_with("ward_session="), "{c}");
    assert!(c.contains("; HttpOnly"), "{c}");
    assert!(c.contains("; SameSite=Strict"), "{c}");
    assert!(c.contains("; Path=/"), "{c}");
    assert!(!c.contains("Secure"), "plain HTTP: no Secure flag: {c}");
    // 32 random bytes, base64url without padding.
    assert_eq!(cookie_value(&c).len(), 43);
    assert!(b["csrf_token"].as_str().is_some_and(|t| t.len() == 43));
    assert_eq!(b["user"]["email"], a.email);
    // The session id is not stored: only its hash.
    let id = cookie_value(&c);
    for (path, bytes) in srv.data_dir_bytes() {
        assert!(
            !ward_testkit::contains_bytes(&bytes, id.as_bytes()),
            "{} holds the session id",
            path.display()
        );
        assert!(
            !ward_testkit::contains_bytes(&bytes, a.email.as_bytes()),
            "{} holds the e-mail address in clear",
            path.display()
        );
    }
}

#[tokio::test]
async fn a_session_id_from_before_login_is_not_valid_after_it() {
    let srv = crate::start().await;
    let a = account(&srv, "ida@example.com", Role::Support, None, true).await;
    let first = login(&srv, &a).await;
    let (st, _) = get_as(&srv, &first, "/v1/auth/sessions").await;
    assert_eq!(st, StatusCode::OK);
    srv.clock.advance(time::Duration::seconds(30));
    let (st, b, c) = login_raw(
        &srv,
        json!({ "email": a.email, "password": PASSWORD, "totp": code(&srv, &a) }),
        Some(&first.cookie),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let second = cookie_value(&c.expect("cookie"));
    assert_ne!(second, first.cookie);
    let (st, b) = get_as(&srv, &first, "/v1/auth/sessions").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{b}");
}

#[tokio::test]
async fn unsafe_cookie_requests_need_the_csrf_token() {
    let srv = crate::start().await;
    let a = account(&srv, "jo@example.com", Role::Support, None, true).await;
    let s = login(&srv, &a).await;
    let (st, b) = call(&srv, &s, Method::POST, "/v1/auth/logout", None, false).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["code"], "csrf_refused");
    let wrong = Session {
        csrf: "x".repeat(43),
        ..s.clone()
    };
    let (st, _) = call(&srv, &wrong, Method::POST, "/v1/auth/logout", None, true).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Safe requests need none; the session still works.
    let (st, list) = get_as(&srv, &s, "/v1/auth/sessions").await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["current"], true);
    let (st, _) = call(&srv, &s, Method::POST, "/v1/auth/logout", None, true).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = get_as(&srv, &s, "/v1/auth/sessions").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logging_out_everywhere_else_keeps_the_current_session() {
    let srv = crate::start().await;
    let a = account(&srv, "lou@example.com", Role::Support, None, true).await;
    let first = login(&srv, &a).await;
    srv.clock.advance(time::Duration::seconds(30));
    let second = login(&srv, &a).await;
    let (st, list) = get_as(&srv, &second, "/v1/auth/sessions").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let (st, _) = call(
        &srv,
        &second,
        Method::DELETE,
        "/v1/auth/sessions",
        None,
        true,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = get_as(&srv, &first, "/v1/auth/sessions").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, list) = get_as(&srv, &second, "/v1/auth/sessions").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn idle_sessions_end_and_api_keys_keep_working() {
    let srv = crate::start().await;
    let a = account(&srv, "kim@example.com", Role::Support, None, true).await;
    let s = login(&srv, &a).await;
    // The example policy: 30 minutes idle.
    srv.clock.advance(time::Duration::seconds(31 * 60));
    let (st, _) = get_as(&srv, &s, "/v1/auth/sessions").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, b) = srv.get("/v1/keys/status", &srv.operator).await;
    assert_eq!(st, StatusCode::OK, "{b}");
}

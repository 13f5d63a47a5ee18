//! TOTP with the injected clock: required, accepted once per step, recovery codes once.

use reqwest::StatusCode;
use serde_json::json;
use ward_vault::Role;

use crate::common::*;

#[tokio::test]
async fn staff_need_a_code_which_works_once_and_recovery_codes_work_once() {
    let srv = crate::start().await;
    let a = account(&srv, "eve@example.com", Role::Operator, None, true).await;
    assert!(
        a.uri
            .as_deref()
            .unwrap()
            .starts_with("otpauth://totp/Ward:eve%40example.com?")
    );
    // Right password, no code: told so, after the password was checked.
    let (st, b, c) = login_raw(
        &srv,
        json!({ "email": a.email, "password": PASSWORD }),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{b}");
    assert_eq!(b["error"]["code"], "totp_required");
    assert!(c.is_none());
    // A wrong code is a failed login like a wrong password.
    let wrong = if code(&srv, &a) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (st, b, _) = login_raw(
        &srv,
        json!({ "email": a.email, "password": PASSWORD, "totp": wrong }),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(b["error"]["code"], "invalid_credentials");
    // The right code works once.
    let now_code = code(&srv, &a);
    let body = json!({ "email": a.email, "password": PASSWORD, "totp": now_code });
    let (st, b, _) = login_raw(&srv, body.clone(), None).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (st, b, _) = login_raw(&srv, body, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "replayed code: {b}");
    assert_eq!(b["error"]["code"], "invalid_credentials");
    // The next step's code works.
    srv.clock.advance(time::Duration::seconds(30));
    let (st, b, _) = login_raw(
        &srv,
        json!({ "email": a.email, "password": PASSWORD, "totp": code(&srv, &a) }),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    // A recovery code works exactly once.
    assert_eq!(a.recovery.len(), 10);
    let body = json!({ "email": a.email, "password": PASSWORD, "totp": a.recovery[3] });
    let (st, b, _) = login_raw(&srv, body.clone(), None).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (st, b, _) = login_raw(&srv, body, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{b}");
    assert_eq!(b["error"]["code"], "invalid_credentials");
}

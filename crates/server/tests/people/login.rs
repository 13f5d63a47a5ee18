//! Login: one answer for every failure, throttling per source, and no address kept in clear.

use reqwest::StatusCode;
use serde_json::json;
use ward_testkit::{Options, TestServer};
use ward_vault::Role;

use crate::common::*;

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_body() {
    let srv = crate::start().await;
    let a = account(&srv, "ann@example.com", Role::Support, None, true).await;
    let (st1, b1, c1) = login_raw(
        &srv,
        json!({ "email": a.email, "password": "not the password at all" }),
        None,
    )
    .await;
    let (st2, b2, c2) = login_raw(
        &srv,
        json!({ "email": "nobody@example.com", "password": "not the password at all" }),
        None,
    )
    .await;
    assert_eq!(st1, StatusCode::UNAUTHORIZED);
    assert_eq!(st2, StatusCode::UNAUTHORIZED);
    assert_eq!(b1, b2);
    assert_eq!(b1["error"]["code"], "invalid_credentials");
    assert!(c1.is_none() && c2.is_none(), "no cookie for a failed login");
}

#[tokio::test]
async fn the_sixth_rapid_failure_from_one_address_is_throttled_and_no_address_is_stored() {
    let policy =
        ward_policy::EXAMPLE_POLICY.replace("lockout_threshold = 10", "lockout_threshold = 5");
    let srv = TestServer::start_with(Options {
        policy: Some(policy),
        ..crate::options()
    })
    .await;
    let a = account(&srv, "bob@example.com", Role::Operator, None, true).await;
    for i in 0..5 {
        // Different accounts, so only the source's bucket empties.
        let (st, b, _) = login_raw(
            &srv,
            json!({ "email": format!("guess{i}@example.com"), "password": "wrong password guess" }),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "attempt {i}: {b}");
    }
    let (st, b, _) = login_raw(
        &srv,
        json!({ "email": a.email, "password": PASSWORD, "totp": code(&srv, &a) }),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{b}");
    // Flush the failure summaries so everything the server would keep is on disk.
    srv.vault.flush_auth_failures(true).await.expect("flush");
    for (path, bytes) in srv.data_dir_bytes() {
        assert!(
            !ward_testkit::contains_bytes(&bytes, b"127.0.0.1"),
            "{} holds the client address",
            path.display()
        );
    }
}

#[tokio::test]
async fn weak_passwords_and_malformed_codes_are_400_naming_the_rule() {
    let srv = crate::start().await;
    let err = srv
        .vault
        .create_user(
            ward_vault::NewUser {
                email: ward_vault::Email::parse("c@example.com").expect("email"),
                role: Role::Support,
                tenant: None,
                password: ward_crypto::Zeroizing::new("password1234".into()),
                totp: true,
            },
            "test",
        )
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("common"), "{err}");
    let a = account(&srv, "dan@example.com", Role::Support, None, true).await;
    for (totp, code) in [("12ab56", "invalid_totp"), ("1234567", "invalid_totp")] {
        let (st, b, _) = login_raw(
            &srv,
            json!({ "email": a.email, "password": PASSWORD, "totp": totp }),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(b["error"]["code"], code);
    }
    let (st, b, _) = login_raw(
        &srv,
        json!({ "email": a.email, "password": "x".repeat(1025) }),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["code"], "password_too_long");
}

//! Tampering with the SQLite file directly: a sealed TOTP secret moved between accounts.

use reqwest::StatusCode;
use serde_json::json;
use ward_vault::Role;

use crate::common::*;

#[tokio::test]
async fn a_totp_secret_moved_to_another_account_does_not_open() {
    let srv = crate::start().await;
    let a = account(&srv, "fay@example.com", Role::Support, None, true).await;
    let b = account(&srv, "gus@example.com", Role::Support, None, true).await;
    // Copy a's sealed secret into b's row: logging in as b with a's authenticator must fail.
    let store = srv.store.clone();
    let ua = store.user(a.id.parse().unwrap()).await.unwrap().unwrap();
    let mut ub = store.user(b.id.parse().unwrap()).await.unwrap().unwrap();
    ub.totp_sealed = ua.totp_sealed.clone();
    {
        let conn = ward_store::SqliteStore::open_connection(&srv.db_path()).unwrap();
        conn.execute(
            "UPDATE users SET totp_sealed = ?1 WHERE id = ?2",
            rusqlite::params![ub.totp_sealed, ub.id],
        )
        .unwrap();
        let (st, body, _) = login_raw(
            &srv,
            json!({ "email": b.email, "password": PASSWORD, "totp": code(&srv, &a) }),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert_eq!(body["error"]["code"], "integrity_error");
    }
}

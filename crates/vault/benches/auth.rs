//! What authentication costs a request, and what a login costs.
//!
//! - API key: `Vault::authenticate` with a token this server validated before (the cached
//!   path every request of a busy application takes: SHA-256 of the token, one map lookup).
//! - Session: `Vault::authenticate_session` with a cookie validated before (SHA-256 of the
//!   id, one map lookup, the idle and absolute timeouts checked against the clock).
//! - Login: `Vault::login` with password and TOTP code: one Argon2id verification (OWASP
//!   parameters) on the blocking pool, the TOTP check, the session insert and its audit event.
//!
//! Run with `cargo bench -p ward-vault --bench auth`; it prints, it asserts nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use ward_audit::SigningKey;
use ward_crypto::{RootKeyring, Zeroizing};
use ward_policy::Policy;
use ward_store::SqliteStore;
use ward_vault::{Clock as _, Email, Login, ManualClock, NewUser, Role, Vault, VaultConfig};

const PASSWORD: &str = "violet tractor pebble ocean";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("ward.db"))
            .await
            .unwrap(),
    );
    let (signing_key, _) = SigningKey::load_or_create(&dir.path().join("sign.key")).unwrap();
    let clock = ManualClock::new(time::macros::datetime!(2026-01-15 09:00 UTC));
    let vault = Vault::new(VaultConfig {
        store,
        policy: Policy::parse(ward_policy::EXAMPLE_POLICY, "example.toml").unwrap(),
        root_keys: RootKeyring::generate().unwrap(),
        signing_key,
        clock: Arc::new(clock.clone()),
        origin: "bench".into(),
        limits: Default::default(),
    })
    .unwrap();
    let token = vault.bootstrap_operator().await.unwrap().unwrap();
    let ip = Some(std::net::IpAddr::from([127, 0, 0, 1]));

    const N: u32 = 200_000;
    vault
        .authenticate(Some(token.as_str()), "warm", ip)
        .await
        .unwrap();
    let start = Instant::now();
    for _ in 0..N {
        vault
            .authenticate(Some(token.as_str()), "b", ip)
            .await
            .unwrap();
    }
    let key_ns = start.elapsed().as_nanos() / u128::from(N);

    let created = vault
        .create_user(
            NewUser {
                email: Email::parse("bench@example.com").unwrap(),
                role: Role::Support,
                tenant: None,
                password: Zeroizing::new(PASSWORD.into()),
                totp: true,
            },
            "bench",
        )
        .await
        .unwrap();
    let uri = created.otpauth_uri.unwrap();
    let mut logins = Vec::new();
    let mut cookie = None;
    for _ in 0..20 {
        clock.advance(time::Duration::seconds(30));
        let code = ward_vault::totp_code(&uri, clock.now().unix_timestamp()).unwrap();
        let start = Instant::now();
        let out = vault
            .login(
                Login {
                    email: "bench@example.com".into(),
                    password: PASSWORD.into(),
                    totp: Some(code),
                },
                None,
                "bench",
                ip,
            )
            .await
            .unwrap();
        logins.push(start.elapsed().as_secs_f64() * 1000.0);
        cookie = Some(out.cookie);
    }
    logins.sort_by(f64::total_cmp);
    let cookie = cookie.unwrap();
    vault
        .authenticate_session(&cookie, None, false, "warm", ip)
        .await
        .unwrap();
    let start = Instant::now();
    for _ in 0..N {
        vault
            .authenticate_session(&cookie, None, false, "b", ip)
            .await
            .unwrap();
    }
    let session_ns = start.elapsed().as_nanos() / u128::from(N);

    println!("API-key authentication (cached), per request: {key_ns} ns");
    println!("session authentication (cached), per request: {session_ns} ns");
    println!(
        "login with password and TOTP (Argon2id m={} KiB, t={}, p={}): median {:.1} ms, min {:.1} ms, max {:.1} ms over {} logins",
        ward_vault::ARGON2_M_COST_KIB,
        ward_vault::ARGON2_T_COST,
        ward_vault::ARGON2_P_COST,
        logins[logins.len() / 2],
        logins[0],
        logins[logins.len() - 1],
        logins.len()
    );
}

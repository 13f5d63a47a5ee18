//! People's storage on both backends: the same scenario of users, recovery codes, sessions
//! and support grants runs on SQLite and on PostgreSQL and must produce the same transcript,
//! including every compare-and-set refusal (a TOTP step accepted twice, a recovery code or
//! reset token used twice, a grant decided twice).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_store::{
    Op, PeopleOp, PostgresStore, SessionRow, SqliteStore, Store, SupportGrantRow, TenantRow,
    UserRow,
};

fn url() -> String {
    std::env::var("WARD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn at(s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_760_000_000 + s).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn user(n: u128, email: u8) -> UserRow {
    UserRow {
        id: id(n),
        email_hash: [email; 32],
        email_sealed: vec![email; 40],
        role: "support".into(),
        tenant: None,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        totp_sealed: Some(vec![9; 48]),
        totp_last_step: None,
        key_version: 1,
        reset_hash: None,
        reset_expires_at: None,
        created_at: at(0),
        password_changed_at: at(0),
        disabled_at: None,
    }
}

fn people(op: PeopleOp) -> Vec<Op> {
    vec![Op::People(op)]
}

/// Runs the scenario and returns one line per step.
async fn scenario(store: &dyn Store) -> Vec<String> {
    let mut out = Vec::new();
    macro_rules! note {
        ($step:expr, $r:expr $(,)?) => {
            out.push(format!(
                "{}: {}",
                $step,
                $r.map(|_| "ok".to_owned())
                    .unwrap_or_else(|e| e.to_string())
            ))
        };
    }
    let tenant = TenantRow {
        id: id(1),
        name: "t".into(),
        status: ward_store::TenantStatus::Active,
        region: None,
        wrapped_key: Some(vec![1; 60]),
        root_key_version: 1,
        key_version: 1,
        settings: "{}".into(),
        created_at: at(0),
        status_changed_at: at(0),
        destroy_after: None,
    };
    note!("tenant", store.commit(vec![Op::InsertTenant(tenant)]).await);
    let codes = vec![[1u8; 32], [2u8; 32]];
    note!(
        "user",
        store
            .commit(people(PeopleOp::InsertUser {
                user: Box::new(user(10, 7)),
                recovery_codes: codes.clone(),
            }))
            .await,
    );
    note!(
        "same e-mail",
        store
            .commit(people(PeopleOp::InsertUser {
                user: Box::new(user(11, 7)),
                recovery_codes: vec![],
            }))
            .await,
    );
    let u = store.user_by_email_hash(&[7; 32]).await.unwrap().unwrap();
    out.push(format!("found {} {} {:?}", u.id, u.role, u.totp_last_step));
    out.push(format!(
        "unused codes {}",
        store.unused_recovery_codes(id(10)).await.unwrap()
    ));
    // Self-enrolment: once for an account without TOTP (its recovery codes replaced), never
    // over an enrolled secret.
    note!(
        "user without totp",
        store
            .commit(people(PeopleOp::InsertUser {
                user: Box::new(UserRow {
                    totp_sealed: None,
                    ..user(12, 8)
                }),
                recovery_codes: vec![[5u8; 32]],
            }))
            .await,
    );
    for n in [12, 12, 10] {
        note!(
            format!("enrol {n}"),
            store
                .commit(people(PeopleOp::EnrolTotp {
                    user: id(n),
                    totp_sealed: vec![3; 48],
                    step: 40,
                    recovery_codes: vec![[6u8; 32], [7u8; 32], [8u8; 32]],
                }))
                .await,
        );
    }
    let enrolled = store.user(id(12)).await.unwrap().unwrap();
    out.push(format!(
        "enrolled {:?} {:?} codes {}",
        enrolled.totp_sealed.map(|s| s.len()),
        enrolled.totp_last_step,
        store.unused_recovery_codes(id(12)).await.unwrap()
    ));
    for step in [5, 5, 4, 6] {
        note!(
            format!("totp step {step}"),
            store
                .commit(people(PeopleOp::AcceptTotpStep { user: id(10), step }))
                .await,
        );
    }
    for _ in 0..2 {
        note!(
            "recovery code",
            store
                .commit(people(PeopleOp::UseRecoveryCode {
                    user: id(10),
                    hash: codes[0],
                    at: at(1),
                }))
                .await,
        );
    }
    out.push(format!(
        "unused codes {}",
        store.unused_recovery_codes(id(10)).await.unwrap()
    ));
    note!(
        "reset token",
        store
            .commit(people(PeopleOp::SetResetToken {
                user: id(10),
                hash: [3; 32],
                expires_at: at(100),
            }))
            .await,
    );
    for (h, t) in [([4; 32], 2), ([3; 32], 200), ([3; 32], 2), ([3; 32], 3)] {
        note!(
            format!("use reset {} at {t}", h[0]),
            store
                .commit(people(PeopleOp::UseResetToken {
                    user: id(10),
                    hash: h,
                    at: at(t)
                }))
                .await,
        );
    }
    note!(
        "password",
        store
            .commit(people(PeopleOp::SetPassword {
                user: id(10),
                password_hash: "new".into(),
                at: at(4),
            }))
            .await,
    );
    let session = SessionRow {
        id: id(20),
        token_hash: [5; 32],
        user: id(10),
        csrf_hash: [6; 32],
        created_at: at(5),
        last_seen_at: at(5),
        expires_at: at(500),
        revoked_at: None,
    };
    note!(
        "session",
        store
            .commit(people(PeopleOp::InsertSession(session.clone())))
            .await
    );
    note!(
        "touch",
        store
            .commit(people(PeopleOp::TouchSession {
                id: id(20),
                at: at(60)
            }))
            .await
    );
    let s = store.session_by_hash(&[5; 32]).await.unwrap().unwrap();
    out.push(format!(
        "session {} seen {}",
        s.id,
        s.last_seen_at.unix_timestamp()
    ));
    note!(
        "revoke someone else's",
        store
            .commit(people(PeopleOp::RevokeSession {
                user: id(11),
                id: id(20),
                at: at(61)
            }))
            .await,
    );
    note!(
        "revoke",
        store
            .commit(people(PeopleOp::RevokeSession {
                user: id(10),
                id: id(20),
                at: at(61)
            }))
            .await,
    );
    note!(
        "revoke again",
        store
            .commit(people(PeopleOp::RevokeSession {
                user: id(10),
                id: id(20),
                at: at(62)
            }))
            .await,
    );
    note!(
        "revoke all",
        store
            .commit(people(PeopleOp::RevokeUserSessions {
                user: id(10),
                at: at(63)
            }))
            .await,
    );
    out.push(format!(
        "sessions {}",
        store.sessions_of(id(10)).await.unwrap().len()
    ));
    let grant = SupportGrantRow {
        id: id(30),
        tenant: id(1),
        requester: id(10),
        ticket: "sealed ticket".into(),
        justification: "sealed justification".into(),
        collections: "[\"contact\"]".into(),
        actions: "[\"read\"]".into(),
        break_glass: false,
        status: "requested".into(),
        duration_secs: 3600,
        requested_at: at(70),
        decided_at: None,
        decided_by: None,
        expires_at: None,
    };
    note!(
        "grant",
        store.commit(people(PeopleOp::InsertGrant(grant))).await
    );
    out.push(format!(
        "open grants {}",
        store.open_grants_of(id(10)).await.unwrap().len()
    ));
    let decide = |from: &str, to: &str, t: i64| {
        people(PeopleOp::DecideGrant {
            tenant: id(1),
            id: id(30),
            from: from.into(),
            to: to.into(),
            by: "key:owner".into(),
            at: at(t),
            expires_at: Some(at(t + 3600)),
        })
    };
    note!(
        "approve",
        store.commit(decide("requested", "approved", 80)).await
    );
    note!(
        "approve again",
        store.commit(decide("requested", "approved", 81)).await
    );
    let g = store.support_grant(id(1), id(30)).await.unwrap().unwrap();
    out.push(format!(
        "grant {} {} until {}",
        g.status,
        g.decided_by.unwrap_or_default(),
        g.expires_at.unwrap().unix_timestamp()
    ));
    out.push(format!(
        "open grants {}",
        store.open_grants_of(id(10)).await.unwrap().len()
    ));
    note!(
        "revoke grant",
        store.commit(decide("approved", "revoked", 90)).await
    );
    out.push(format!(
        "grants {}",
        store.support_grants(id(1)).await.unwrap().len()
    ));
    out.push(format!(
        "open grants {}",
        store.open_grants_of(id(10)).await.unwrap().len()
    ));
    note!(
        "disable",
        store
            .commit(people(PeopleOp::SetUserDisabled {
                user: id(10),
                at: Some(at(95))
            }))
            .await,
    );
    let u = store.user(id(10)).await.unwrap().unwrap();
    out.push(format!(
        "user {} step {:?} reset {:?} disabled {:?}",
        u.password_hash,
        u.totp_last_step,
        u.reset_hash.map(|h| h[0]),
        u.disabled_at.map(|t| t.unix_timestamp())
    ));
    out.push(format!("users {}", store.users().await.unwrap().len()));
    out
}

#[tokio::test]
async fn people_storage_is_the_same_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("ward.db"))
        .await
        .unwrap();
    let on_sqlite = scenario(&sqlite).await;
    let schema = format!("t_{}", Uuid::new_v4().simple());
    let pg = PostgresStore::open_in_schema(&url(), &schema)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {} is required: {e}", url()));
    let on_postgres = scenario(&pg).await;
    let mut conn = PgConnection::connect(&url()).await.unwrap();
    conn.execute(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .await
        .unwrap();
    assert_eq!(on_sqlite, on_postgres);
    let expected = [
        "tenant: ok",
        "user: ok",
        "same e-mail: conflict: user already exists",
        "unused codes 2",
        "user without totp: ok",
        "enrol 12: ok",
        "enrol 12: totp enrolment not found",
        "enrol 10: totp enrolment not found",
        "enrolled Some(48) Some(40) codes 3",
        "totp step 5: ok",
        "totp step 5: totp step not found",
        "totp step 4: totp step not found",
        "totp step 6: ok",
        "recovery code: ok",
        "recovery code: recovery code not found",
        "unused codes 1",
        "use reset 4 at 2: reset token not found",
        "use reset 3 at 200: reset token not found",
        "use reset 3 at 2: ok",
        "use reset 3 at 3: reset token not found",
        "revoke someone else's: session not found",
        "revoke again: session not found",
        "approve again: support grant not found",
        "open grants 0",
    ];
    for line in expected {
        assert!(
            on_sqlite.iter().any(|l| l == line),
            "{line:?} missing from {on_sqlite:#?}"
        );
    }
    assert!(
        on_sqlite
            .iter()
            .any(|l| l == "user new step Some(6) reset None disabled Some(1760000095)"),
        "{on_sqlite:#?}"
    );
}

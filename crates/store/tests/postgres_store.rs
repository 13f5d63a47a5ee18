//! The PostgreSQL store against a real server: every operation and read, error semantics
//! identical to the SQLite store's (the same scenario runs on both and must produce the same
//! transcript), savepoint isolation inside group commits, audit appends from two servers on
//! one database, and concurrent migrations.
//!
//! Runs on PostgreSQL at `WARD_TEST_DATABASE_URL`, else on the server at 127.0.0.1:5432, else
//! on a throwaway cluster started from the system's PostgreSQL binaries (`ward_pgtest`). With
//! none of these the tests fail naming what to install; they are never skipped. Every test works in a schema of its own (`t_<uuid>`), dropped when the test ends,
//! so the tests run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, Actor, AuditEvent, Frontier, Outcome, Verifier};
use ward_store::{
    ApiKeyRow, AuditQuery, CheckpointRow, HeldRecordRow, HoldRow, IndexEntry, InvitationRow,
    KeyOwner, KeysRewrapped, LedgerRow, Op, PostgresStore, RecordFilter, RecordRow, RequestRow,
    RewrapFailed, Rewrapper, SqliteStore, Store, StoreError, SubjectKeyChange, SubjectRow,
    TenantRow,
};

fn url() -> String {
    ward_pgtest::database_url()
}

/// A schema of the test's own, dropped when the test ends (also when it fails).
struct Schema {
    name: String,
}

impl Schema {
    fn new() -> Self {
        Self {
            name: format!("t_{}", Uuid::new_v4().simple()),
        }
    }

    async fn open(&self) -> PostgresStore {
        match PostgresStore::open_in_schema(&url(), &self.name).await {
            Ok(store) => store,
            Err(e) => panic!(
                "cannot open the PostgreSQL store at {} in schema {}: {e}\n\
                 Point WARD_TEST_DATABASE_URL at a reachable database, or unset it to use a \
                 throwaway cluster.",
                url(),
                self.name
            ),
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let url = url();
        // Drop runs on a runtime thread, which must not block on a future: use a thread with
        // a runtime of its own. The lock timeout keeps a failed test (whose store may still
        // hold a transaction open) from hanging here instead of reporting its failure.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut conn = PgConnection::connect(&url).await?;
                conn.execute("SET lock_timeout = '10s'").await?;
                conn.execute(AssertSqlSafe(sql)).await?;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}

// ---- fixtures -------------------------------------------------------------------------------

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// A fixed time `secs` after 2026-01-01, so both backends see the same values.
fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600 + secs).unwrap()
}

fn tenant(n: u128, key: Option<&[u8]>, created: i64) -> TenantRow {
    TenantRow {
        id: id(n),
        name: format!("tenant {n}"),
        status: ward_store::TenantStatus::Active,
        region: Some("eu-west".into()),
        wrapped_key: key.map(<[u8]>::to_vec),
        root_key_version: 1,
        key_version: u32::MAX,
        settings: "{}".into(),
        created_at: at(created),
        status_changed_at: at(created),
        destroy_after: None,
    }
}

fn api_key(n: u128, tenant: Option<Uuid>, token: u8) -> ApiKeyRow {
    ApiKeyRow {
        id: id(n),
        tenant,
        token_hash: [token; 32],
        name: format!("key {n}"),
        role: "admin".into(),
        purposes: "[]".into(),
        created_at: at(1),
        revoked_at: None,
        expires_at: (token == 1).then(|| at(50)),
    }
}

fn subject(tenant: Uuid, n: u128, external_ref: Option<&[u8]>, key: bool) -> SubjectRow {
    SubjectRow {
        tenant,
        id: id(n),
        external_ref: external_ref.map(<[u8]>::to_vec),
        wrapped_key: key.then(|| vec![n as u8; 40]),
        key_version: u32::MAX,
        record_key_version: u32::MAX,
        restrictions: "[]".into(),
        hold_until: None,
        created_at: at(2),
    }
}

fn record(tenant: Uuid, subject: Uuid, n: u128, collection: &str) -> RecordRow {
    RecordRow {
        tenant,
        subject,
        id: id(n),
        collection: collection.into(),
        ciphertext: vec![n as u8; 24],
        key_version: u32::MAX,
        revision: 1,
        created_at: at(3),
        updated_at: at(3),
        expires_at: None,
    }
}

fn entry(field: &str, hash: u8) -> IndexEntry {
    IndexEntry {
        field: field.into(),
        hash: [hash; 32],
    }
}

fn event(
    tenant: Option<Uuid>,
    subject: Option<Uuid>,
    actor: &str,
    action: Action,
    outcome: Outcome,
    secs: i64,
) -> AuditEvent {
    AuditEvent {
        at: at(secs),
        request_id: format!("req-{actor}-{secs}"),
        actor: Actor {
            id: actor.into(),
            role: "admin".into(),
        },
        tenant,
        subject,
        record: None,
        collection: None,
        purpose: None,
        action,
        outcome,
        reason: None,
        client: None,
        detail: None,
    }
}

fn audit(event: AuditEvent) -> Op {
    Op::Audit(Box::new(event))
}

/// A result as the transcript shows it. Database errors carry backend-specific text, so only
/// their kind is kept; a scenario that is meant to agree never produces one anyway.
fn show<T: Debug>(result: &Result<T, StoreError>) -> String {
    match result {
        Ok(v) => format!("ok {v:?}"),
        Err(StoreError::Database(_)) => "database error".into(),
        Err(e) => format!("err {e:?}"),
    }
}

/// Asserts the error is `NotFound(what)`.
fn assert_not_found<T: Debug>(result: &Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound(w)) if *w == what => {}
        other => panic!("expected NotFound({what:?}), got {other:?}"),
    }
}

/// Asserts the error is `Conflict` with this message.
fn assert_conflict<T: Debug>(result: &Result<T, StoreError>, expected: ward_store::Conflict) {
    match result {
        Err(StoreError::Conflict(c)) if *c == expected => {}
        other => panic!("expected Conflict({expected:?}), got {other:?}"),
    }
}

// ---- one scenario, both backends ------------------------------------------------------------

/// Runs every operation and every read, asserting what each must do, and returns a transcript
/// of all results so that two backends can be compared line by line.
async fn scenario(store: &dyn Store) -> Vec<String> {
    let mut out = Vec::new();
    tenants_keys_and_subjects(store, &mut out).await;
    records_and_the_blind_index(store, &mut out).await;
    tenant_state_and_retention(store, &mut out).await;
    holds_and_erasure(store, &mut out).await;
    requests_and_sealing(store, &mut out).await;
    audit_log_and_checkpoints(store, &mut out).await;
    failed_requests_and_destruction(store, &mut out).await;
    out
}

/// Tenants, API keys and subjects: inserts, duplicates, missing parents, revocation and restriction.
async fn tenants_keys_and_subjects(store: &dyn Store, out: &mut Vec<String>) {
    let mut log = |label: &str, line: String| out.push(format!("{label}: {line}"));
    let t = id(1);
    let t2 = id(2);
    let missing = id(999);

    // Tenants.
    let r = store
        .commit(vec![
            Op::InsertTenant(tenant(1, Some(b"tenant-key"), 10)),
            audit(event(
                Some(t),
                None,
                "op",
                Action::TenantCreate,
                Outcome::Allowed,
                10,
            )),
        ])
        .await;
    assert_eq!(r.as_ref().unwrap().audit_indices, vec![0]);
    log("insert tenant", show(&r));
    let r = store
        .commit(vec![Op::InsertTenant(tenant(1, None, 11))])
        .await;
    assert_conflict(&r, ward_store::Conflict::Exists("tenant"));
    log("duplicate tenant", show(&r));
    let r = store
        .commit(vec![Op::InsertTenant(tenant(2, None, 12))])
        .await;
    log("insert keyless tenant", show(&r));

    // API keys.
    for (label, op) in [
        ("key of tenant", Op::InsertApiKey(api_key(11, Some(t), 1))),
        ("operator key", Op::InsertApiKey(api_key(12, None, 2))),
        (
            "key of tenant 2",
            Op::InsertApiKey(api_key(13, Some(t2), 3)),
        ),
    ] {
        let r = store.commit(vec![op]).await;
        assert!(r.is_ok(), "{label}: {r:?}");
        log(label, show(&r));
    }
    let r = store
        .commit(vec![Op::InsertApiKey(api_key(14, Some(t), 1))])
        .await;
    assert_conflict(&r, ward_store::Conflict::Exists("api key"));
    log("duplicate token", show(&r));
    let r = store
        .commit(vec![Op::InsertApiKey(api_key(15, Some(missing), 5))])
        .await;
    assert_not_found(&r, "api key");
    log("key of missing tenant", show(&r));
    let revoke = |tenant, n| Op::RevokeApiKey {
        tenant,
        id: id(n),
        at: at(20),
    };
    let r = store.commit(vec![revoke(Some(t), 11)]).await;
    assert!(r.is_ok());
    log("revoke", show(&r));
    let r = store.commit(vec![revoke(Some(t), 11)]).await;
    assert_not_found(&r, "api key");
    log("revoke twice", show(&r));
    let r = store.commit(vec![revoke(None, 13)]).await;
    assert_not_found(&r, "api key");
    log("revoke with the wrong tenant", show(&r));
    let r = store.commit(vec![revoke(None, 12)]).await;
    assert!(r.is_ok());
    log("revoke operator key", show(&r));

    // Subjects.
    for (label, s) in [
        ("subject 1", subject(t, 21, Some(b"ref-a"), true)),
        ("subject 2", subject(t, 22, Some(b"ref-b"), true)),
        ("subject 3", subject(t, 23, None, false)),
        ("subject 4", subject(t, 24, None, true)),
    ] {
        let r = store.commit(vec![Op::InsertSubject(s)]).await;
        assert!(r.is_ok(), "{label}: {r:?}");
        log(label, show(&r));
    }
    let r = store
        .commit(vec![Op::InsertSubject(subject(
            t,
            25,
            Some(b"ref-a"),
            true,
        ))])
        .await;
    assert_conflict(
        &r,
        ward_store::Conflict::Exists("subject with this external_ref"),
    );
    log("duplicate external ref", show(&r));
    let r = store
        .commit(vec![Op::InsertSubject(subject(t, 23, None, true))])
        .await;
    assert_conflict(
        &r,
        ward_store::Conflict::Exists("subject with this external_ref"),
    );
    log("duplicate subject id", show(&r));
    let r = store
        .commit(vec![Op::InsertSubject(subject(missing, 26, None, true))])
        .await;
    assert_not_found(&r, "subject with this external_ref");
    log("subject of missing tenant", show(&r));
    let restrict = |n| Op::SetRestrictions {
        tenant: t,
        subject: id(n),
        restrictions: r#"["marketing"]"#.into(),
    };
    let r = store.commit(vec![restrict(21)]).await;
    assert!(r.is_ok());
    log("restrict", show(&r));
    let r = store.commit(vec![restrict(999)]).await;
    assert_not_found(&r, "subject");
    log("restrict missing", show(&r));
}

/// Records and the blind index: inserts, revision-checked updates, lookups, views, deletes.
async fn records_and_the_blind_index(store: &dyn Store, out: &mut Vec<String>) {
    let mut log = |label: &str, line: String| out.push(format!("{label}: {line}"));
    let t = id(1);
    let missing = id(999);

    // Records and the blind index.
    let r1 = record(t, id(21), 31, "contacts");
    let r2 = record(t, id(21), 32, "notes");
    let r3 = record(t, id(22), 33, "contacts");
    for (label, rec, index) in [
        (
            "record 1",
            r1.clone(),
            vec![entry("email", 0xA1), entry("phone", 0xA2)],
        ),
        ("record 2", r2.clone(), vec![entry("email", 0xA1)]),
        ("record 3", r3.clone(), vec![entry("email", 0xA1)]),
    ] {
        let r = store
            .commit(vec![Op::InsertRecord { record: rec, index }])
            .await;
        assert!(r.is_ok(), "{label}: {r:?}");
        log(label, show(&r));
    }
    let r = store
        .commit(vec![Op::InsertRecord {
            record: r1.clone(),
            index: vec![],
        }])
        .await;
    assert_conflict(&r, ward_store::Conflict::Exists("subject"));
    log("duplicate record", show(&r));
    let r = store
        .commit(vec![Op::InsertRecord {
            record: record(t, missing, 34, "contacts"),
            index: vec![],
        }])
        .await;
    assert_not_found(&r, "subject");
    log("record of missing subject", show(&r));
    let found = store.lookup(t, "contacts", "email", &[0xA1; 32]).await;
    let ids: Vec<Uuid> = found.as_ref().unwrap().iter().map(|(_, r)| r.id).collect();
    assert_eq!(ids, vec![id(31), id(33)]);
    log("lookup", show(&found));

    let mut r1b = r1.clone();
    r1b.revision = 2;
    r1b.ciphertext = vec![0xEE; 30];
    r1b.updated_at = at(40);
    r1b.expires_at = Some(at(5000));
    let update = |rec: RecordRow, expected| Op::UpdateRecord {
        record: rec,
        expected_revision: expected,
        index: vec![entry("email", 0xB1)],
    };
    let r = store.commit(vec![update(r1b.clone(), 1)]).await;
    assert!(r.is_ok());
    log("update", show(&r));
    let r = store.commit(vec![update(r1b.clone(), 1)]).await;
    assert_conflict(&r, ward_store::Conflict::Stale);
    log("stale update", show(&r));
    let r = store
        .commit(vec![update(record(t, id(21), 998, "contacts"), 1)])
        .await;
    assert_conflict(&r, ward_store::Conflict::Stale);
    log("update missing", show(&r));
    let old = store.lookup(t, "contacts", "email", &[0xA1; 32]).await;
    assert_eq!(old.as_ref().unwrap().len(), 1);
    log("lookup old value", show(&old));
    let new = store.lookup(t, "contacts", "email", &[0xB1; 32]).await;
    assert_eq!(new.as_ref().unwrap()[0].1.revision, 2);
    log("lookup new value", show(&new));
    let phone = store.lookup(t, "contacts", "phone", &[0xA2; 32]).await;
    assert!(phone.as_ref().unwrap().is_empty());
    log("lookup replaced entry", show(&phone));

    for (label, filter) in [
        ("view none", RecordFilter::None),
        ("view one", RecordFilter::One(id(31))),
        ("view one missing", RecordFilter::One(missing)),
        ("view all", RecordFilter::All(None)),
        ("view collection", RecordFilter::All(Some("notes"))),
    ] {
        let v = store.subject_view(t, id(21), filter).await;
        let view = v.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(view.tenant_status, ward_store::TenantStatus::Active);
        assert_eq!(view.subject.restrictions, r#"["marketing"]"#);
        log(label, show(&v));
    }
    let all = store
        .subject_view(t, id(21), RecordFilter::All(None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(all.records.len(), 2);
    assert_eq!(all.records[0].ciphertext, vec![0xEE; 30]);
    assert_eq!(all.records[0].expires_at, Some(at(5000)));
    let v = store.subject_view(t, missing, RecordFilter::None).await;
    assert!(v.as_ref().unwrap().is_none());
    log("view missing subject", show(&v));
    let v = store.subject_view(t, id(23), RecordFilter::All(None)).await;
    assert!(
        v.as_ref()
            .unwrap()
            .as_ref()
            .unwrap()
            .subject
            .wrapped_key
            .is_none()
    );
    log("view keyless subject", show(&v));
    let s = store.subject_by_ref(t, b"ref-a").await;
    assert_eq!(s.as_ref().unwrap().as_ref().unwrap().id, id(21));
    log("by ref", show(&s));
    log(
        "by missing ref",
        show(&store.subject_by_ref(t, b"nope").await),
    );

    let delete = Op::DeleteRecord {
        tenant: t,
        subject: id(21),
        id: id(32),
    };
    let r = store.commit(vec![delete.clone()]).await;
    assert!(r.is_ok());
    log("delete", show(&r));
    let r = store.commit(vec![delete]).await;
    assert_not_found(&r, "record");
    log("delete twice", show(&r));
}

/// Tenant status and settings, the tenant and key reads, and the retention sweep.
async fn tenant_state_and_retention(store: &dyn Store, out: &mut Vec<String>) {
    let mut log = |label: &str, line: String| out.push(format!("{label}: {line}"));
    let t = id(1);
    let t2 = id(2);
    let missing = id(999);

    // Tenant state.
    let status = |n| Op::SetTenantStatus {
        id: id(n),
        status: ward_store::TenantStatus::Deactivated,
        at: at(50),
        destroy_after: Some(at(60)),
    };
    let r = store.commit(vec![status(2)]).await;
    assert!(r.is_ok());
    log("deactivate", show(&r));
    let r = store.commit(vec![status(999)]).await;
    assert_not_found(&r, "tenant");
    log("deactivate missing", show(&r));
    let settings = |n| Op::PatchTenantSettings {
        id: id(n),
        path: vec!["retention".into(), "contact".into()],
        value: serde_json::json!("10d"),
        expect: None,
    };
    let r = store.commit(vec![settings(1)]).await;
    assert!(r.is_ok());
    log("settings", show(&r));
    let r = store.commit(vec![settings(999)]).await;
    assert_not_found(&r, "tenant");
    log("settings missing", show(&r));
    let tn = store.tenant(t).await;
    assert_eq!(
        tn.as_ref()
            .unwrap()
            .as_ref()
            .unwrap()
            .wrapped_key
            .as_deref(),
        Some(&b"tenant-key"[..])
    );
    assert_eq!(tn.as_ref().unwrap().as_ref().unwrap().key_version, u32::MAX);
    log("tenant", show(&tn));
    log("missing tenant", show(&store.tenant(missing).await));
    let all = store.tenants().await;
    assert_eq!(
        all.as_ref()
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>(),
        vec![t, t2]
    );
    log("tenants", show(&all));
    let k = store.api_key_by_hash(&[1; 32]).await;
    assert_eq!(
        k.as_ref().unwrap().as_ref().unwrap().revoked_at,
        Some(at(20))
    );
    assert_eq!(
        k.as_ref().unwrap().as_ref().unwrap().expires_at,
        Some(at(50))
    );
    log("key by hash", show(&k));
    log("missing key", show(&store.api_key_by_hash(&[9; 32]).await));
    let keys = store.api_keys(Some(t)).await;
    assert_eq!(keys.as_ref().unwrap().len(), 1);
    log("keys of tenant", show(&keys));
    let keys = store.api_keys(None).await;
    assert_eq!(keys.as_ref().unwrap()[0].id, id(12));
    log("operator keys", show(&keys));

    // Retention.
    let mut r4 = record(t, id(22), 41, "contacts");
    r4.expires_at = Some(at(150));
    let mut r5 = record(t, id(24), 40, "contacts");
    r5.expires_at = Some(at(150));
    let mut r6 = record(t, id(24), 42, "contacts");
    r6.expires_at = Some(at(250));
    for rec in [r4.clone(), r5, r6] {
        let r = store
            .commit(vec![Op::InsertRecord {
                record: rec,
                index: vec![entry("email", 0xC1)],
            }])
            .await;
        assert!(r.is_ok());
        log("expiring record", show(&r));
    }
    let r = store
        .commit(vec![Op::ShiftExpiry {
            tenant: t,
            collection: "contacts".into(),
            by_micros: 50_000_000,
        }])
        .await;
    assert!(r.is_ok());
    log("shift expiry", show(&r));
    let expired = store.expired_records(at(160), None, None, 10).await;
    let ids: Vec<Uuid> = expired
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.record.id)
        .collect();
    assert_eq!(ids, vec![id(40), id(41)]);
    log("expired", show(&expired));
    let page = store
        .expired_records(at(1000), Some((at(100), id(40))), Some(t), 1)
        .await;
    assert_eq!(page.as_ref().unwrap()[0].record.id, id(41));
    log("expired after cursor", show(&page));
    let none = store.expired_records(at(1000), None, Some(t2), 10).await;
    assert!(none.as_ref().unwrap().is_empty());
    log("expired of tenant 2", show(&none));
    let anonymize = Op::AnonymizeRecord {
        record: r4,
        at: at(170),
    };
    let r = store.commit(vec![anonymize.clone()]).await;
    assert!(r.is_ok());
    log("anonymize", show(&r));
    let r = store.commit(vec![anonymize]).await;
    assert_not_found(&r, "record");
    log("anonymize twice", show(&r));
}

/// Holds on subjects, erasure, and legal holds on what an erasure would remove.
async fn holds_and_erasure(store: &dyn Store, out: &mut Vec<String>) {
    let mut log = |label: &str, line: String| out.push(format!("{label}: {line}"));
    let t = id(1);
    let missing = id(999);

    // Holds on subjects.
    let hold = |n, until| Op::SetSubjectHold {
        tenant: t,
        subject: id(n),
        hold_until: until,
    };
    let r = store.commit(vec![hold(22, Some(at(1000)))]).await;
    assert!(r.is_ok());
    log("hold", show(&r));
    let r = store.commit(vec![hold(23, Some(at(1000)))]).await;
    assert_not_found(&r, "subject");
    log("hold keyless subject", show(&r));
    let r = store.commit(vec![hold(999, None)]).await;
    assert_not_found(&r, "subject");
    log("hold missing subject", show(&r));

    // Erasure.
    let r = store
        .commit(vec![
            Op::EraseSubject {
                tenant: t,
                subject: id(21),
            },
            Op::InsertLedger(LedgerRow {
                id: id(51),
                tenant: t,
                subject: id(21),
                requested_by: "owner".into(),
                erased_at: at(200),
                detail: r#"{"records":1}"#.into(),
            }),
        ])
        .await;
    assert!(r.is_ok());
    log("erase", show(&r));
    let v = store
        .subject_view(t, id(21), RecordFilter::All(None))
        .await
        .unwrap()
        .unwrap();
    assert!(v.subject.wrapped_key.is_none());
    assert!(v.subject.external_ref.is_none());
    assert_eq!(v.subject.restrictions, "[]");
    assert!(v.records.is_empty());
    log("erased subject", format!("{v:?}"));
    assert!(store.subject_by_ref(t, b"ref-a").await.unwrap().is_none());
    assert!(
        store
            .lookup(t, "contacts", "email", &[0xB1; 32])
            .await
            .unwrap()
            .is_empty()
    );
    let r = store
        .commit(vec![Op::EraseSubject {
            tenant: t,
            subject: missing,
        }])
        .await;
    assert_not_found(&r, "subject");
    log("erase missing", show(&r));
    let l = store.ledger_entry(t, id(21)).await;
    assert_eq!(l.as_ref().unwrap().as_ref().unwrap().id, id(51));
    log("ledger", show(&l));
    log("no ledger", show(&store.ledger_entry(t, id(22)).await));
    let ids = store.subject_ids(t, None, 10).await;
    assert_eq!(ids.as_ref().unwrap(), &vec![id(22), id(24)]);
    log("subject ids", show(&ids));
    let ids = store.subject_ids(t, Some(id(22)), 10).await;
    assert_eq!(ids.as_ref().unwrap(), &vec![id(24)]);
    log("subject ids after", show(&ids));

    // Legal holds after an erasure.
    let hold_row = |n, key: Option<&[u8]>| HoldRow {
        tenant: t,
        id: id(n),
        subject: id(21),
        wrapped_key: key.map(<[u8]>::to_vec),
        // The tenant's key version: a hold key is wrapped under the current one.
        key_version: u32::MAX,
        created_at: at(200),
    };
    let held = |n, until| HeldRecordRow {
        tenant: t,
        hold: id(61),
        id: id(n),
        collection: "invoices".into(),
        ciphertext: vec![7; 20],
        key_version: 1,
        created_at: at(3),
        hold_until: at(until),
        reason: "tax law".into(),
    };
    let r = store
        .commit(vec![
            Op::InsertHold(hold_row(61, Some(b"hold-key-1"))),
            Op::InsertHold(hold_row(62, Some(b"hold-key-2"))),
            Op::InsertHold(hold_row(63, None)),
            Op::InsertHeldRecord(held(71, 300)),
            Op::InsertHeldRecord(held(72, 900)),
        ])
        .await;
    assert!(r.is_ok());
    log("holds", show(&r));
    let h = store.held_records(t, id(21)).await;
    assert_eq!(h.as_ref().unwrap().len(), 2);
    assert_eq!(
        h.as_ref().unwrap()[0].0.wrapped_key.as_deref(),
        Some(&b"hold-key-1"[..])
    );
    log("held records", show(&h));
    let e = store.empty_holds().await;
    assert_eq!(
        e.as_ref().unwrap().iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![id(62)]
    );
    log("empty holds", show(&e));
    let x = store.expired_held_records(at(400), 10).await;
    assert_eq!(x.as_ref().unwrap().len(), 1);
    log("expired held", show(&x));
    let r = store
        .commit(vec![
            Op::DeleteHeldRecord {
                tenant: t,
                id: id(71),
            },
            Op::ShredHold {
                tenant: t,
                id: id(62),
            },
        ])
        .await;
    assert!(r.is_ok());
    log("release hold", show(&r));
    log("empty holds after", show(&store.empty_holds().await));
    log("held after", show(&store.held_records(t, id(21)).await));
}

/// Data-subject requests, and sealing their free text as a compare-and-set.
async fn requests_and_sealing(store: &dyn Store, out: &mut Vec<String>) {
    let mut log = |label: &str, line: String| out.push(format!("{label}: {line}"));
    let t = id(1);
    let missing = id(999);

    // Data-subject requests.
    let request = |n, due| RequestRow {
        tenant: t,
        id: id(n),
        kind: "access".into(),
        subject: id(22),
        status: "open".into(),
        verified_by: "support".into(),
        detail: "{}".into(),
        created_at: at(300),
        due_at: at(due),
        closed_at: None,
    };
    let r = store
        .commit(vec![
            Op::InsertRequest(request(81, 500)),
            Op::InsertRequest(request(82, 400)),
        ])
        .await;
    assert!(r.is_ok());
    log("requests", show(&r));
    let close = |n| Op::UpdateRequest {
        tenant: t,
        id: id(n),
        status: "completed".into(),
        detail: r#"{"done":true}"#.into(),
        closed_at: Some(at(350)),
    };
    let r = store.commit(vec![close(81)]).await;
    assert!(r.is_ok());
    log("close request", show(&r));
    let r = store.commit(vec![close(999)]).await;
    assert_not_found(&r, "request");
    log("close missing request", show(&r));
    let q = store.request(t, id(81)).await;
    assert_eq!(q.as_ref().unwrap().as_ref().unwrap().status, "completed");
    log("request", show(&q));
    log("missing request", show(&store.request(t, missing).await));
    let all = store.requests(t, None).await;
    assert_eq!(
        all.as_ref()
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        vec![id(82), id(81)]
    );
    log("all requests", show(&all));
    let open = store.requests(t, Some("open")).await;
    assert_eq!(open.as_ref().unwrap().len(), 1);
    log("open requests", show(&open));
    // Sealing free text is a compare-and-set: a row changed since it was read is left alone.
    let seal = |old_detail: &str| Op::SealRequestText {
        tenant: t,
        id: id(82),
        old_verified_by: "support".into(),
        old_detail: old_detail.into(),
        verified_by: "sealed-v".into(),
        detail: "sealed-d".into(),
    };
    let r = store.commit(vec![seal("{\"changed\":1}")]).await;
    assert!(r.is_ok());
    let q = store.request(t, id(82)).await;
    assert_eq!(q.as_ref().unwrap().as_ref().unwrap().verified_by, "support");
    log("seal request text, row changed", show(&q));
    let r = store.commit(vec![seal("{}")]).await;
    assert!(r.is_ok());
    let q = store.request(t, id(82)).await;
    let row = q.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(
        (row.verified_by.as_str(), row.detail.as_str()),
        ("sealed-v", "sealed-d")
    );
    log("seal request text", show(&q));
}

/// The audit log, its queries, checkpoints and pruning.
async fn audit_log_and_checkpoints(store: &dyn Store, out: &mut Vec<String>) {
    let mut log = |label: &str, line: String| out.push(format!("{label}: {line}"));
    let t = id(1);
    let t2 = id(2);

    // The audit log.
    let events = [
        event(
            Some(t),
            Some(id(22)),
            "k1",
            Action::RecordRead,
            Outcome::Allowed,
            400,
        ),
        event(
            Some(t),
            Some(id(22)),
            "k2",
            Action::RecordRead,
            Outcome::Denied,
            410,
        ),
        event(
            Some(t),
            Some(id(24)),
            "k1",
            Action::RecordUpdate,
            Outcome::Allowed,
            420,
        ),
        event(Some(t2), None, "k3", Action::KeyList, Outcome::Allowed, 430),
        event(
            None,
            None,
            "system:retention",
            Action::RetentionRun,
            Outcome::Allowed,
            440,
        ),
    ];
    let r = store
        .commit(events.iter().cloned().map(audit).collect())
        .await;
    assert_eq!(r.as_ref().unwrap().audit_indices, vec![1, 2, 3, 4, 5]);
    log("audit events", show(&r));
    let query = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery {
            tenant: t,
            limit: 100,
            ..AuditQuery::default()
        };
        f(&mut q);
        q
    };
    let queries = [
        ("all", query(&|_| {})),
        ("since", query(&|q| q.since = Some(at(410)))),
        ("until", query(&|q| q.until = Some(at(410)))),
        ("actor", query(&|q| q.actor = Some("k1".into()))),
        ("subject", query(&|q| q.subject = Some(id(24)))),
        ("action", query(&|q| q.action = Some("record_read".into()))),
        ("outcome", query(&|q| q.outcome = Some("denied".into()))),
        ("after", query(&|q| q.after = Some(1))),
        ("limit", query(&|q| q.limit = 2)),
    ];
    let mut counts = Vec::new();
    for (label, q) in queries {
        let rows = store.audit_query(&q).await;
        counts.push(rows.as_ref().unwrap().len());
        log(&format!("audit query {label}"), show(&rows));
    }
    assert_eq!(counts, vec![4, 2, 2, 2, 1, 2, 1, 2, 2]);
    let rows = store.audit_rows(2, 2).await;
    assert_eq!(
        rows.as_ref()
            .unwrap()
            .iter()
            .map(|r| r.idx)
            .collect::<Vec<_>>(),
        vec![2, 3]
    );
    log("audit rows", show(&rows));
    let head = store.audit_head().await.unwrap();
    assert_eq!(head.size, 6);
    assert_eq!(
        ward_audit::root(&store.audit_leaves(0..6).await.unwrap()),
        head.root
    );
    log("head", format!("{head:?}"));
    log("leaves", show(&store.audit_leaves(0..3).await));
    let i = store.audit_index_at(at(415)).await;
    assert_eq!(*i.as_ref().unwrap(), Some(3));
    log("index at", show(&i));
    log(
        "index after end",
        show(&store.audit_index_at(at(9999)).await),
    );

    // Checkpoints and pruning.
    let checkpoint = |text: &str| {
        Op::SaveCheckpoint(CheckpointRow {
            tree_size: 2,
            checkpoint: text.into(),
            frontier: vec![1, 2, 3],
            created_at: at(500),
        })
    };
    let r = store.commit(vec![checkpoint("first")]).await;
    assert!(r.is_ok());
    let r = store
        .commit(vec![checkpoint("second"), Op::PruneAudit { before: 2 }])
        .await;
    assert!(r.is_ok());
    log("checkpoint and prune", show(&r));
    let cps = store.checkpoints().await;
    assert_eq!(cps.as_ref().unwrap().len(), 1);
    assert_eq!(cps.as_ref().unwrap()[0].checkpoint, "second");
    log("checkpoints", show(&cps));
    let rows = store.audit_rows(0, 100).await;
    assert_eq!(rows.as_ref().unwrap()[0].idx, 2);
    log("rows after prune", show(&rows));
    let after_prune = store.audit_head().await.unwrap();
    assert_eq!(format!("{after_prune:?}"), format!("{head:?}"));
    log("leaves after prune", show(&store.audit_leaves(0..6).await));
    log(
        "index after prune",
        show(&store.audit_index_at(at(0)).await),
    );
    let r = store
        .commit(vec![audit(event(
            Some(t),
            None,
            "k1",
            Action::KeyList,
            Outcome::Allowed,
            600,
        ))])
        .await;
    assert_eq!(r.as_ref().unwrap().audit_indices, vec![6]);
    log("append after prune", show(&r));
}

/// A request that fails as a whole, and destroying a tenant.
async fn failed_requests_and_destruction(store: &dyn Store, out: &mut Vec<String>) {
    let mut log = |label: &str, line: String| out.push(format!("{label}: {line}"));
    let t = id(1);
    let missing = id(999);

    // A request fails as a whole: its subject and its event are not kept.
    let r = store
        .commit(vec![
            Op::InsertSubject(subject(t, 91, Some(b"ref-z"), true)),
            audit(event(
                Some(t),
                Some(id(91)),
                "k1",
                Action::SubjectCreate,
                Outcome::Allowed,
                700,
            )),
            Op::InsertRecord {
                record: record(t, missing, 92, "contacts"),
                index: vec![],
            },
        ])
        .await;
    assert_not_found(&r, "subject");
    log("failing request", show(&r));
    assert!(store.subject_by_ref(t, b"ref-z").await.unwrap().is_none());
    assert_eq!(store.audit_head().await.unwrap().size, 7);

    // Destroying a tenant.
    let destroy = |n| Op::DestroyTenant {
        id: id(n),
        at: at(800),
    };
    let r = store.commit(vec![destroy(1)]).await;
    assert!(r.is_ok());
    log("destroy", show(&r));
    let r = store.commit(vec![destroy(999)]).await;
    assert_not_found(&r, "tenant");
    log("destroy missing", show(&r));
    let tn = store.tenant(t).await.unwrap().unwrap();
    assert_eq!(tn.status, ward_store::TenantStatus::Destroyed);
    assert!(tn.wrapped_key.is_none());
    assert_eq!(tn.settings, "{}");
    log("destroyed tenant", format!("{tn:?}"));
    assert!(
        store
            .subject_view(t, id(22), RecordFilter::All(None))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.requests(t, None).await.unwrap().is_empty());
    assert!(store.held_records(t, id(21)).await.unwrap().is_empty());
    log("keys after destroy", show(&store.api_keys(Some(t)).await));
    log(
        "ledger after destroy",
        show(&store.ledger_entry(t, id(21)).await),
    );
    log("head at the end", show(&store.audit_head().await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_behaves_as_on_sqlite() {
    on_both_backends(scenario).await;
}

/// Runs `scenario` on a fresh PostgreSQL schema and a fresh SQLite file and compares the
/// transcripts line by line.
async fn on_both_backends<F>(scenario: F)
where
    F: AsyncFn(&dyn Store) -> Vec<String>,
{
    let schema = Schema::new();
    let pg = schema.open().await;
    let dir = tempfile::tempdir().unwrap();
    let lite = SqliteStore::open(&dir.path().join("ward.db"))
        .await
        .unwrap();
    let on_pg = scenario(&pg).await;
    let on_lite = scenario(&lite).await;
    for (p, s) in on_pg.iter().zip(&on_lite) {
        assert_eq!(p, s, "PostgreSQL and SQLite disagree");
    }
    assert_eq!(on_pg.len(), on_lite.len());
}

/// Record rotation's operations: new subject keys, guarded writes, re-encryption that skips
/// changed records, destruction of retired keys only once unused, job leases.
async fn rotation_scenario(store: &dyn Store) -> Vec<String> {
    let mut out = Vec::new();
    let mut log = |label: &str, line: String| out.push(format!("{label}: {line}"));
    let t = id(1);
    let s = id(21);
    let mut tn = tenant(1, Some(b"tenant-key"), 10);
    tn.key_version = 1;
    let mut sub = subject(t, 21, None, true);
    sub.key_version = 1;
    sub.record_key_version = 1;
    let mut r1 = record(t, s, 31, "contact");
    r1.key_version = 1;
    let mut r2 = record(t, s, 32, "contact");
    r2.key_version = 1;
    store
        .commit(vec![
            Op::InsertTenant(tn),
            Op::InsertSubject(sub),
            Op::InsertRecord {
                record: r1.clone(),
                index: vec![],
            },
            Op::InsertRecord {
                record: r2.clone(),
                index: vec![],
            },
        ])
        .await
        .unwrap();
    let rotate = |expected: u32, tenant_key_version: u32| Op::RotateSubjectKeys {
        tenant: t,
        tenant_key_version,
        keys: vec![SubjectKeyChange {
            subject: s,
            expected_version: expected,
            wrapped_key: vec![expected as u8 + 1; 40],
        }],
    };
    // Wrong expectations change nothing.
    let r = store.commit(vec![rotate(7, 1)]).await;
    assert_conflict(&r, ward_store::Conflict::SubjectKeyRotated);
    log("rotate from a stale version", show(&r));
    let r = store.commit(vec![rotate(1, 9)]).await;
    assert_conflict(&r, ward_store::Conflict::KeyRotated);
    log("rotate under a stale tenant key", show(&r));
    assert_eq!(store.retired_key_count(Some(t)).await.unwrap(), 0);
    // Step 1.
    let r = store.commit(vec![rotate(1, 1)]).await;
    log("rotate", show(&r));
    let view = store
        .subject_view(t, s, RecordFilter::All(None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.subject.record_key_version, 2);
    assert_eq!(view.subject.wrapped_key.as_deref(), Some(&[2u8; 40][..]));
    assert!(view.records.iter().all(|r| r.key_version == 1));
    let retired = store.retired_keys(t, s).await.unwrap();
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0].version, 1);
    assert_eq!(retired[0].wrapped_key, vec![21u8; 40]);
    log("retired", format!("{retired:?}"));
    log(
        "subjects with retired keys",
        show(&store.subjects_with_retired_keys(t, 10).await),
    );
    // A write sealed under the replaced key is refused; under the new one it is taken.
    let mut stale = record(t, s, 33, "contact");
    stale.key_version = 1;
    let r = store
        .commit(vec![Op::InsertRecord {
            record: stale.clone(),
            index: vec![],
        }])
        .await;
    assert_conflict(&r, ward_store::Conflict::SubjectKeyRotated);
    log("insert under the old key", show(&r));
    let mut patched = r2.clone();
    patched.revision = r2.revision + 1;
    let r = store
        .commit(vec![Op::UpdateRecord {
            record: patched.clone(),
            expected_revision: r2.revision,
            index: vec![],
        }])
        .await;
    assert_conflict(&r, ward_store::Conflict::SubjectKeyRotated);
    log("update under the old key", show(&r));
    patched.key_version = 2;
    let r = store
        .commit(vec![Op::UpdateRecord {
            record: patched.clone(),
            expected_revision: r2.revision,
            index: vec![],
        }])
        .await;
    log("update under the new key", show(&r));
    // Destroying now keeps the retired key: record 31 is still sealed under it.
    let destroy = Op::DestroyRetiredKeys {
        tenant: t,
        subjects: vec![s],
    };
    let r = store.commit(vec![destroy.clone()]).await;
    log("destroy while in use", show(&r));
    assert_eq!(store.retired_key_count(Some(t)).await.unwrap(), 1);
    // Step 2: record 32 moved on (revision 2), so its stale re-encryption is skipped.
    let r = store
        .commit(vec![Op::ReencryptRecords {
            tenant: t,
            records: vec![
                ward_store::Reencrypted {
                    subject: s,
                    id: r1.id,
                    revision: r1.revision,
                    ciphertext: b"resealed-31".to_vec(),
                    key_version: 2,
                },
                ward_store::Reencrypted {
                    subject: s,
                    id: r2.id,
                    revision: r2.revision,
                    ciphertext: b"stale-32".to_vec(),
                    key_version: 2,
                },
            ],
        }])
        .await;
    log("re-encrypt", show(&r));
    let view = store
        .subject_view(t, s, RecordFilter::All(None))
        .await
        .unwrap()
        .unwrap();
    let by_id = |id: Uuid| view.records.iter().find(|r| r.id == id).unwrap();
    assert_eq!(by_id(r1.id).ciphertext, b"resealed-31");
    assert_eq!(by_id(r1.id).key_version, 2);
    assert_eq!(by_id(r1.id).revision, r1.revision);
    assert_eq!(by_id(r2.id).ciphertext, patched.ciphertext);
    // Step 3: nothing under version 1 any more, so its key goes.
    let r = store.commit(vec![destroy]).await;
    log("destroy when unused", show(&r));
    assert_eq!(store.retired_key_count(Some(t)).await.unwrap(), 0);
    assert_eq!(store.retired_key_count(None).await.unwrap(), 0);
    log(
        "records of subjects",
        show(
            &store
                .records_of_subjects(t, None, s)
                .await
                .map(|rs| rs.iter().map(|r| (r.id, r.key_version)).collect::<Vec<_>>()),
        ),
    );
    assert!(
        store
            .records_of_subjects(t, Some(s), id(99))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.record_count(t).await.unwrap(), 2);
    // A second rotation and an erasure: the erasure takes the retired key with it.
    store.commit(vec![rotate(2, 1)]).await.unwrap();
    assert_eq!(store.retired_key_count(Some(t)).await.unwrap(), 1);
    store
        .commit(vec![Op::EraseSubject {
            tenant: t,
            subject: s,
        }])
        .await
        .unwrap();
    assert_eq!(store.retired_key_count(Some(t)).await.unwrap(), 0);
    // Rotating an erased subject is a conflict (its key is gone).
    let r = store.commit(vec![rotate(3, 1)]).await;
    assert_conflict(&r, ward_store::Conflict::SubjectKeyRotated);
    log("rotate erased", show(&r));

    // Jobs and their leases.
    let job = ward_store::KeyJobRow {
        id: id(41),
        tenant: t,
        status: "running".into(),
        cursor: None,
        subjects_done: 0,
        records_done: 0,
        records_total: 2,
        started_at: at(100),
        updated_at: at(100),
        finished_at: None,
        lease_owner: None,
        lease_until: None,
        error: None,
    };
    log(
        "insert job",
        show(&store.commit(vec![Op::InsertKeyJob(job.clone())]).await),
    );
    let r = store.commit(vec![Op::InsertKeyJob(job)]).await;
    assert_conflict(&r, ward_store::Conflict::Exists("key job"));
    let advance = |owner: &str, now: i64, records: u64| Op::AdvanceKeyJob {
        id: id(41),
        owner: owner.into(),
        cursor: Some(s),
        subjects: 1,
        records,
        at: at(now),
        lease_until: at(now + 60),
    };
    log(
        "claim",
        show(&store.commit(vec![advance("a", 101, 1)]).await),
    );
    let r = store.commit(vec![advance("b", 120, 5)]).await;
    log("claim held by another", show(&r));
    assert!(matches!(r, Err(StoreError::Conflict(_))));
    log(
        "lease renewed",
        show(&store.commit(vec![advance("a", 130, 1)]).await),
    );
    log(
        "taken over after expiry",
        show(&store.commit(vec![advance("b", 200, 0)]).await),
    );
    let jobs = store.key_jobs(Some("running")).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].subjects_done, jobs[0].records_done), (3, 2));
    assert_eq!(jobs[0].cursor, Some(s));
    assert_eq!(jobs[0].lease_owner.as_deref(), Some("b"));
    let finish = Op::FinishKeyJob {
        id: id(41),
        status: "done".into(),
        at: at(300),
        error: None,
    };
    log("finish", show(&store.commit(vec![finish.clone()]).await));
    assert!(store.key_jobs(Some("running")).await.unwrap().is_empty());
    let r = store.commit(vec![finish]).await;
    assert_conflict(&r, ward_store::Conflict::KeyJobNotRunning);
    let r = store.commit(vec![advance("b", 301, 1)]).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))));
    log("jobs", format!("{:?}", store.key_jobs(None).await.unwrap()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_rotation_operations_behave_as_on_sqlite() {
    on_both_backends(rotation_scenario).await;
}

/// Tenant key rotation's operations: the store hands every key not yet under the new version
/// to the rewrapper inside the rotating commit, a failing rewrap rolls the rotation back, and
/// keys written under a replaced tenant key version are refused.
async fn tenant_rotation_scenario(store: &dyn Store) -> Vec<String> {
    let mut out = Vec::new();
    let mut log = |label: &str, line: String| out.push(format!("{label}: {line}"));
    let t = id(1);
    let mut tn = tenant(1, Some(b"tenant-key"), 10);
    tn.key_version = 1;
    let subjects: Vec<SubjectRow> = (21..24)
        .map(|n| {
            let mut s = subject(t, n, None, true);
            s.key_version = 1;
            s.record_key_version = 1;
            s
        })
        .collect();
    let hold = HoldRow {
        tenant: t,
        id: id(51),
        subject: id(29),
        wrapped_key: Some(vec![51; 40]),
        key_version: 1,
        created_at: at(5),
    };
    let mut ops = vec![Op::InsertTenant(tn)];
    ops.extend(subjects.iter().cloned().map(Op::InsertSubject));
    ops.push(Op::InsertHold(hold.clone()));
    ops.push(Op::RotateSubjectKeys {
        tenant: t,
        tenant_key_version: 1,
        keys: vec![SubjectKeyChange {
            subject: id(21),
            expected_version: 1,
            wrapped_key: vec![121; 40],
        }],
    });
    store.commit(ops).await.unwrap();
    // A rewrapper that marks each key with the new version, or refuses one subject's key.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let rewrapper = |refuse: Option<Uuid>| {
        let seen = seen.clone();
        Rewrapper::new(move |k| {
            if let KeyOwner::Subject(s) = k.owner
                && Some(s) == refuse
            {
                return Err(RewrapFailed);
            }
            seen.lock()
                .unwrap()
                .push(format!("{:?}@{}", k.owner, k.key_version));
            let mut key = k.wrapped.to_vec();
            key[0] = 200;
            Ok(key)
        })
    };
    let rotate = |expected: u32, rewrap: Rewrapper| {
        vec![
            Op::RewrapTenant {
                id: t,
                wrapped_key: b"tenant-key-2".to_vec(),
                root_key_version: 1,
                key_version: 2,
                expected_key_version: expected,
            },
            Op::RewrapTenantKeys {
                tenant: t,
                key_version: 2,
                rewrap,
            },
        ]
    };
    // A key that does not open rolls the whole rotation back.
    let r = store.commit(rotate(1, rewrapper(Some(id(22))))).await;
    assert!(matches!(r, Err(StoreError::Rewrap(_))), "{r:?}");
    log("a key that does not open", show(&r));
    assert_eq!(store.tenant(t).await.unwrap().unwrap().key_version, 1);
    let page = store.keyed_subjects(t, None, 10).await.unwrap();
    assert!(page.iter().all(|s| s.key_version == 1), "{page:?}");
    // A stale expectation is a conflict before anything is rewrapped.
    seen.lock().unwrap().clear();
    let r = store.commit(rotate(7, rewrapper(None))).await;
    assert_conflict(&r, ward_store::Conflict::TenantKeyChanged);
    assert!(seen.lock().unwrap().is_empty());
    // The rotation: every subject key, the retired key and the hold key, once each.
    let r = store.commit(rotate(1, rewrapper(None))).await.unwrap();
    assert_eq!(
        r.keys_rewrapped,
        KeysRewrapped {
            subjects: 3,
            retired_subject_keys: 1,
            holds: 1
        }
    );
    let mut seen_keys = seen.lock().unwrap().clone();
    seen_keys.sort();
    log("rewrapped", format!("{seen_keys:?}"));
    assert_eq!(seen_keys.len(), 5, "{seen_keys:?}");
    let page = store.keyed_subjects(t, None, 10).await.unwrap();
    for s in &page {
        assert_eq!(s.key_version, 2, "{s:?}");
        assert_eq!(s.wrapped_key.as_ref().unwrap()[0], 200, "{s:?}");
    }
    let retired = store.retired_keys(t, id(21)).await.unwrap();
    assert_eq!(retired.len(), 1);
    assert_eq!(
        (retired[0].key_version, retired[0].wrapped_key[0]),
        (2, 200)
    );
    let holds = store.live_holds(t).await.unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].key_version, 2);
    assert_eq!(holds[0].wrapped_key.as_ref().unwrap()[0], 200);
    // Keys wrapped under the replaced version are refused; under the new one they are taken.
    let mut late = subject(t, 24, None, true);
    late.key_version = 1;
    late.record_key_version = 1;
    let r = store.commit(vec![Op::InsertSubject(late.clone())]).await;
    assert_conflict(&r, ward_store::Conflict::KeyRotated);
    log("subject under the old tenant key", show(&r));
    let late_hold = HoldRow {
        id: id(52),
        ..hold.clone()
    };
    let r = store.commit(vec![Op::InsertHold(late_hold.clone())]).await;
    assert_conflict(&r, ward_store::Conflict::KeyRotated);
    log("hold under the old tenant key", show(&r));
    assert_eq!(store.live_holds(t).await.unwrap().len(), 1);
    late.key_version = 2;
    log(
        "subject under the new tenant key",
        show(&store.commit(vec![Op::InsertSubject(late)]).await),
    );
    let r = store
        .commit(vec![Op::InsertHold(HoldRow {
            key_version: 2,
            ..late_hold
        })])
        .await;
    log("hold under the new tenant key", show(&r));
    // Rotating again touches nothing already under the version.
    seen.lock().unwrap().clear();
    let again = rotate(2, rewrapper(None));
    let r = store.commit(again).await.unwrap();
    assert_eq!(r.keys_rewrapped, KeysRewrapped::default());
    out
}

/// A subject's access log across thousands of events: every page of the tenant view's
/// subject filter, with and without other filters, before and after a prune, returns exactly
/// the subject's events of that tenant in log order.
async fn subject_log_scenario(store: &dyn Store) -> Vec<String> {
    let mut out = Vec::new();
    let (a, b) = (id(1), id(2));
    let subjects = [Some(id(21)), Some(id(22)), None, Some(id(23)), Some(id(21))];
    let mut expected = Vec::new();
    let mut ops = Vec::new();
    for i in 0..3500u64 {
        let tenant = if i % 7 == 3 { b } else { a };
        let subject = subjects[(i % 5) as usize];
        let action = if i % 3 == 0 {
            Action::RecordRead
        } else {
            Action::RecordCreate
        };
        if tenant == a && subject == Some(id(21)) {
            expected.push((i, action));
        }
        ops.push(audit(event(
            Some(tenant),
            subject,
            "k",
            action,
            Outcome::Allowed,
            i as i64,
        )));
        if ops.len() == 500 {
            store.commit(std::mem::take(&mut ops)).await.unwrap();
        }
    }
    let walk = async |action: Option<&str>, limit: u32| {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .audit_query(&AuditQuery {
                    tenant: a,
                    since: None,
                    until: None,
                    actor: None,
                    subject: Some(id(21)),
                    action: action.map(str::to_owned),
                    outcome: None,
                    after,
                    limit,
                })
                .await
                .unwrap();
            assert!(page.len() <= limit as usize);
            let Some(last) = page.last() else { break };
            after = Some(last.idx);
            seen.extend(page.iter().map(|r| r.idx));
        }
        seen
    };
    let all: Vec<u64> = expected.iter().map(|(i, _)| *i).collect();
    assert_eq!(walk(None, 97).await, all);
    assert_eq!(walk(None, 5000).await, all);
    let reads: Vec<u64> = expected
        .iter()
        .filter(|(_, a)| *a == Action::RecordRead)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(walk(Some("record_read"), 50).await, reads);
    out.push(format!(
        "subject log: {} events, {} reads",
        all.len(),
        reads.len()
    ));
    store
        .commit(vec![Op::PruneAudit { before: 1500 }])
        .await
        .unwrap();
    let kept: Vec<u64> = all.iter().copied().filter(|i| *i >= 1500).collect();
    assert_eq!(walk(None, 97).await, kept);
    out.push(format!("after the prune: {}", kept.len()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subjects_access_log_is_complete_on_both_backends() {
    on_both_backends(subject_log_scenario).await;
}

/// `ward doctor` asks when the last backup, verification and retention sweep ran: the
/// newest system event (no tenant) of an action, never a tenant's event of the same name.
async fn system_event_scenario(store: &dyn Store) -> Vec<String> {
    let mut out = Vec::new();
    let newest = async |action: &str| {
        store
            .last_system_event(action)
            .await
            .unwrap()
            .map(|r| (r.idx, r.columns.tenant))
    };
    out.push(format!("empty: {:?}", newest("backup_run").await));
    store
        .commit(vec![
            Op::InsertTenant(tenant(1, Some(&[1; 40]), 0)),
            audit(event(
                None,
                None,
                "system:backup",
                Action::BackupRun,
                Outcome::Allowed,
                1,
            )),
            audit(event(
                None,
                None,
                "system:backup",
                Action::BackupVerify,
                Outcome::Allowed,
                2,
            )),
            audit(event(
                None,
                None,
                "system:backup",
                Action::BackupRun,
                Outcome::Allowed,
                3,
            )),
            audit(event(
                Some(id(1)),
                None,
                "k",
                Action::BackupRun,
                Outcome::Allowed,
                4,
            )),
        ])
        .await
        .unwrap();
    let run = newest("backup_run").await;
    assert_eq!(
        run,
        Some((2, None)),
        "the newest system run, not the tenant's event"
    );
    assert_eq!(newest("backup_verify").await, Some((1, None)));
    assert_eq!(newest("retention_run").await, None);
    out.push(format!("run {run:?}"));
    out
}

/// `/metrics` reads tenant sizes and the newest checkpoint in one call: counts per tenant
/// (a tenant without subjects included), the checkpoint of the largest tree.
async fn stats_scenario(store: &dyn Store) -> Vec<String> {
    let mut out = Vec::new();
    out.push(format!("empty: {:?}", store.stats().await.unwrap()));
    let (t1, t2) = (id(1), id(2));
    store
        .commit(vec![
            Op::InsertTenant(tenant(1, Some(&[1; 40]), 0)),
            Op::InsertTenant(tenant(2, Some(&[2; 40]), 0)),
            Op::InsertSubject(subject(t1, 10, None, true)),
            Op::InsertSubject(subject(t1, 11, None, true)),
        ])
        .await
        .unwrap();
    let mut ops = Vec::new();
    for n in 0..3 {
        ops.push(Op::InsertRecord {
            record: record(t1, id(10), 100 + n, "contact"),
            index: vec![],
        });
    }
    ops.push(Op::InsertRecord {
        record: record(t1, id(11), 200, "contact"),
        index: vec![],
    });
    store.commit(ops).await.unwrap();
    for (size, secs) in [(2, 500), (5, 600)] {
        store
            .commit(vec![Op::SaveCheckpoint(CheckpointRow {
                tree_size: size,
                checkpoint: format!("checkpoint {size}"),
                frontier: vec![1, 2, 3],
                created_at: at(secs),
            })])
            .await
            .unwrap();
    }
    let stats = store.stats().await.unwrap();
    let sizes: Vec<_> = stats
        .tenants
        .iter()
        .map(|t| (t.tenant, t.subjects, t.records))
        .collect();
    assert_eq!(sizes, vec![(t1, 2, 4), (t2, 0, 0)]);
    assert_eq!(stats.last_checkpoint, Some((5, at(600))));
    out.push(format!("{stats:?}"));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_the_same_on_both_backends() {
    on_both_backends(stats_scenario).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_system_event_is_found_on_both_backends() {
    on_both_backends(system_event_scenario).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_rotation_operations_behave_as_on_sqlite() {
    on_both_backends(tenant_rotation_scenario).await;
}

/// Invitations: one live per tenant, claimed once, not after expiry, not for another tenant;
/// the last owner key stays; a destroyed tenant's invitations go.
async fn invitation_scenario(store: &dyn Store) -> Vec<String> {
    let mut out = Vec::new();
    let mut log = |label: &str, line: String| out.push(format!("{label}: {line}"));
    let (t, t2) = (id(1), id(2));
    for n in [1, 2] {
        let r = store
            .commit(vec![Op::InsertTenant(tenant(n, Some(b"k"), 0))])
            .await;
        assert!(r.is_ok(), "{r:?}");
    }
    let invitation = |n: u128, tenant: Uuid, token: u8, expires: i64| InvitationRow {
        id: id(n),
        tenant,
        token_hash: [token; 32],
        created_at: at(0),
        expires_at: at(expires),
        used_at: None,
        role: None,
        purposes: None,
        membership_expires_at: None,
    };
    let claim = |tenant: Uuid, n: u128, secs: i64| Op::ClaimInvitation {
        tenant,
        id: id(n),
        at: at(secs),
    };
    let r = store
        .commit(vec![Op::InsertInvitation(invitation(10, t, 1, 100))])
        .await;
    assert!(r.is_ok(), "{r:?}");
    log("insert", show(&r));
    let r = store
        .commit(vec![Op::InsertInvitation(invitation(11, t2, 1, 100))])
        .await;
    assert_conflict(&r, ward_store::Conflict::Exists("invitation"));
    log("duplicate token", show(&r));
    let r = store
        .commit(vec![Op::InsertInvitation(invitation(12, id(999), 3, 100))])
        .await;
    assert!(r.is_err(), "{r:?}");
    log(
        "missing tenant",
        (if r.is_err() { "err" } else { "ok" }).into(),
    );
    let got = store.invitation_by_hash(&[1; 32]).await;
    assert_eq!(got.as_ref().unwrap().as_ref().unwrap().tenant, t);
    log("by hash", show(&got));
    log("missing", show(&store.invitation_by_hash(&[9; 32]).await));
    // A second invitation replaces the unclaimed first.
    let r = store
        .commit(vec![Op::InsertInvitation(invitation(13, t, 2, 100))])
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert!(store.invitation_by_hash(&[1; 32]).await.unwrap().is_none());
    let r = store.commit(vec![claim(t, 10, 1)]).await;
    assert_not_found(&r, "invitation");
    log("claim replaced", show(&r));
    let r = store.commit(vec![claim(t2, 13, 1)]).await;
    assert_not_found(&r, "invitation");
    log("claim for another tenant", show(&r));
    let r = store.commit(vec![claim(t, 13, 100)]).await;
    assert_not_found(&r, "invitation");
    log("claim at expiry", show(&r));
    // Claimed with the owner key in one commit; a failing key insert undoes the claim.
    let mut dup = api_key(20, Some(t), 2);
    dup.role = "owner".into();
    let r = store.commit(vec![Op::InsertApiKey(dup.clone())]).await;
    assert!(r.is_ok(), "{r:?}");
    let mut clash = api_key(21, Some(t), 2);
    clash.role = "owner".into();
    let r = store
        .commit(vec![claim(t, 13, 50), Op::InsertApiKey(clash)])
        .await;
    assert_conflict(&r, ward_store::Conflict::Exists("api key"));
    let inv = store.invitation_by_hash(&[2; 32]).await.unwrap().unwrap();
    assert_eq!(
        inv.used_at, None,
        "the failed commit left the invitation unclaimed"
    );
    let mut owner = api_key(22, Some(t), 4);
    owner.role = "owner".into();
    let r = store
        .commit(vec![claim(t, 13, 50), Op::InsertApiKey(owner)])
        .await;
    assert!(r.is_ok(), "{r:?}");
    log("claim", show(&r));
    let r = store.commit(vec![claim(t, 13, 51)]).await;
    assert_not_found(&r, "invitation");
    log("claim twice", show(&r));
    let inv = store.invitation_by_hash(&[2; 32]).await;
    assert_eq!(
        inv.as_ref().unwrap().as_ref().unwrap().used_at,
        Some(at(50))
    );
    log("claimed", show(&inv));
    // The last owner key stays.
    let revoke = |n: u128| Op::RevokeApiKey {
        tenant: Some(t),
        id: id(n),
        at: at(60),
    };
    let r = store
        .commit(vec![revoke(20), Op::AssertOwnerRemains { tenant: t }])
        .await;
    assert!(r.is_ok(), "{r:?}");
    log("revoke one of two owners", show(&r));
    let r = store
        .commit(vec![revoke(22), Op::AssertOwnerRemains { tenant: t }])
        .await;
    assert_conflict(&r, ward_store::Conflict::LastOwner);
    log("revoke the last owner", show(&r));
    let keys = store.api_keys(Some(t)).await.unwrap();
    assert!(
        keys.iter()
            .any(|k| k.id == id(22) && k.revoked_at.is_none())
    );
    let r = store
        .commit(vec![Op::AssertOwnerRemains { tenant: t2 }])
        .await;
    assert_conflict(&r, ward_store::Conflict::LastOwner);
    log("tenant without owner", show(&r));
    // An owner key with an end cannot be relied on to keep the tenant owned.
    let mut ending = api_key(23, Some(t2), 6);
    ending.role = "owner".into();
    ending.expires_at = Some(at(1000));
    let r = store
        .commit(vec![
            Op::InsertApiKey(ending),
            Op::AssertOwnerRemains { tenant: t2 },
        ])
        .await;
    assert_conflict(&r, ward_store::Conflict::LastOwner);
    log("an owner key that ends", show(&r));
    // Destroying a tenant removes its invitations.
    let r = store
        .commit(vec![Op::InsertInvitation(invitation(14, t2, 5, 100))])
        .await;
    assert!(r.is_ok(), "{r:?}");
    let r = store
        .commit(vec![Op::DestroyTenant { id: t2, at: at(70) }])
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert!(store.invitation_by_hash(&[5; 32]).await.unwrap().is_none());
    log(
        "after destroy",
        show(&store.invitation_by_hash(&[5; 32]).await),
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitation_operations_behave_as_on_sqlite() {
    on_both_backends(invitation_scenario).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_of_one_invitation_let_one_through() {
    let schema = Schema::new();
    let pg = Arc::new(schema.open().await);
    let dir = tempfile::tempdir().unwrap();
    let lite = Arc::new(
        SqliteStore::open(&dir.path().join("ward.db"))
            .await
            .unwrap(),
    );
    let stores: [Arc<dyn Store>; 2] = [pg, lite];
    for store in stores {
        let t = id(1);
        store
            .commit(vec![Op::InsertTenant(tenant(1, Some(b"k"), 0))])
            .await
            .unwrap();
        store
            .commit(vec![Op::InsertInvitation(InvitationRow {
                id: id(10),
                tenant: t,
                token_hash: [1; 32],
                created_at: at(0),
                expires_at: at(100),
                used_at: None,
                role: None,
                purposes: None,
                membership_expires_at: None,
            })])
            .await
            .unwrap();
        let tasks: Vec<_> = (0..16u8)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut key = api_key(100 + u128::from(n), Some(t), 100 + n);
                    key.role = "owner".into();
                    store
                        .commit(vec![
                            Op::ClaimInvitation {
                                tenant: t,
                                id: id(10),
                                at: at(1),
                            },
                            Op::InsertApiKey(key),
                        ])
                        .await
                })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => won += 1,
                Err(e) => assert!(matches!(e, StoreError::NotFound("invitation")), "{e:?}"),
            }
        }
        assert_eq!(won, 1);
        assert_eq!(store.api_keys(Some(t)).await.unwrap().len(), 1);
    }
}

// ---- group commit ---------------------------------------------------------------------------

/// Checks the audit log holds `size` events that verify against its head, and returns who
/// acted in them: the batch tests tell which requests' events were kept by their actors.
async fn verified_actors(store: &dyn Store, size: u64) -> BTreeSet<String> {
    let head = store.audit_head().await.unwrap();
    assert_eq!(head.size, size);
    let rows = store.audit_rows(0, 1000).await.unwrap();
    let mut verifier = Verifier::new();
    for row in &rows {
        verifier.feed(row.idx, &row.event, &row.chain).unwrap();
    }
    assert_eq!(verifier.root(), head.root);
    assert_eq!(verifier.chain(), head.chain);
    rows.iter()
        .map(|r| {
            serde_json::from_slice::<AuditEvent>(&r.event)
                .unwrap()
                .actor
                .id
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_fails_alone_in_a_batch() {
    let schema = Schema::new();
    let store = Arc::new(schema.open().await);
    let t = id(1);
    store
        .commit(vec![
            Op::InsertTenant(tenant(1, Some(b"k"), 0)),
            Op::InsertSubject(subject(t, 2, None, true)),
            Op::InsertRecord {
                record: record(t, id(2), 3, "contacts"),
                index: vec![],
            },
        ])
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for i in 0..200u128 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let ev = audit(event(
                Some(t),
                None,
                &format!("k{i}"),
                Action::RecordUpdate,
                Outcome::Allowed,
                i as i64,
            ));
            let ops = match i % 4 {
                // Fifty writers race for one revision: one wins.
                0 => {
                    let mut r = record(t, id(2), 3, "contacts");
                    r.revision = 2;
                    r.ciphertext = vec![i as u8; 8];
                    vec![
                        ev,
                        Op::UpdateRecord {
                            record: r,
                            expected_revision: 1,
                            index: vec![entry("email", i as u8)],
                        },
                    ]
                }
                // Fifty subjects claim one external reference: one wins.
                1 => vec![
                    Op::InsertSubject(subject(t, 1000 + i, Some(b"shared"), true)),
                    ev,
                ],
                // Independent writes: all succeed.
                2 => vec![
                    Op::InsertSubject(subject(t, 1000 + i, None, true)),
                    ev,
                    Op::InsertRecord {
                        record: record(t, id(1000 + i), 2000 + i, "notes"),
                        index: vec![entry("email", 7)],
                    },
                ],
                // An event, then a write that cannot succeed: nothing is kept.
                _ => vec![
                    ev,
                    Op::InsertRecord {
                        record: record(t, id(5000), 3000 + i, "notes"),
                        index: vec![],
                    },
                ],
            };
            (i, store.commit(ops).await)
        }));
    }
    let mut indices = Vec::new();
    let mut won_update = Vec::new();
    let mut won_ref = Vec::new();
    for task in tasks {
        let (i, result) = task.await.unwrap();
        match (i % 4, result) {
            (0, Ok(c)) => {
                won_update.push(i);
                indices.extend(c.audit_indices);
            }
            (0, r) => assert_conflict(&r, ward_store::Conflict::Stale),
            (1, Ok(c)) => {
                won_ref.push(i);
                indices.extend(c.audit_indices);
            }
            (1, r) => assert_conflict(
                &r,
                ward_store::Conflict::Exists("subject with this external_ref"),
            ),
            (2, r) => indices.extend(r.unwrap().audit_indices),
            (_, r) => assert_not_found(&r, "subject"),
        }
    }
    assert_eq!(won_update.len(), 1, "exactly one revision update wins");
    assert_eq!(won_ref.len(), 1, "exactly one claim on the reference wins");
    indices.sort_unstable();
    assert_eq!(
        indices,
        (0..52).collect::<Vec<u64>>(),
        "gap-free, no duplicates"
    );

    // Only the events of requests that succeeded were kept.
    let actors = verified_actors(&*store, 52).await;
    let expected: BTreeSet<String> = (0..200u128)
        .filter(|i| i % 4 == 2 || won_update.contains(i) || won_ref.contains(i))
        .map(|i| format!("k{i}"))
        .collect();
    assert_eq!(actors, expected);

    let view = store
        .subject_view(t, id(2), RecordFilter::One(id(3)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.records[0].revision, 2);
    assert_eq!(view.records[0].ciphertext, vec![won_update[0] as u8; 8]);
    assert!(
        store
            .subject_by_ref(t, b"shared")
            .await
            .unwrap()
            .is_some_and(|s| s.id == id(1000 + won_ref[0]))
    );
    for i in (0..200u128).filter(|i| i % 4 == 2) {
        let v = store
            .subject_view(t, id(1000 + i), RecordFilter::All(None))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.records.len(), 1);
    }
    assert_eq!(
        store
            .lookup(t, "notes", "email", &[7; 32])
            .await
            .unwrap()
            .len(),
        50
    );
}

/// One group commit of requests of every kind, some of which lose: a record inserted twice, a
/// stale revision, an update racing a delete, a missing record, a taken external reference
/// (unique index), a subject without key, and a batch call one of whose writes loses. Exactly
/// the losers fail, with the errors of the one-request path; the others commit, with their
/// audit events and nothing else in the log.
///
/// The current-thread runtime makes it one batch: every request is queued before the writer
/// task runs.
#[tokio::test(flavor = "current_thread")]
async fn a_mixed_batch_fails_exactly_the_requests_that_lost() {
    let schema = Schema::new();
    let store = Arc::new(schema.open().await);
    let t = id(1);
    let (s, s2, keyless) = (id(2), id(4), id(7));
    store
        .commit(vec![
            Op::InsertTenant(tenant(1, Some(b"k"), 0)),
            Op::InsertSubject(subject(t, 2, None, true)),
            Op::InsertSubject(subject(t, 4, None, true)),
            Op::InsertSubject(subject(t, 6, Some(b"taken"), true)),
            Op::InsertSubject(subject(t, 7, None, false)),
            Op::InsertRecord {
                record: record(t, s, 3, "contacts"),
                index: vec![entry("email", 0xA1)],
            },
            Op::InsertRecord {
                record: record(t, s, 5, "contacts"),
                index: vec![],
            },
        ])
        .await
        .unwrap();
    let bumped = |n: u128, ciphertext: u8| {
        let mut r = record(t, s, n, "contacts");
        r.revision = 2;
        r.ciphertext = vec![ciphertext; 8];
        r
    };
    let requests: Vec<Vec<Op>> = vec![
        // 0: a new record: commits.
        vec![Op::InsertRecord {
            record: record(t, s, 10, "notes"),
            index: vec![entry("email", 0xC1)],
        }],
        // 1: the same record again: loses to 0.
        vec![Op::InsertRecord {
            record: record(t, s, 10, "notes"),
            index: vec![entry("email", 0xC2)],
        }],
        // 2: an update at the current revision: commits.
        vec![Op::UpdateRecord {
            record: bumped(3, 0xEE),
            expected_revision: 1,
            index: vec![entry("email", 0xB1)],
        }],
        // 3: an update at a stale revision: loses.
        vec![Op::UpdateRecord {
            record: bumped(5, 0xEF),
            expected_revision: 7,
            index: vec![],
        }],
        // 4: a delete of the record 3 failed to update: commits.
        vec![Op::DeleteRecord {
            tenant: t,
            subject: s,
            id: id(5),
        }],
        // 5: a delete of a record that never was: not found.
        vec![Op::DeleteRecord {
            tenant: t,
            subject: s,
            id: id(99),
        }],
        // 6: a subject claiming a taken external reference: loses.
        vec![Op::InsertSubject(subject(t, 8, Some(b"taken"), true))],
        // 7: a record of a subject without key: not found.
        vec![Op::InsertRecord {
            record: record(t, keyless, 11, "notes"),
            index: vec![],
        }],
        // 8: an audited read: commits.
        vec![],
        // 9: a batch call: commits whole.
        vec![
            Op::InsertRecord {
                record: record(t, s2, 20, "notes"),
                index: vec![entry("email", 0xD1)],
            },
            Op::InsertRecord {
                record: record(t, s2, 21, "notes"),
                index: vec![entry("email", 0xD1)],
            },
        ],
        // 10: a batch call whose second write loses to 2: nothing of it stays.
        vec![
            Op::InsertRecord {
                record: record(t, s2, 22, "notes"),
                index: vec![entry("email", 0xD1)],
            },
            Op::UpdateRecord {
                record: bumped(3, 0xAA),
                expected_revision: 1,
                index: vec![],
            },
        ],
        // 11: one more independent record: commits.
        vec![Op::InsertRecord {
            record: record(t, s2, 12, "notes"),
            index: vec![entry("phone", 0xE1)],
        }],
    ];
    let mut tasks = Vec::new();
    for (i, mut ops) in requests.into_iter().enumerate() {
        let store = store.clone();
        ops.push(audit(event(
            Some(t),
            None,
            &format!("m{i}"),
            Action::RecordUpdate,
            Outcome::Allowed,
            i as i64,
        )));
        tasks.push(tokio::spawn(async move { store.commit(ops).await }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let stale = ward_store::Conflict::Stale;
    assert_conflict(&results[1], ward_store::Conflict::Exists("subject"));
    assert_conflict(&results[3], stale.clone());
    assert_not_found(&results[5], "record");
    assert_conflict(
        &results[6],
        ward_store::Conflict::Exists("subject with this external_ref"),
    );
    assert_not_found(&results[7], "subject");
    assert_conflict(&results[10], stale);
    let winners = [0usize, 2, 4, 8, 9, 11];
    let mut indices: Vec<u64> = Vec::new();
    for &i in &winners {
        let committed = results[i].as_ref().unwrap();
        assert_eq!(committed.audit_indices.len(), 1, "request {i}");
        indices.extend(&committed.audit_indices);
    }
    indices.sort_unstable();
    assert_eq!(
        indices,
        (0..6).collect::<Vec<u64>>(),
        "gap-free, no duplicates"
    );

    // The log holds the winners' events and nothing else, and verifies.
    let actors = verified_actors(&*store, 6).await;
    let expected: BTreeSet<String> = winners.iter().map(|i| format!("m{i}")).collect();
    assert_eq!(actors, expected);

    // The data is what the winners wrote.
    let view = store
        .subject_view(t, s, RecordFilter::All(None))
        .await
        .unwrap()
        .unwrap();
    let mut records: Vec<(Uuid, i64, Vec<u8>)> = view
        .records
        .iter()
        .map(|r| (r.id, r.revision, r.ciphertext.clone()))
        .collect();
    records.sort();
    assert_eq!(
        records,
        vec![
            (id(3), 2, vec![0xEE; 8]),
            (id(10), 1, record(t, s, 10, "notes").ciphertext),
        ]
    );
    let ids = |found: Vec<(SubjectRow, RecordRow)>| {
        let mut ids: Vec<Uuid> = found.into_iter().map(|(_, r)| r.id).collect();
        ids.sort();
        ids
    };
    let lookup = |collection: &'static str, field: &'static str, hash: u8| {
        let store = store.clone();
        async move {
            store
                .lookup(t, collection, field, &[hash; 32])
                .await
                .unwrap()
        }
    };
    assert_eq!(ids(lookup("notes", "email", 0xC1).await), vec![id(10)]);
    assert!(lookup("notes", "email", 0xC2).await.is_empty());
    assert!(lookup("contacts", "email", 0xA1).await.is_empty());
    assert_eq!(ids(lookup("contacts", "email", 0xB1).await), vec![id(3)]);
    assert_eq!(
        ids(lookup("notes", "email", 0xD1).await),
        vec![id(20), id(21)]
    );
    assert_eq!(ids(lookup("notes", "phone", 0xE1).await), vec![id(12)]);
    let other = store
        .subject_view(t, s2, RecordFilter::All(None))
        .await
        .unwrap()
        .unwrap();
    let mut other: Vec<Uuid> = other.records.iter().map(|r| r.id).collect();
    other.sort();
    assert_eq!(other, vec![id(12), id(20), id(21)]);
    assert!(
        store
            .subject_view(t, id(8), RecordFilter::None)
            .await
            .unwrap()
            .is_none()
    );
}

/// A set-based statement that fails as a whole (here a foreign key the statements do not check
/// row by row: a subject key whose subject row is gone) costs its batch one replay, request by
/// request: only the request that caused it fails.
#[tokio::test(flavor = "current_thread")]
async fn a_set_statement_that_fails_whole_is_replayed_request_by_request() {
    let schema = Schema::new();
    let store = Arc::new(schema.open().await);
    let t = id(1);
    store
        .commit(vec![
            Op::InsertTenant(tenant(1, Some(b"k"), 0)),
            Op::InsertSubject(subject(t, 2, None, true)),
            Op::InsertSubject(subject(t, 3, None, true)),
        ])
        .await
        .unwrap();
    sqlx::query("DELETE FROM subjects WHERE id = $1")
        .bind(id(3).as_bytes().as_slice())
        .execute(store.pool())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (i, subject) in [id(2), id(3), id(2)].into_iter().enumerate() {
        let store = store.clone();
        let ops = vec![
            Op::InsertRecord {
                record: record(t, subject, 10 + i as u128, "notes"),
                index: vec![entry("email", 0xC1)],
            },
            audit(event(
                Some(t),
                None,
                &format!("r{i}"),
                Action::RecordCreate,
                Outcome::Allowed,
                i as i64,
            )),
        ];
        tasks.push(tokio::spawn(async move { store.commit(ops).await }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert_eq!(results[0].as_ref().unwrap().audit_indices.len(), 1);
    assert_not_found(&results[1], "subject");
    assert_eq!(results[2].as_ref().unwrap().audit_indices.len(), 1);
    let rows = store.audit_rows(0, 100).await.unwrap();
    assert_eq!(rows.len(), 2);
    let found = store
        .lookup(t, "notes", "email", &[0xC1; 32])
        .await
        .unwrap();
    let mut ids: Vec<Uuid> = found.into_iter().map(|(_, r)| r.id).collect();
    ids.sort();
    assert_eq!(ids, vec![id(10), id(12)]);
}

// ---- several servers ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_append_one_gap_free_log() {
    let schema = Schema::new();
    let (a, b) = tokio::join!(schema.open(), schema.open());
    let servers = [Arc::new(a), Arc::new(b)];
    let t = id(1);
    servers[0]
        .commit(vec![Op::InsertTenant(tenant(1, None, 0))])
        .await
        .unwrap();

    // Per server, eight clients each send 25 commits one after the other: many small batches
    // on both servers, contending for the head row all along.
    let mut tasks = Vec::new();
    for (s, server) in servers.iter().enumerate() {
        for client in 0..8u128 {
            let server = server.clone();
            tasks.push(tokio::spawn(async move {
                let mut indices = Vec::new();
                for n in 0..25u128 {
                    let i = client * 25 + n;
                    let mut ops = vec![audit(event(
                        Some(t),
                        None,
                        &format!("server{s}-{i}"),
                        Action::RecordRead,
                        Outcome::Allowed,
                        i as i64,
                    ))];
                    if i % 10 == 0 {
                        ops.push(Op::InsertSubject(subject(
                            t,
                            (s as u128 + 1) * 10_000 + i,
                            None,
                            true,
                        )));
                    }
                    indices.extend(server.commit(ops).await.unwrap().audit_indices);
                }
                indices
            }));
        }
    }
    let mut indices = Vec::new();
    for task in tasks {
        indices.extend(task.await.unwrap());
    }
    indices.sort_unstable();
    assert_eq!(indices, (0..400).collect::<Vec<u64>>());

    let head_a = servers[0].audit_head().await.unwrap();
    let head_b = servers[1].audit_head().await.unwrap();
    assert_eq!(head_a.size, 400);
    assert_eq!(format!("{head_a:?}"), format!("{head_b:?}"));

    let rows = servers[1].audit_rows(0, 1000).await.unwrap();
    assert_eq!(rows.len(), 400);
    let mut verifier = Verifier::new();
    let mut actors = BTreeSet::new();
    for row in &rows {
        verifier.feed(row.idx, &row.event, &row.chain).unwrap();
        let event: AuditEvent = serde_json::from_slice(&row.event).unwrap();
        assert!(actors.insert(event.actor.id), "each event stored once");
    }
    verifier.finish(None).unwrap();
    assert_eq!(verifier.size(), 400);
    assert_eq!(verifier.root(), head_a.root);
    assert_eq!(verifier.chain(), head_a.chain);
    assert_eq!(verifier.frontier().to_bytes(), head_a.frontier);
    assert_eq!(
        Frontier::from_bytes(&head_a.frontier).unwrap().root(),
        head_a.root
    );
    let leaves = servers[0].audit_leaves(0..400).await.unwrap();
    assert_eq!(ward_audit::root(&leaves), head_a.root);
    // Whichever server's writer appended event 255 stored the first block's tree node.
    let nodes = servers[1].audit_tree_nodes(vec![(8, 0..2)]).await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].hash, ward_audit::root(&leaves[..256]));
    assert_eq!(
        servers[0].subject_ids(t, None, 100).await.unwrap().len(),
        40
    );
}

// ---- opening --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_starting_together_migrate_once() {
    let schema = Schema::new();
    let (a, b, c, d) = tokio::join!(schema.open(), schema.open(), schema.open(), schema.open());
    drop((b, c, d));
    let again = schema.open().await;
    let head = again.audit_head().await.unwrap();
    assert_eq!(head.size, 0);
    assert_eq!(head.root, ward_audit::empty_root());
    assert_eq!(head.chain, [0; 32]);
    assert_eq!(head.frontier, Frontier::new().to_bytes());
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(a.pool())
        .await
        .unwrap();
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count();
    assert_eq!(applied, i64::try_from(shipped).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_honours_a_search_path_in_the_url() {
    let schema = Schema::new();
    let mut conn = PgConnection::connect(&url()).await.unwrap();
    conn.execute(AssertSqlSafe(format!("CREATE SCHEMA \"{}\"", schema.name)))
        .await
        .unwrap();
    let sep = if url().contains('?') { '&' } else { '?' };
    let store = PostgresStore::open(&format!(
        "{}{sep}options=-c%20search_path%3D{}",
        url(),
        schema.name
    ))
    .await
    .unwrap();
    store
        .commit(vec![Op::InsertTenant(tenant(1, None, 0))])
        .await
        .unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_schema = $1 AND table_name = 'audit_head'",
    )
    .bind(&schema.name)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 1);
    let tenants: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM \"{}\".tenants",
        schema.name
    )))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tenants, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_names_that_need_quoting_are_refused() {
    for name in [
        "",
        "Upper",
        "1starts_with_digit",
        "has-dash",
        "x\"; DROP SCHEMA public CASCADE; --",
        "sp ace",
        &"a".repeat(64),
    ] {
        match PostgresStore::open_in_schema(&url(), name).await {
            Err(StoreError::Database(sqlx::Error::Configuration(_))) => {}
            Err(e) => panic!("{name:?}: unexpected error {e}"),
            Ok(_) => panic!("{name:?} was accepted"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_an_error() {
    let started = std::time::Instant::now();
    let result = PostgresStore::open("postgres://postgres@127.0.0.1:1/test").await;
    assert!(matches!(result, Err(StoreError::Database(_))));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_a_newer_ward_migrated_is_refused_naming_both_versions() {
    let schema = Schema::new();
    let store = schema.open().await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99, 'from a newer Ward', true, '\\x00'::bytea, 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    drop(store);
    match PostgresStore::open_in_schema(&url(), &schema.name).await {
        Err(e @ StoreError::NewerSchema { found: 99, known }) => {
            assert!(known >= 5, "{e}");
            let message = e.to_string();
            assert!(
                message.contains("schema version 99")
                    && message.contains(&format!("up to {known}")),
                "{message}"
            );
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a database from a newer Ward was opened"),
    }
}

// ---- the stored Merkle tree -------------------------------------------------------------------

/// Tenant 1 and `n` events in it from index 0.
async fn tenant_with_events(store: &dyn Store, n: u64) {
    store
        .commit(vec![Op::InsertTenant(tenant(1, None, 0))])
        .await
        .unwrap();
    append_events(store, 0, n).await;
}

/// Appends `n` audit events in commits of up to 1,000.
async fn append_events(store: &dyn Store, from: u64, n: u64) {
    let mut done = 0;
    while done < n {
        let ops = (done..n.min(done + 1000))
            .map(|i| {
                audit(event(
                    Some(id(1)),
                    None,
                    &format!("tree-{}", from + i),
                    Action::RecordRead,
                    Outcome::Allowed,
                    (from + i) as i64,
                ))
            })
            .collect::<Vec<_>>();
        done += ops.len() as u64;
        store.commit(ops).await.unwrap();
    }
}

/// Every stored node: each equals the root of its events, and every complete 16-, 256-,
/// 4,096- and 65,536-event subtree has one.
async fn check_stored_nodes(store: &dyn Store, size: u64) -> Vec<String> {
    let leaves = store.audit_leaves(0..size).await.unwrap();
    assert_eq!(leaves.len() as u64, size);
    let heights = [4, 8, 12, 16];
    let nodes = store
        .audit_tree_nodes(heights.iter().map(|&h| (h, 0..u64::MAX >> h)).collect())
        .await
        .unwrap();
    assert_eq!(
        nodes.len() as u64,
        heights.iter().map(|&h| size >> h).sum::<u64>()
    );
    for node in &nodes {
        let r = node.subtree.leaves();
        assert_eq!(
            node.hash,
            ward_audit::root(&leaves[r.start as usize..r.end as usize]),
            "node {:?}",
            node.subtree
        );
    }
    vec![format!("{} nodes", nodes.len())]
}

/// Prunes the audit log before `before`, under a checkpoint of that size.
async fn prune_audit(store: &dyn Store, before: u64) {
    store
        .commit(vec![
            Op::SaveCheckpoint(CheckpointRow {
                tree_size: before,
                checkpoint: "prune".into(),
                frontier: vec![],
                created_at: at(0),
            }),
            Op::PruneAudit { before },
        ])
        .await
        .unwrap();
}

/// The writer stores a node in the commit that completes it, on both backends alike; audit
/// retention leaves the nodes of pruned events in place, so proofs that need only nodes
/// still answer.
async fn tree_scenario(store: &dyn Store) -> Vec<String> {
    let mut out = Vec::new();
    store
        .commit(vec![Op::InsertTenant(tenant(1, None, 0))])
        .await
        .unwrap();
    // Single-event commits across a block boundary, then large ones across the first
    // 65,536-event subtree.
    for i in 0..300 {
        append_events(store, i, 1).await;
    }
    out.extend(check_stored_nodes(store, 300).await);
    append_events(store, 300, 65_536 - 300 + 700).await;
    let size = 65_536 + 700;
    out.extend(check_stored_nodes(store, size).await);
    let spans = vec![(8, 3..6), (16, 0..1), (8, 300..u64::MAX)];
    out.push(format!(
        "spans {:?}",
        store
            .audit_tree_nodes(spans)
            .await
            .unwrap()
            .iter()
            .map(|n| n.subtree)
            .collect::<Vec<_>>()
    ));

    let before = store.audit_tree_nodes(vec![(8, 0..4)]).await.unwrap();
    let head = store.audit_head().await.unwrap();
    prune_audit(store, 1000).await;
    assert!(store.audit_leaves(0..256).await.unwrap().is_empty());
    assert_eq!(store.audit_leaves(990..1010).await.unwrap().len(), 10);
    let after = store.audit_tree_nodes(vec![(8, 0..4)]).await.unwrap();
    assert_eq!(after, before, "pruning keeps the nodes");
    assert_eq!(store.audit_head().await.unwrap().size, head.size);
    out.push(format!("after prune {} nodes", after.len()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_nodes_are_stored_alike_on_both_backends() {
    on_both_backends(tree_scenario).await;
}

/// A log written before `audit_tree` existed (here: its nodes deleted) gets them when a
/// server next opens it, on PostgreSQL and on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_without_stored_nodes_gets_them_at_open() {
    let schema = Schema::new();
    let pg = schema.open().await;
    tenant_with_events(&pg, 1300).await;
    let deleted = sqlx::query("DELETE FROM audit_tree")
        .execute(pg.pool())
        .await
        .unwrap();
    // 81 nodes of 16 events, 5 of 256.
    assert_eq!(deleted.rows_affected(), 86);
    drop(pg);
    let pg = schema.open().await;
    check_stored_nodes(&pg, 1300).await;
    // Appends go on from there.
    append_events(&pg, 1300, 300).await;
    check_stored_nodes(&pg, 1600).await;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.db");
    let lite = SqliteStore::open(&path).await.unwrap();
    // Enough events for the replay to store its nodes in several flushes.
    tenant_with_events(&lite, 70_000).await;
    drop(lite);
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(
        conn.execute("DELETE FROM audit_tree", []).unwrap(),
        4375 + 273 + 17 + 1
    );
    drop(conn);
    let lite = SqliteStore::open(&path).await.unwrap();
    check_stored_nodes(&lite, 70_000).await;
    append_events(&lite, 70_000, 300).await;
    check_stored_nodes(&lite, 70_300).await;
}

/// Pages of the audit log hand back exactly the rows `audit_rows` does, on both backends,
/// including SQLite's large pages, read as two halves at once, and after a prune that leaves
/// the first half's range empty.
async fn page_scenario(store: &dyn Store) -> Vec<String> {
    let mut out = Vec::new();
    tenant_with_events(store, 5_000).await;
    let same_as_rows = async |from: u64, limit: u32| {
        let page = store.audit_page(from, limit).await.unwrap();
        let rows = store.audit_rows(from, limit).await.unwrap();
        assert_eq!(page.len(), rows.len(), "{from}+{limit}");
        for (p, r) in page.iter().zip(&rows) {
            assert_eq!(
                (p.idx, p.event, &p.chain[..]),
                (r.idx, &r.event[..], &r.chain[..])
            );
        }
        format!(
            "{from}+{limit}: {} rows from {:?}",
            page.len(),
            page.first_idx()
        )
    };
    for (from, limit) in [
        (0, 5_000),
        (1_234, 4_000),
        (4_999, 3_000),
        (5_000, 2_000),
        (7, 1_999),
    ] {
        out.push(same_as_rows(from, limit).await);
    }
    prune_audit(store, 3_000).await;
    out.push(same_as_rows(0, 4_000).await);
    out.push(same_as_rows(2_500, 2_000).await);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_pages_read_alike_on_both_backends() {
    on_both_backends(page_scenario).await;
}

/// Stored forms an upgraded log mixes: events 0..`JSON_ROWS` as plain JSON (as logged before
/// events were packed), the rest packed, and event `BAD_ROW` packed with one byte changed.
const JSON_ROWS: i64 = 150;
const BAD_ROW: i64 = 200;

/// What the raw rows hold, by form, and what the store reads back from them: the canonical
/// bytes of every event (the bad one excepted, which comes back as stored), and tree nodes
/// rebuilt from them at open.
async fn check_mixed_forms(store: &dyn Store, before: &[ward_store::AuditRow], stored: &[Vec<u8>]) {
    let pack = ward_store::audit_codec::DICTIONARY_1;
    let forms: Vec<u8> = stored.iter().map(|e| e[0]).collect();
    assert!(forms[..JSON_ROWS as usize].iter().all(|&f| f == b'{'));
    assert!(forms[JSON_ROWS as usize..].iter().all(|&f| f == pack));
    // (The SQLite test's reopen may append a `crash_recovery` event: its tenant row has no
    // key in the key store. Only the 300 events written here are compared.)
    let after = store.audit_rows(0, 300).await.unwrap();
    assert_eq!(after.len(), before.len());
    for (i, (a, b)) in after.iter().zip(before).enumerate() {
        if i as i64 == BAD_ROW {
            assert_eq!(
                a.event, stored[i],
                "a packed form that does not unpack is passed on"
            );
        } else {
            assert_eq!(a.event, b.event, "event {i}");
        }
    }
    let page: Vec<Vec<u8>> = store
        .audit_page(0, 300)
        .await
        .unwrap()
        .iter()
        .map(|r| r.event.to_vec())
        .collect();
    assert_eq!(
        page,
        after.iter().map(|r| r.event.clone()).collect::<Vec<_>>()
    );
    let leaves = store.audit_leaves(0..300).await.unwrap();
    assert_eq!(leaves[0], ward_audit::leaf_hash(&before[0].event));
    assert_ne!(
        leaves[BAD_ROW as usize],
        ward_audit::leaf_hash(&before[BAD_ROW as usize].event)
    );
}

/// Both backends store events packed, read a log whose older events are plain JSON (no
/// conversion at upgrade) and rebuild tree nodes from either form; a packed event edited so
/// that it no longer unpacks reads as its stored bytes, which no leaf matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stored_as_json_or_packed_read_alike() {
    let schema = Schema::new();
    let pg = schema.open().await;
    tenant_with_events(&pg, 300).await;
    let before = pg.audit_rows(0, 1_000).await.unwrap();
    for r in &before[..JSON_ROWS as usize] {
        sqlx::query("UPDATE audit_events SET event = $1 WHERE idx = $2")
            .bind(&r.event)
            .bind(r.idx as i64)
            .execute(pg.pool())
            .await
            .unwrap();
    }
    sqlx::query("UPDATE audit_events SET event = substr(event, 1, 10) WHERE idx = $1")
        .bind(BAD_ROW)
        .execute(pg.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_tree")
        .execute(pg.pool())
        .await
        .unwrap();
    drop(pg);
    let pg = schema.open().await;
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT event FROM audit_events ORDER BY idx")
        .fetch_all(pg.pool())
        .await
        .unwrap();
    check_mixed_forms(&pg, &before, &stored).await;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.db");
    let lite = SqliteStore::open(&path).await.unwrap();
    tenant_with_events(&lite, 300).await;
    let before_lite = lite.audit_rows(0, 1_000).await.unwrap();
    assert_eq!(
        before_lite.iter().map(|r| &r.event).collect::<Vec<_>>(),
        before.iter().map(|r| &r.event).collect::<Vec<_>>()
    );
    drop(lite);
    let conn = rusqlite::Connection::open(&path).unwrap();
    for r in &before[..JSON_ROWS as usize] {
        conn.execute(
            "UPDATE audit_events SET event = ?1 WHERE idx = ?2",
            rusqlite::params![r.event, r.idx as i64],
        )
        .unwrap();
    }
    conn.execute(
        "UPDATE audit_events SET event = substr(event, 1, 10) WHERE idx = ?1",
        [BAD_ROW],
    )
    .unwrap();
    conn.execute_batch("DELETE FROM audit_tree; DELETE FROM audit_tail;")
        .unwrap();
    let stored: Vec<Vec<u8>> = conn
        .prepare("SELECT event FROM audit_events ORDER BY idx")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    drop(conn);
    let lite = SqliteStore::open(&path).await.unwrap();
    check_mixed_forms(&lite, &before, &stored).await;
}

/// Events in the sealed-segment test: two full segments of the SQLite subject index
/// (65,536 events each) and part of a third, which stays unsealed.
const SEALED_LOG: u64 = 2 * 65_536 + 5_000;

/// Event `i` of that log: its tenant, subject (40 subjects, some under both tenants, some
/// events with none) and action.
fn sealed_log_event(i: u64) -> (Uuid, Option<Uuid>, Action) {
    let tenant = if i % 7 == 3 { id(2) } else { id(1) };
    let subject = (!i.is_multiple_of(11)).then(|| id(100 + u128::from(i * 7919 % 40)));
    let action = if i.is_multiple_of(3) {
        Action::RecordRead
    } else {
        Action::RecordCreate
    };
    (tenant, subject, action)
}

async fn write_sealed_log(store: &dyn Store) {
    let mut ops = Vec::new();
    for i in 0..SEALED_LOG {
        let (tenant, subject, action) = sealed_log_event(i);
        let e = event(
            Some(tenant),
            subject,
            "k",
            action,
            Outcome::Allowed,
            i as i64,
        );
        ops.push(audit(e));
        if ops.len() == 1000 || i + 1 == SEALED_LOG {
            store.commit(std::mem::take(&mut ops)).await.unwrap();
        }
    }
}

/// One subject-filtered walk of the tenant audit view: the query and the pages' size.
#[derive(Clone, Copy, Debug)]
struct SubjectWalk {
    tenant: u128,
    subject: u128,
    reads_only: bool,
    since: Option<i64>,
    after: Option<u64>,
    limit: u32,
}

impl SubjectWalk {
    /// Every index the walk pages through.
    async fn run(self, store: &dyn Store) -> Vec<u64> {
        let mut seen = Vec::new();
        let mut after = self.after;
        loop {
            let page = store
                .audit_query(&AuditQuery {
                    tenant: id(self.tenant),
                    since: self.since.map(at),
                    until: None,
                    actor: None,
                    subject: Some(id(self.subject)),
                    action: self.reads_only.then(|| "record_read".to_owned()),
                    outcome: None,
                    after,
                    limit: self.limit,
                })
                .await
                .unwrap();
            assert!(page.len() <= self.limit as usize);
            let Some(last) = page.last() else { break };
            after = Some(last.idx);
            seen.extend(page.iter().map(|r| r.idx));
        }
        seen
    }

    /// What the walk must find in the log from index `kept` on.
    fn expected(self, kept: u64) -> Vec<u64> {
        (kept..SEALED_LOG)
            .filter(|&i| {
                let (tenant, subject, action) = sealed_log_event(i);
                tenant == id(self.tenant)
                    && subject == Some(id(self.subject))
                    && (!self.reads_only || action == Action::RecordRead)
                    && self.since.is_none_or(|s| i as i64 >= s)
                    && self.after.is_none_or(|a| i > a)
            })
            .collect()
    }
}

const SUBJECT_WALKS: [SubjectWalk; 7] = [
    // Subject 105's first event under tenant 1 is event 35: a cursor right before it.
    SubjectWalk {
        tenant: 1,
        subject: 105,
        reads_only: false,
        since: None,
        after: Some(34),
        limit: 3,
    },
    SubjectWalk {
        tenant: 1,
        subject: 105,
        reads_only: false,
        since: None,
        after: None,
        limit: 97,
    },
    SubjectWalk {
        tenant: 1,
        subject: 105,
        reads_only: true,
        since: None,
        after: None,
        limit: 5000,
    },
    SubjectWalk {
        tenant: 2,
        subject: 117,
        reads_only: false,
        since: Some(60_000),
        after: Some(66_000),
        limit: 13,
    },
    SubjectWalk {
        tenant: 1,
        subject: 139,
        reads_only: false,
        since: None,
        after: Some(131_071),
        limit: 1,
    },
    // A subject never named, and a tenant's subject asked of the other tenant.
    SubjectWalk {
        tenant: 1,
        subject: 999,
        reads_only: false,
        since: None,
        after: None,
        limit: 100,
    },
    SubjectWalk {
        tenant: 3,
        subject: 105,
        reads_only: false,
        since: None,
        after: None,
        limit: 100,
    },
];

async fn check_subject_walks(stores: [&dyn Store; 2], kept: u64) {
    for walk in SUBJECT_WALKS {
        let expected = walk.expected(kept);
        for store in stores {
            assert_eq!(walk.run(store).await, expected, "{walk:?} from {kept}");
        }
    }
}

/// Every read of the log answers alike on both stores from index `kept` on: pages of rows
/// (events, chain values, columns), the head, leaves across bundle and row boundaries,
/// tenant views with filters, and the prune's search by time. On SQLite most of the log is
/// in bundles by now, so this is the bundled log read against the same log as rows.
async fn check_logs_alike(pg: &dyn Store, lite: &dyn Store, kept: u64) {
    let (a, b) = (
        pg.audit_head().await.unwrap(),
        lite.audit_head().await.unwrap(),
    );
    assert_eq!((a.size, a.root, a.chain), (b.size, b.root, b.chain));
    let mut from = kept;
    while from < SEALED_LOG {
        let (a, b) = (
            pg.audit_rows(from, 20_000).await.unwrap(),
            lite.audit_rows(from, 20_000).await.unwrap(),
        );
        assert_eq!(a.len(), b.len(), "rows from {from}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                (x.idx, &x.event, x.chain, &x.columns),
                (y.idx, &y.event, y.chain, &y.columns)
            );
        }
        from += 20_000;
    }
    let ranges = [kept..kept + 100, 65_530..65_600, 131_000..131_200];
    for range in ranges.into_iter().filter(|r| r.start >= kept) {
        assert_eq!(
            pg.audit_leaves(range.clone()).await.unwrap(),
            lite.audit_leaves(range.clone()).await.unwrap(),
            "{range:?}"
        );
    }
    for (tenant, action, since, after, limit) in [
        (1, None, None, None, 700),
        (2, Some("record_read"), Some(60_000), Some(66_000), 300),
        (2, None, None, Some(131_000), 50),
        (3, None, None, None, 10),
    ] {
        let q = AuditQuery {
            tenant: id(tenant),
            since: since.map(at),
            until: None,
            actor: None,
            subject: None,
            action: action.map(str::to_owned),
            outcome: None,
            after,
            limit,
        };
        let idx = |rows: Vec<ward_store::AuditRow>| rows.iter().map(|r| r.idx).collect::<Vec<_>>();
        assert_eq!(
            idx(pg.audit_query(&q).await.unwrap()),
            idx(lite.audit_query(&q).await.unwrap()),
            "{q:?}"
        );
    }
    for secs in [0, kept as i64 + 3, 70_500, 131_100, SEALED_LOG as i64 + 10] {
        assert_eq!(
            pg.audit_index_at(at(secs)).await.unwrap(),
            lite.audit_index_at(at(secs)).await.unwrap(),
            "{secs}"
        );
    }
}

/// Events SQLite keeps as rows, and in bundles.
fn stored_parts(path: &std::path::Path) -> (i64, i64) {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT (SELECT COUNT(*) FROM audit_events), \
             (SELECT COALESCE(SUM(count), 0) FROM audit_bundles)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

fn sealed_segments(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("SELECT segments FROM audit_sealed", [], |r| r.get(0))
        .unwrap()
}

/// SQLite finds a subject's events through postings per sealed 65,536-event segment and the
/// chunk index for the rest; PostgreSQL through its own index. Both give the same pages,
/// across segment boundaries and filters, after a prune (which drops the postings of the
/// segments it empties), after postings are edited to name other events, and after a
/// reopen that seals a log again from nothing (as after the migration).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subjects_log_reads_alike_through_sealed_segments() {
    let schema = Schema::new();
    let pg = schema.open().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.db");
    let lite = SqliteStore::open(&path).await.unwrap();
    write_sealed_log(&pg).await;
    write_sealed_log(&lite).await;
    // The writer seals between commits and while idle, on its own.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while sealed_segments(&path) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer did not seal two complete segments"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(lite.seal_audit_subject_index().await.unwrap(), 2);
    // Sealed segments are bundled: only the third segment's events are rows.
    assert_eq!(stored_parts(&path), (5_000, 2 * 65_536));
    check_subject_walks([&pg, &lite], 0).await;
    check_logs_alike(&pg, &lite, 0).await;

    for store in [&pg as &dyn Store, &lite] {
        store
            .commit(vec![Op::PruneAudit { before: 70_000 }])
            .await
            .unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows_of = |seg: i64| -> i64 {
        conn.query_row(
            "SELECT COUNT(*) FROM audit_subject_postings WHERE seg = ?1",
            [seg],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(rows_of(0), 0, "postings of a pruned segment are dropped");
    assert_eq!(rows_of(1), 80, "40 subjects under each of two tenants");
    // The prune fell inside a bundle, which now starts where the log does.
    assert_eq!(stored_parts(&path), (5_000, 2 * 65_536 - 70_000));
    check_subject_walks([&pg, &lite], 70_000).await;
    check_logs_alike(&pg, &lite, 70_000).await;

    // Postings edited to list every event of segment 1 for one subject: the reads fetch each
    // event with the query's tenant and subject as conditions, so nothing else shows.
    // Offsets 1..=65,535: deltas of one.
    let everything = vec![1u8; usize::from(u16::MAX)];
    let edited = conn
        .execute(
            "UPDATE audit_subject_postings SET offsets = ?1 WHERE seg = 1",
            [everything],
        )
        .unwrap();
    assert_eq!(edited, 80);
    check_subject_walks([&pg, &lite], 70_000).await;

    // A log whose postings are gone (as one written before they existed) is sealed again.
    conn.execute_batch(
        "DELETE FROM audit_subject_postings; DELETE FROM audit_subject_ids; \
         UPDATE audit_sealed SET segments = 0;",
    )
    .unwrap();
    drop(conn);
    drop(lite);
    let lite = SqliteStore::open(&path).await.unwrap();
    assert_eq!(lite.seal_audit_subject_index().await.unwrap(), 2);
    assert_eq!(sealed_segments(&path), 2);
    check_subject_walks([&pg, &lite], 70_000).await;

    // Pruned into the segment still filling, with nothing sealed (an upgrade of a pruned
    // log): the complete segments are marked sealed and the filling one is left alone.
    let kept = (2 << 16) + 100;
    for store in [&pg as &dyn Store, &lite] {
        store
            .commit(vec![Op::PruneAudit { before: kept }])
            .await
            .unwrap();
    }
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DELETE FROM audit_subject_postings; DELETE FROM audit_subject_ids; \
             UPDATE audit_sealed SET segments = 0;",
        )
        .unwrap();
    drop(lite);
    let lite = SqliteStore::open(&path).await.unwrap();
    assert_eq!(lite.seal_audit_subject_index().await.unwrap(), 2);
    check_subject_walks([&pg, &lite], kept).await;
    check_logs_alike(&pg, &lite, kept).await;
}

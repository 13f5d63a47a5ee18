//! The SQLite store on its own: migrations (fresh, reopened, and a database first migrated by
//! the sqlx-based store, which gets only the migrations it lacks), savepoint isolation inside the writer's group commits, and the audit
//! tail rebuilt at reopen. Operation semantics are compared with PostgreSQL in
//! `postgres_store.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, Actor, AuditEvent, Outcome};
use ward_store::{
    Op, RecordFilter, RecordRow, SqliteStore, Store, StoreError, SubjectRow, TenantRow,
};

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600 + secs).unwrap()
}

fn tenant(n: u128) -> TenantRow {
    TenantRow {
        id: id(n),
        name: format!("tenant {n}"),
        status: ward_store::TenantStatus::Active,
        region: None,
        wrapped_key: Some(vec![1; 40]),
        root_key_version: 1,
        key_version: 1,
        settings: "{}".into(),
        created_at: at(0),
        status_changed_at: at(0),
        destroy_after: None,
    }
}

fn subject(tenant: Uuid, n: u128, external_ref: Option<&[u8]>) -> SubjectRow {
    SubjectRow {
        tenant,
        id: id(n),
        external_ref: external_ref.map(<[u8]>::to_vec),
        wrapped_key: Some(vec![n as u8; 40]),
        key_version: 1,
        record_key_version: 1,
        restrictions: "[]".into(),
        hold_until: None,
        created_at: at(1),
    }
}

fn record(tenant: Uuid, subject: Uuid, n: u128) -> RecordRow {
    RecordRow {
        tenant,
        subject,
        id: id(n),
        collection: "notes".into(),
        ciphertext: vec![n as u8; 24],
        key_version: 1,
        revision: 1,
        created_at: at(2),
        updated_at: at(2),
        expires_at: None,
    }
}

fn audit(tenant: Uuid, n: i64) -> Op {
    Op::Audit(Box::new(AuditEvent {
        at: at(n),
        request_id: format!("req-{n}"),
        actor: Actor {
            id: "key:test".into(),
            role: "admin".into(),
        },
        tenant: Some(tenant),
        subject: None,
        record: None,
        collection: None,
        purpose: None,
        action: Action::RecordUpdate,
        outcome: Outcome::Allowed,
        reason: None,
        client: None,
        detail: None,
    }))
}

fn migrations(path: &std::path::Path) -> Vec<i64> {
    let conn = SqliteStore::open_connection(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT version FROM _ward_migrations ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[tokio::test]
async fn a_fresh_database_is_migrated_once_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let t = id(1);
    store
        .commit(vec![Op::InsertTenant(tenant(1)), audit(t, 1)])
        .await
        .unwrap();
    let head = store.audit_head().await.unwrap();
    drop(store);
    assert_eq!(
        migrations(&path),
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
    );

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        migrations(&path),
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17],
        "a reopen applies nothing"
    );
    let again = store.audit_head().await.unwrap();
    assert_eq!((again.size, again.root), (head.size, head.root));
    assert!(store.tenant(t).await.unwrap().is_some());
}

/// The writer stores the audit tail with each commit, and a reopen takes it instead of
/// re-hashing the log; a stored tail that does not match the newest event (stale, or
/// altered) is ignored and the tail rebuilt, so appends continue the same chain.
#[tokio::test]
async fn the_stored_audit_tail_is_used_only_while_it_matches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let t = id(1);
    store
        .commit(vec![Op::InsertTenant(tenant(1))])
        .await
        .unwrap();
    for n in 0..3 {
        store.commit(vec![audit(t, n)]).await.unwrap();
    }
    let head = store.audit_head().await.unwrap();
    drop(store);
    let stored = |path: &std::path::Path| -> (i64, Vec<u8>) {
        SqliteStore::open_connection(path)
            .unwrap()
            .query_row("SELECT size, chain FROM audit_tail", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
    };
    assert_eq!(stored(&path), (3, head.chain.to_vec()));
    // The reopen takes the stored frontier as it is (no re-hash): a frontier altered in a
    // way the cheap check cannot see shows in the root. (`ward audit verify` re-hashes the
    // whole log and would refuse it.)
    let good: Vec<u8> = SqliteStore::open_connection(&path)
        .unwrap()
        .query_row("SELECT frontier FROM audit_tail", [], |r| r.get(0))
        .unwrap();
    let set_frontier = |frontier: &[u8]| {
        SqliteStore::open_connection(&path)
            .unwrap()
            .execute("UPDATE audit_tail SET frontier = ?1", [frontier])
            .unwrap();
    };
    let mut altered = good.clone();
    *altered.last_mut().unwrap() ^= 1;
    set_frontier(&altered);
    let store = SqliteStore::open(&path).await.unwrap();
    let used = store.audit_head().await.unwrap();
    assert_eq!((used.size, used.chain), (head.size, head.chain));
    assert_ne!(used.root, head.root, "the stored tail was used");
    drop(store);

    let alter = |sql: &str| {
        let conn = SqliteStore::open_connection(&path).unwrap();
        conn.execute(
            "INSERT OR REPLACE INTO audit_tail (id, size, chain, frontier) VALUES (1, 3, ?1, ?2)",
            rusqlite::params![head.chain.as_slice(), good],
        )
        .unwrap();
        assert_eq!(conn.execute(sql, []).unwrap(), 1, "{sql}");
    };
    for damage in [
        "UPDATE audit_tail SET chain = zeroblob(32)",
        "UPDATE audit_tail SET size = 2",
        "UPDATE audit_tail SET frontier = x'00'",
        "DELETE FROM audit_tail",
    ] {
        alter(damage);
        let store = SqliteStore::open(&path).await.unwrap();
        let again = store.audit_head().await.unwrap();
        assert_eq!(
            (again.size, again.root, again.chain),
            (head.size, head.root, head.chain),
            "{damage}"
        );
        drop(store);
    }
    // An append after a rebuilt tail continues the chain and stores the tail again.
    let store = SqliteStore::open(&path).await.unwrap();
    store.commit(vec![audit(t, 9)]).await.unwrap();
    let next = store.audit_head().await.unwrap();
    assert_eq!(next.size, 4);
    drop(store);
    assert_eq!(stored(&path), (4, next.chain.to_vec()));
}

#[tokio::test]
async fn a_database_migrated_by_sqlx_keeps_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.db");
    {
        // What the sqlx-based store left: the schema and sqlx's own bookkeeping table.
        let conn = SqliteStore::open_connection(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
             checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)",
        )
        .unwrap();
        for (version, sql) in [
            (1, include_str!("../migrations/sqlite/0001_init.sql")),
            (
                2,
                include_str!("../migrations/sqlite/0002_rights_retention.sql"),
            ),
        ] {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                 execution_time) VALUES (?1, 'm', 1, x'00', 0)",
                [version],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO tenants (id, name, status, root_key_version, key_version, settings, \
             created_at, status_changed_at) VALUES (?1, 'old', 'active', 1, 1, '{}', 0, 0)",
            [id(7)],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO keys.tenant_keys (tenant, wrapped_key, root_key_version, key_version) \
             VALUES (?1, x'00', 1, 1)",
            [id(7)],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        migrations(&path),
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17],
        "only the newer migration is applied"
    );
    assert_eq!(store.tenant(id(7)).await.unwrap().unwrap().name, "old");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_fails_alone_in_a_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("ward.db"))
            .await
            .unwrap(),
    );
    let t = id(1);
    store
        .commit(vec![
            Op::InsertTenant(tenant(1)),
            Op::InsertSubject(subject(t, 2, None)),
        ])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..300u128 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let ops = match i % 3 {
                // Many subjects claim one external reference: exactly one wins.
                0 => vec![
                    audit(t, i as i64),
                    Op::InsertSubject(subject(t, 1000 + i, Some(b"shared"))),
                ],
                // Independent writes: all succeed.
                1 => vec![
                    audit(t, i as i64),
                    Op::InsertRecord {
                        record: record(t, id(2), 2000 + i),
                        index: vec![],
                    },
                ],
                // An event, then a write that cannot succeed: nothing is kept.
                _ => vec![
                    audit(t, i as i64),
                    Op::InsertRecord {
                        record: record(t, id(9999), 3000 + i),
                        index: vec![],
                    },
                ],
            };
            (i, store.commit(ops).await)
        }));
    }
    let (mut won, mut indices) = (0, Vec::new());
    for task in tasks {
        let (i, result) = task.await.unwrap();
        match (i % 3, result) {
            (0, Ok(c)) => {
                won += 1;
                indices.extend(c.audit_indices);
            }
            (0, Err(StoreError::Conflict(_))) => {}
            (1, Ok(c)) => indices.extend(c.audit_indices),
            (2, Err(StoreError::NotFound(_))) => {}
            (kind, other) => panic!("request kind {kind}: unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1, "one subject gets the shared reference");
    indices.sort_unstable();
    assert_eq!(
        indices,
        (0..101).collect::<Vec<u64>>(),
        "the kept events are gap-free"
    );
    let head = store.audit_head().await.unwrap();
    assert_eq!(head.size, 101);
    let rows = store.audit_rows(0, 1000).await.unwrap();
    assert_eq!(rows.len(), 101);
    let view = store
        .subject_view(t, id(2), RecordFilter::All(None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.records.len(), 100);
}

/// The subject filter of the tenant audit view must seek the chunked subject index
/// (migration 0005) per chunk; a plan that merely scanned that index, or the tenant's, would
/// read the tenant's whole log.
#[tokio::test]
async fn a_subjects_access_log_is_read_through_the_chunked_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let conn = SqliteStore::open_connection(&path).unwrap();
    let plan: Vec<String> = conn
        .prepare(
            "EXPLAIN QUERY PLAN WITH RECURSIVE chunks(n) AS (SELECT ?1 UNION ALL \
             SELECT n + 1 FROM chunks WHERE n < ?2) SELECT * FROM audit_events \
             INDEXED BY audit_events_subject_chunk WHERE tenant = ?3 \
             AND (idx >> 10) IN chunks AND subject = ?4 AND idx > ?5 ORDER BY idx LIMIT 100",
        )
        .unwrap()
        .query_map(
            rusqlite::params![0, 63, vec![1u8; 16], vec![2u8; 16], 3000],
            |r| r.get::<_, String>(3),
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let plan = plan.join("; ");
    assert!(
        plan.contains("INDEX audit_events_subject_chunk (tenant=? AND <expr>=? AND subject=?"),
        "{plan}"
    );
}

/// What a SIGKILL between the data file's commit and the key store's leaves (the two files
/// are atomic one by one, not together), made by hand, is repaired at the next open: a
/// creation whose key was lost is rolled back with a `crash_recovery` event in the tenant's
/// log, an erasure or destruction whose key deletion was lost is finished, and a second open
/// finds nothing more to do.
#[tokio::test]
async fn a_write_split_between_the_two_files_by_a_crash_is_repaired_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (t1, t2) = (id(1), id(2));
    store
        .commit(vec![
            Op::InsertTenant(tenant(1)),
            Op::InsertTenant(tenant(2)),
            Op::InsertSubject(subject(t1, 10, None)),
            Op::InsertRecord {
                record: record(t1, id(10), 100),
                index: vec![],
            },
            Op::InsertSubject(subject(t1, 11, None)),
            Op::InsertSubject(subject(t1, 12, None)),
            Op::InsertRecord {
                record: record(t1, id(12), 120),
                index: vec![],
            },
            audit(t1, 1),
        ])
        .await
        .unwrap();
    store
        .commit(vec![
            Op::EraseSubject {
                tenant: t1,
                subject: id(11),
            },
            Op::InsertLedger(ward_store::LedgerRow {
                id: id(900),
                tenant: t1,
                subject: id(11),
                requested_by: "key:test".into(),
                erased_at: at(5),
                detail: "{}".into(),
            }),
        ])
        .await
        .unwrap();
    let size_before = store.audit_head().await.unwrap().size;
    drop(store);

    // The crash: subject 10's and tenant 2's keys never landed; subject 11's key deletion
    // never landed.
    let conn = SqliteStore::open_connection(&path).unwrap();
    conn.execute("DELETE FROM keys.subject_keys WHERE subject = ?1", [id(10)])
        .unwrap();
    conn.execute("DELETE FROM keys.tenant_keys WHERE tenant = ?1", [t2])
        .unwrap();
    conn.execute(
        "INSERT INTO keys.subject_keys (tenant, subject, wrapped_key, key_version, version) \
         VALUES (?1, ?2, ?3, 1, 1)",
        rusqlite::params![t1, id(11), vec![11u8; 40]],
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path).await.unwrap();
    let conn = SqliteStore::open_connection(&path).unwrap();
    let count = |sql: &str, id: Uuid| -> i64 { conn.query_row(sql, [id], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT COUNT(*) FROM subjects WHERE id = ?1", id(10)),
        0
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM records WHERE subject = ?1", id(10)),
        0
    );
    assert_eq!(count("SELECT COUNT(*) FROM tenants WHERE id = ?1", t2), 0);
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM keys.subject_keys WHERE subject = ?1",
            id(11)
        ),
        0,
        "the erased subject's key is gone"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM records WHERE subject = ?1", id(12)),
        1
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM keys.subject_keys WHERE subject = ?1",
            id(12)
        ),
        1,
        "an intact subject keeps its key"
    );
    let head = store.audit_head().await.unwrap();
    assert_eq!(
        head.size,
        size_before + 2,
        "one event per rolled-back creation"
    );
    let events = store
        .audit_query(&ward_store::AuditQuery {
            tenant: t1,
            since: None,
            until: None,
            actor: None,
            subject: Some(id(10)),
            action: Some("crash_recovery".into()),
            outcome: None,
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        events.len(),
        1,
        "the tenant's log says subject 10 was rolled back"
    );
    let event: serde_json::Value = serde_json::from_slice(&events[0].event).unwrap();
    assert_eq!(event["detail"]["rolled_back"], "subject_create");
    store.commit(vec![audit(t1, 9)]).await.unwrap();
    drop(store);

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.audit_head().await.unwrap().size,
        size_before + 3,
        "a second open repairs nothing"
    );
}

/// `ward user add` or `ward backup run` beside a running `ward serve` is a second writer on
/// the same file: each writer must append after the other's events, never on a stale tail.
#[tokio::test]
async fn two_writers_on_one_file_append_to_one_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.db");
    let server = SqliteStore::open(&path).await.unwrap();
    let t = id(1);
    server
        .commit(vec![Op::InsertTenant(tenant(1)), audit(t, 1)])
        .await
        .unwrap();
    let admin = SqliteStore::open(&path).await.unwrap();
    for n in 2..8 {
        let (writer, other) = if n % 2 == 0 {
            (&admin, &server)
        } else {
            (&server, &admin)
        };
        writer.commit(vec![audit(t, n)]).await.unwrap();
        assert_eq!(
            other.audit_head().await.unwrap().size,
            n as u64,
            "the other writer sees event {n}"
        );
    }
    let (a, b) = (
        server.audit_head().await.unwrap(),
        admin.audit_head().await.unwrap(),
    );
    drop((server, admin));
    let reopened = SqliteStore::open(&path)
        .await
        .unwrap()
        .audit_head()
        .await
        .unwrap();
    assert_eq!(a.size, 7);
    assert_eq!((a.root, a.chain), (reopened.root, reopened.chain));
    assert_eq!((b.root, b.chain), (reopened.root, reopened.chain));
}

/// A running server's write is, for a moment, in the data file and not yet in the key store,
/// exactly like a crash's leftovers: a store opened beside it (an admin command) must not
/// "repair" it. Only an open that finds no other process holding the database repairs.
#[tokio::test]
async fn repair_at_open_waits_until_no_other_store_has_the_database_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.db");
    let server = SqliteStore::open(&path).await.unwrap();
    let t = id(1);
    server
        .commit(vec![
            Op::InsertTenant(tenant(1)),
            Op::InsertSubject(subject(t, 10, None)),
            audit(t, 1),
        ])
        .await
        .unwrap();
    // The server's next write, caught between its two files.
    let conn = SqliteStore::open_connection(&path).unwrap();
    conn.execute("DELETE FROM keys.subject_keys WHERE subject = ?1", [id(10)])
        .unwrap();
    let subject_rows = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row(
            "SELECT COUNT(*) FROM subjects WHERE id = ?1",
            [id(10)],
            |r| r.get(0),
        )
        .unwrap()
    };

    let admin = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        subject_rows(&conn),
        1,
        "opened beside the server, nothing is rolled back"
    );
    drop((admin, server));

    let _alone = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        subject_rows(&conn),
        0,
        "opened alone after the crash, the half-made subject is rolled back"
    );
    let lock = std::fs::metadata(dir.path().join("ward.db.lock")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(lock.permissions().mode() & 0o777, 0o600);
}

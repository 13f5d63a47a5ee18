//! Incidents on both backends: opening with tenants, subjects and alerts, the timeline, the
//! notified mark, closing, and the conditional 48-hour / 72-hour flags.
//!
//! The PostgreSQL half runs at `WARD_TEST_DATABASE_URL` (else 127.0.0.1:5432, else a
//! throwaway cluster), in a schema of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_store::{
    IncidentNoteRow, IncidentOp, IncidentRow, IncidentScope, Op, PostgresStore, SqliteStore, Store,
    StoreError,
};

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600 + secs).unwrap()
}

fn incident(n: u128, tenant: Option<Uuid>, opened: i64) -> IncidentRow {
    IncidentRow {
        id: id(n),
        tenant,
        opened_by: "operator:1".into(),
        title: vec![1, 2, 3],
        status: "open".into(),
        opened_at: at(opened),
        closed_at: None,
        due_alerted: false,
        overdue_alerted: false,
    }
}

fn note(n: u128, seq: i64, kind: &str) -> Op {
    Op::Incident(IncidentOp::Note(IncidentNoteRow {
        incident: id(n),
        seq,
        at: at(100 + seq),
        author: "key:1".into(),
        kind: kind.into(),
        text: vec![9; 20],
    }))
}

fn ids(rows: &[IncidentRow]) -> Vec<Uuid> {
    rows.iter().map(|r| r.id).collect()
}

async fn round_trip(store: &dyn Store) {
    let (t1, t2) = (id(1), id(2));
    store
        .commit(vec![Op::Incident(IncidentOp::Open {
            incident: incident(10, None, 0),
            tenants: vec![t1, t2],
            subjects: vec![(t1, id(101)), (t1, id(102)), (t2, id(201))],
            alerts: vec![id(900)],
        })])
        .await
        .unwrap();
    store
        .commit(vec![Op::Incident(IncidentOp::Open {
            incident: incident(11, Some(t2), 50),
            tenants: vec![t2],
            subjects: vec![],
            alerts: vec![],
        })])
        .await
        .unwrap();
    let dup = Op::Incident(IncidentOp::Open {
        incident: incident(11, Some(t2), 50),
        tenants: vec![],
        subjects: vec![],
        alerts: vec![],
    });
    assert!(matches!(
        store.commit(vec![dup]).await.unwrap_err(),
        StoreError::Conflict(_)
    ));

    let view = store.incident(id(10)).await.unwrap().unwrap();
    assert_eq!(view.incident, incident(10, None, 0));
    assert_eq!(
        view.tenants.iter().map(|t| t.tenant).collect::<Vec<_>>(),
        vec![t1, t2]
    );
    assert_eq!(view.subjects.len(), 3);
    assert_eq!(view.alerts, vec![id(900)]);
    assert!(store.incident(id(99)).await.unwrap().is_none());

    // Scopes: the operator's, a tenant's (own and affected), newest first.
    assert_eq!(
        ids(&store.incidents(IncidentScope::Operator, 10).await.unwrap()),
        vec![id(10)]
    );
    assert_eq!(
        ids(&store
            .incidents(IncidentScope::Tenant(t2), 10)
            .await
            .unwrap()),
        vec![id(11), id(10)]
    );
    assert_eq!(
        ids(&store
            .incidents(IncidentScope::Tenant(t1), 10)
            .await
            .unwrap()),
        vec![id(10)]
    );
    assert!(
        store
            .incidents(IncidentScope::Tenant(id(3)), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // The timeline: a taken place is a conflict.
    store.commit(vec![note(10, 1, "note")]).await.unwrap();
    store.commit(vec![note(10, 2, "measure")]).await.unwrap();
    assert!(matches!(
        store.commit(vec![note(10, 2, "note")]).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    let view = store.incident(id(10)).await.unwrap().unwrap();
    assert_eq!(
        view.notes
            .iter()
            .map(|n| (n.seq, n.kind.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "note"), (2, "measure")]
    );
    assert_eq!(view.notes[0].text, vec![9; 20]);

    // Notified once per tenant; an unaffected tenant is not found.
    let notified = |t: Uuid| {
        Op::Incident(IncidentOp::Notified {
            incident: id(10),
            tenant: t,
            at: at(500),
            by: "key:2".into(),
        })
    };
    store.commit(vec![notified(t1)]).await.unwrap();
    assert!(matches!(
        store.commit(vec![notified(t1)]).await.unwrap_err(),
        StoreError::NotFound("incident tenant")
    ));
    assert!(matches!(
        store.commit(vec![notified(id(3))]).await.unwrap_err(),
        StoreError::NotFound("incident tenant")
    ));
    let view = store.incident(id(10)).await.unwrap().unwrap();
    assert_eq!(view.tenants[0].notified_at, Some(at(500)));
    assert_eq!(view.tenants[0].notified_by.as_deref(), Some("key:2"));
    assert_eq!(view.tenants[1].notified_at, None);

    // The flags are set once: a second setter (another server) is refused.
    let due = |n: u128| Op::Incident(IncidentOp::FlagDue { id: id(n) });
    let overdue = |n: u128| Op::Incident(IncidentOp::FlagOverdue { id: id(n) });
    store.commit(vec![due(10)]).await.unwrap();
    assert!(matches!(
        store.commit(vec![due(10)]).await.unwrap_err(),
        StoreError::NotFound("incident")
    ));
    let pending = store
        .incidents(IncidentScope::ClockPending, 10)
        .await
        .unwrap();
    assert_eq!(ids(&pending), vec![id(10), id(11)], "oldest first");
    assert!(pending[0].due_alerted && !pending[0].overdue_alerted);
    store.commit(vec![overdue(10)]).await.unwrap();
    assert!(store.commit(vec![overdue(10)]).await.is_err());
    assert_eq!(
        ids(&store
            .incidents(IncidentScope::ClockPending, 10)
            .await
            .unwrap()),
        vec![id(11)]
    );

    // Every affected tenant notified: nothing left for the clock.
    store
        .commit(vec![Op::Incident(IncidentOp::Notified {
            incident: id(11),
            tenant: t2,
            at: at(600),
            by: "key:3".into(),
        })])
        .await
        .unwrap();
    assert!(
        store
            .incidents(IncidentScope::ClockPending, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Closing: once; a closed incident takes no note and no flag.
    let close = |n: u128| {
        Op::Incident(IncidentOp::Close {
            id: id(n),
            at: at(900),
        })
    };
    store.commit(vec![close(11)]).await.unwrap();
    assert!(matches!(
        store.commit(vec![close(11)]).await.unwrap_err(),
        StoreError::NotFound("incident")
    ));
    assert!(matches!(
        store.commit(vec![note(11, 1, "note")]).await.unwrap_err(),
        StoreError::NotFound("incident")
    ));
    assert!(store.commit(vec![due(11)]).await.is_err());
    let closed = store.incident(id(11)).await.unwrap().unwrap();
    assert_eq!(
        (closed.incident.status.as_str(), closed.incident.closed_at),
        ("closed", Some(at(900)))
    );
    assert!(closed.notes.is_empty());
    assert!(
        store
            .incidents(IncidentScope::ClockPending, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn incidents_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ward.db"))
        .await
        .unwrap();
    round_trip(&store).await;
}

#[tokio::test]
async fn incidents_on_postgres() {
    let url = ward_pgtest::database_url();
    let schema = format!("t_{}", Uuid::new_v4().simple());
    let store = PostgresStore::open_in_schema(&url, &schema).await.unwrap();
    round_trip(&store).await;
    drop(store);
    let mut conn = PgConnection::connect(&url).await.unwrap();
    conn.execute(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .await
        .unwrap();
}

//! Webhooks and their outbox on both backends: enqueue, lease claiming, attempts, deletion.
//!
//! The PostgreSQL half runs at `WARD_TEST_DATABASE_URL` (else 127.0.0.1:5432, else a
//! throwaway cluster), in a schema of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_store::{
    DeliveryOutcome, DeliveryQuery, DeliveryRow, Op, PostgresStore, SqliteStore, Store, StoreError,
    WebhookOp, WebhookRow,
};

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600 + secs).unwrap()
}

fn webhook(n: u128, tenant: Option<Uuid>) -> WebhookRow {
    WebhookRow {
        id: id(n),
        tenant,
        url: format!("https://hooks.example/{n}"),
        secret: vec![7; 48],
        created_at: at(i64::try_from(n).unwrap()),
        created_by: "user:1".into(),
        deleted_at: None,
    }
}

fn delivery(n: u128, webhook: Uuid, tenant: Option<Uuid>, created: i64) -> DeliveryRow {
    DeliveryRow {
        id: id(n),
        webhook,
        tenant,
        event: "alert.opened".into(),
        alert: Some(id(900)),
        payload: "{\"alert\":{}}".into(),
        status: "pending".into(),
        attempts: 0,
        created_at: at(created),
        next_attempt_at: at(created),
        last_attempt_at: None,
        last_result: None,
        delivered_at: None,
        lease_owner: None,
        lease_until: None,
    }
}

fn claim(n: u128, owner: &str, now: i64) -> Op {
    Op::Webhook(WebhookOp::Claim {
        id: id(n),
        owner: owner.into(),
        now: at(now),
        until: at(now + 60),
    })
}

fn record(n: u128, owner: &str, now: i64, result: &str, outcome: DeliveryOutcome) -> Op {
    Op::Webhook(WebhookOp::Record {
        id: id(n),
        owner: owner.into(),
        at: at(now),
        result: result.into(),
        outcome,
    })
}

async fn outbox_round_trip(store: &dyn Store) {
    let tenant = Some(id(1));
    store
        .commit(vec![
            Op::Webhook(WebhookOp::Insert(webhook(10, tenant))),
            Op::Webhook(WebhookOp::Insert(webhook(11, None))),
            Op::Webhook(WebhookOp::Enqueue(delivery(100, id(10), tenant, 5))),
            Op::Webhook(WebhookOp::Enqueue(delivery(101, id(11), None, 6))),
        ])
        .await
        .unwrap();

    let theirs = store.webhooks(tenant).await.unwrap();
    assert_eq!(theirs, vec![webhook(10, tenant)]);
    assert_eq!(store.webhooks(None).await.unwrap(), vec![webhook(11, None)]);
    assert!(store.webhooks(Some(id(2))).await.unwrap().is_empty());
    assert_eq!(store.webhook_outbox_pending().await.unwrap(), 2);

    // Not due before its time; due after, oldest first.
    assert!(
        store
            .due_webhook_deliveries(at(4), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store.due_webhook_deliveries(at(10), 10).await.unwrap();
    assert_eq!(
        due.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![id(100), id(101)]
    );

    // One server takes the lease; a second cannot until it expires.
    store.commit(vec![claim(100, "a", 10)]).await.unwrap();
    let lost = store.commit(vec![claim(100, "b", 20)]).await.unwrap_err();
    assert!(
        matches!(lost, StoreError::NotFound("webhook delivery")),
        "{lost:?}"
    );
    let due = store.due_webhook_deliveries(at(20), 10).await.unwrap();
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), vec![id(101)]);

    // Only the holder records; a failed attempt schedules a retry and frees the lease.
    let stranger = store
        .commit(vec![record(100, "b", 21, "500", DeliveryOutcome::Failed)])
        .await
        .unwrap_err();
    assert!(matches!(stranger, StoreError::NotFound(_)), "{stranger:?}");
    store
        .commit(vec![record(
            100,
            "a",
            21,
            "500",
            DeliveryOutcome::Retry(at(31)),
        )])
        .await
        .unwrap();
    let d = store.webhook_delivery(id(100)).await.unwrap().unwrap();
    assert_eq!(
        (d.status.as_str(), d.attempts, d.last_result.as_deref()),
        ("pending", 1, Some("500"))
    );
    assert_eq!(
        (d.next_attempt_at, d.last_attempt_at),
        (at(31), Some(at(21)))
    );
    assert_eq!((d.lease_owner, d.lease_until), (None, None));

    // An expired lease is taken over: a server that died does not strand the row.
    store.commit(vec![claim(100, "a", 31)]).await.unwrap();
    store.commit(vec![claim(100, "b", 31 + 61)]).await.unwrap();
    let late = store
        .commit(vec![record(
            100,
            "a",
            93,
            "200",
            DeliveryOutcome::Delivered,
        )])
        .await
        .unwrap_err();
    assert!(matches!(late, StoreError::NotFound(_)), "{late:?}");
    store
        .commit(vec![record(
            100,
            "b",
            93,
            "200",
            DeliveryOutcome::Delivered,
        )])
        .await
        .unwrap();
    let d = store.webhook_delivery(id(100)).await.unwrap().unwrap();
    assert_eq!((d.status.as_str(), d.attempts), ("delivered", 2));
    assert_eq!(d.delivered_at, Some(at(93)));
    assert_eq!(store.webhook_outbox_pending().await.unwrap(), 1);
    let again = store.commit(vec![claim(100, "c", 200)]).await.unwrap_err();
    assert!(
        matches!(again, StoreError::NotFound(_)),
        "a delivered row is never claimed"
    );

    // The log: newest first, paginated.
    store
        .commit(vec![
            Op::Webhook(WebhookOp::Enqueue(delivery(102, id(10), tenant, 7))),
            Op::Webhook(WebhookOp::Enqueue(delivery(103, id(10), tenant, 8))),
        ])
        .await
        .unwrap();
    let page = store
        .webhook_deliveries(&DeliveryQuery {
            webhook: id(10),
            before: None,
            limit: 2,
        })
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![id(103), id(102)]
    );
    let next = store
        .webhook_deliveries(&DeliveryQuery {
            webhook: id(10),
            before: Some((page[1].created_at, page[1].id)),
            limit: 2,
        })
        .await
        .unwrap();
    assert_eq!(next.iter().map(|d| d.id).collect::<Vec<_>>(), vec![id(100)]);

    // Another tenant cannot delete it; its owner can, and its pending rows leave the outbox.
    let foreign = Op::Webhook(WebhookOp::Delete {
        id: id(10),
        tenant: Some(id(2)),
        at: at(300),
    });
    let err = store.commit(vec![foreign]).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("webhook")), "{err:?}");
    let as_operator = Op::Webhook(WebhookOp::Delete {
        id: id(10),
        tenant: None,
        at: at(300),
    });
    assert!(store.commit(vec![as_operator]).await.is_err());
    store
        .commit(vec![Op::Webhook(WebhookOp::Delete {
            id: id(10),
            tenant,
            at: at(300),
        })])
        .await
        .unwrap();
    assert!(store.webhooks(tenant).await.unwrap().is_empty());
    let gone = store.webhook(id(10)).await.unwrap().unwrap();
    assert_eq!(gone.deleted_at, Some(at(300)));
    let dropped = store.webhook_delivery(id(102)).await.unwrap().unwrap();
    assert_eq!(
        (dropped.status.as_str(), dropped.last_result.as_deref()),
        ("failed", Some("webhook_deleted"))
    );
    assert_eq!(store.webhook_outbox_pending().await.unwrap(), 1);
    let due = store.due_webhook_deliveries(at(1_000), 10).await.unwrap();
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), vec![id(101)]);
}

#[tokio::test]
async fn the_outbox_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ward.db"))
        .await
        .unwrap();
    outbox_round_trip(&store).await;
}

#[tokio::test]
async fn the_outbox_on_postgres() {
    let url = ward_pgtest::database_url();
    let schema = format!("t_{}", Uuid::new_v4().simple());
    let store = PostgresStore::open_in_schema(&url, &schema).await.unwrap();
    outbox_round_trip(&store).await;
    drop(store);
    let mut conn = PgConnection::connect(&url).await.unwrap();
    conn.execute(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .await
        .unwrap();
}

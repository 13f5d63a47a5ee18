//! Retention as seen in the SQLite file: a dry run touches no row, anonymization moves a
//! record out of the subject's scope into `anonymized_records` (and out of the blind index),
//! deletion leaves nothing behind, and held records stay until their hold ends.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::{Row, SqlitePool};

use crate::retention::visit_fields;
use crate::sqlite_support::{blob, count, data_db, micros};
use crate::support::{at, counts, days, hold, id, run_retention, tally, write};

async fn total(db: &SqlitePool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(db)
        .await
        .unwrap()
}

async fn ciphertext(db: &SqlitePool, table: &str, record: &str) -> Option<Vec<u8>> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT ciphertext FROM {table} WHERE id = ?1"
    )))
    .bind(blob(record))
    .fetch_optional(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_dry_run_touches_no_row_and_the_run_moves_the_record_out_of_scope() {
    let srv = crate::start().await;
    let t = srv.tenant("Rows Co").await;
    let s = srv.subject(&t).await;
    let visit = write(&srv, &t, &s, "browser_visit", visit_fields()).await;
    let v = id(&visit);
    write(
        &srv,
        &t,
        &s,
        "contact",
        json!({ "name": "Stays", "email": "stays@example.org" }),
    )
    .await;
    let db = data_db(&srv).await;
    let original = ciphertext(&db, "records", &v).await.expect("record row");
    assert_eq!(
        count(&db, "blind_index", "record", &v).await,
        1,
        "the visit's ip is searchable"
    );
    let records = total(&db, "records").await;

    srv.clock.advance(days(61));
    let report = run_retention(&srv, true).await;
    assert_eq!(
        counts(&report, &t.id, "browser_visit"),
        &tally(0, 1, 0),
        "{report}"
    );
    assert_eq!(
        total(&db, "records").await,
        records,
        "a dry run deleted rows"
    );
    assert_eq!(ciphertext(&db, "records", &v).await, Some(original.clone()));
    assert_eq!(total(&db, "anonymized_records").await, 0);
    assert_eq!(count(&db, "blind_index", "record", &v).await, 1);

    let report = run_retention(&srv, false).await;
    assert_eq!(
        counts(&report, &t.id, "browser_visit"),
        &tally(0, 1, 0),
        "{report}"
    );
    assert_eq!(total(&db, "records").await, records - 1);
    assert_eq!(
        ciphertext(&db, "records", &v).await,
        None,
        "the record row is gone"
    );
    assert_eq!(
        count(&db, "blind_index", "record", &v).await,
        0,
        "the anonymized record is not searchable by its old ip"
    );
    let row = sqlx::query("SELECT tenant, collection, ciphertext, created_at, anonymized_at FROM anonymized_records WHERE id = ?1")
        .bind(blob(&v))
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(row.get::<Vec<u8>, _>("tenant"), blob(&t.id));
    assert_eq!(row.get::<String, _>("collection"), "browser_visit");
    assert_eq!(
        row.get::<i64, _>("created_at"),
        micros(at(&visit["created_at"]))
    );
    assert_eq!(row.get::<i64, _>("anonymized_at"), micros(srv.vault.now()));
    assert_ne!(
        row.get::<Vec<u8>, _>("ciphertext"),
        original,
        "anonymized data is re-sealed"
    );
    assert_eq!(total(&db, "anonymized_records").await, 1);
    db.close().await;
}

#[tokio::test]
async fn deleted_records_leave_no_anonymized_copy() {
    let srv = crate::start().await;
    let t = srv.tenant("Gone Co").await;
    let s = srv.subject(&t).await;
    let now = crate::support::rfc(srv.vault.now());
    let log = id(&write(
        &srv,
        &t,
        &s,
        "server_log",
        json!({ "ip": "192.0.2.9", "at": now }),
    )
    .await);
    srv.clock.advance(days(15));
    let report = run_retention(&srv, false).await;
    assert_eq!(
        counts(&report, &t.id, "server_log"),
        &tally(1, 0, 0),
        "{report}"
    );
    let db = data_db(&srv).await;
    assert_eq!(ciphertext(&db, "records", &log).await, None);
    assert_eq!(ciphertext(&db, "anonymized_records", &log).await, None);
    assert_eq!(count(&db, "blind_index", "record", &log).await, 0);
    db.close().await;
}

#[tokio::test]
async fn held_expired_records_stay_in_the_table_until_the_hold_ends() {
    let srv = crate::start().await;
    let t = srv.tenant("Kept Rows Co").await;
    let s = srv.subject(&t).await;
    let v = id(&write(&srv, &t, &s, "browser_visit", visit_fields()).await);
    let until = srv.vault.now() + days(90);
    let (st, _) = hold(&srv, &t, &s, Some(until)).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    srv.clock.advance(days(61));
    let report = run_retention(&srv, false).await;
    assert_eq!(
        counts(&report, &t.id, "browser_visit"),
        &tally(0, 0, 1),
        "{report}"
    );
    let db = data_db(&srv).await;
    assert!(
        ciphertext(&db, "records", &v).await.is_some(),
        "the held record was removed"
    );
    assert_eq!(ciphertext(&db, "anonymized_records", &v).await, None);

    srv.clock.advance(days(30));
    let report = run_retention(&srv, false).await;
    assert_eq!(
        counts(&report, &t.id, "browser_visit"),
        &tally(0, 1, 0),
        "{report}"
    );
    assert_eq!(ciphertext(&db, "records", &v).await, None);
    assert!(ciphertext(&db, "anonymized_records", &v).await.is_some());
    db.close().await;
}

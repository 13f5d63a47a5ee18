//! Retention as seen in the SQLite file: a dry run touches no row, anonymization moves a
//! record out of the subject's scope into `anonymized_records` (and out of the blind index),
//! deletion leaves nothing behind, and held records stay until their hold ends.

use reqwest::StatusCode;
use serde_json::json;
use ward_testkit::sql::Db;

use crate::retention::visit_fields;
use crate::sqlite_support::{blob, count, data_db, micros};
use crate::support::{at, counts, days, hold, id, run_retention, tally, write};

fn total(db: &Db, table: &str) -> i64 {
    db.scalar(&format!("SELECT COUNT(*) FROM {table}"), [])
}

fn ciphertext(db: &Db, table: &str, record: &str) -> Option<Vec<u8>> {
    db.optional(
        &format!("SELECT ciphertext FROM {table} WHERE id = ?1"),
        rusqlite::params![blob(record)],
    )
}

#[tokio::test]
async fn a_dry_run_touches_no_row_and_the_run_moves_the_record_out_of_scope() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Rows Co").await;
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
    let db = data_db(&srv);
    let original = ciphertext(&db, "records", &v).expect("record row");
    assert_eq!(
        count(&db, "blind_index", "record", &v),
        1,
        "the visit's ip is searchable"
    );
    let records = total(&db, "records");

    srv.clock.advance(days(61));
    let report = run_retention(&srv, true).await;
    assert_eq!(
        counts(&report, &t.id, "browser_visit"),
        &tally(0, 1, 0),
        "{report}"
    );
    assert_eq!(total(&db, "records"), records, "a dry run deleted rows");
    assert_eq!(ciphertext(&db, "records", &v), Some(original.clone()));
    assert_eq!(total(&db, "anonymized_records"), 0);
    assert_eq!(count(&db, "blind_index", "record", &v), 1);

    let report = run_retention(&srv, false).await;
    assert_eq!(
        counts(&report, &t.id, "browser_visit"),
        &tally(0, 1, 0),
        "{report}"
    );
    assert_eq!(total(&db, "records"), records - 1);
    assert_eq!(
        ciphertext(&db, "records", &v),
        None,
        "the record row is gone"
    );
    assert_eq!(
        count(&db, "blind_index", "record", &v),
        0,
        "the anonymized record is not searchable by its old ip"
    );
    let row = db.row("SELECT tenant, collection, ciphertext, created_at, anonymized_at FROM anonymized_records WHERE id = ?1", rusqlite::params![blob(&v)]);
    assert_eq!(row.get::<Vec<u8>>("tenant"), blob(&t.id));
    assert_eq!(row.get::<String>("collection"), "browser_visit");
    assert_eq!(
        row.get::<i64>("created_at"),
        micros(at(&visit["created_at"]))
    );
    assert_eq!(row.get::<i64>("anonymized_at"), micros(srv.vault.now()));
    assert_ne!(
        row.get::<Vec<u8>>("ciphertext"),
        original,
        "anonymized data is re-sealed"
    );
    assert_eq!(total(&db, "anonymized_records"), 1);
    drop(db);
}

#[tokio::test]
async fn deleted_records_leave_no_anonymized_copy() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Gone Co").await;
    let log = id(&crate::support::log_now(&srv, &t, &s, "192.0.2.9").await);
    srv.clock.advance(days(15));
    let report = run_retention(&srv, false).await;
    assert_eq!(
        counts(&report, &t.id, "server_log"),
        &tally(1, 0, 0),
        "{report}"
    );
    let db = data_db(&srv);
    assert_eq!(ciphertext(&db, "records", &log), None);
    assert_eq!(ciphertext(&db, "anonymized_records", &log), None);
    assert_eq!(count(&db, "blind_index", "record", &log), 0);
    drop(db);
}

#[tokio::test]
async fn held_expired_records_stay_in_the_table_until_the_hold_ends() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Kept Rows Co").await;
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
    let db = data_db(&srv);
    assert!(
        ciphertext(&db, "records", &v).is_some(),
        "the held record was removed"
    );
    assert_eq!(ciphertext(&db, "anonymized_records", &v), None);

    srv.clock.advance(days(30));
    let report = run_retention(&srv, false).await;
    assert_eq!(
        counts(&report, &t.id, "browser_visit"),
        &tally(0, 1, 0),
        "{report}"
    );
    assert_eq!(ciphertext(&db, "records", &v), None);
    assert!(ciphertext(&db, "anonymized_records", &v).is_some());
    drop(db);
}

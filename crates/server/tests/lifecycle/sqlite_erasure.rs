//! Erasure as seen in the SQLite files: the subject key is destroyed on disk (not just
//! unlinked), the erasure ledger holds no personal data, and held invoices live under their
//! own key until the hold ends, when both are destroyed.

use reqwest::StatusCode;
use serde_json::Value;

use crate::erasure::{A_VALUES, billing_hold_end, billing_hold_reason, fixture};
use crate::sqlite_support::{blob, count, data_db, files_containing, keys_db, micros, subject_key};
use crate::support::{at, days, erase, id, run_retention};

#[tokio::test]
async fn the_erasure_ledger_holds_no_personal_data() {
    let srv = crate::start().await;
    let f = fixture(&srv).await;
    let db = data_db(&srv);
    let ref_hash: Option<Vec<u8>> = db.scalar(
        "SELECT external_ref FROM subjects WHERE id = ?1",
        rusqlite::params![blob(&f.a)],
    );
    let ref_hash = ref_hash.expect("A has an external reference");
    let (st, keys) = srv
        .get(&format!("/v1/tenants/{}/keys", f.t.id), &f.t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{keys}");
    let owner_key = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "owner")
        .map(id)
        .unwrap();

    let (st, out) = erase(&srv, &f.t, &f.a).await;
    assert_eq!(st, StatusCode::OK, "{out}");
    let (st, _) = erase(&srv, &f.t, &f.a).await;
    assert_eq!(st, StatusCode::OK);

    let rows = db.rows(
        "SELECT id, tenant, subject, requested_by, erased_at, detail FROM erasure_ledger",
        [],
    );
    assert_eq!(
        rows.len(),
        1,
        "one entry per erased subject, however often erased"
    );
    let row = &rows[0];
    assert_eq!(row.get::<Vec<u8>>("tenant"), blob(&f.t.id));
    assert_eq!(row.get::<Vec<u8>>("subject"), blob(&f.a));
    assert_eq!(
        row.get::<String>("requested_by"),
        format!("key:{owner_key}")
    );
    assert_eq!(row.get::<i64>("erased_at"), micros(at(&out["erased_at"])));
    let detail: Value = serde_json::from_str(&row.get::<String>("detail")).unwrap();
    assert_eq!(
        detail, out,
        "the ledger keeps exactly what the erasure reported"
    );
    let keys: Vec<&String> = detail.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        vec![
            "already_erased",
            "erased_at",
            "kept",
            "records_erased",
            "subject"
        ]
    );

    // Byte for byte, nothing of the subject's data or reference is in the row.
    let mut bytes = Vec::new();
    for column in ["id", "tenant", "subject"] {
        bytes.extend(row.get::<Vec<u8>>(column));
    }
    for column in ["requested_by", "detail"] {
        bytes.extend(row.get::<String>(column).into_bytes());
    }
    for v in A_VALUES {
        assert!(
            !ward_testkit::contains_bytes(&bytes, v.as_bytes()),
            "{v} is in the erasure ledger"
        );
    }
    assert!(
        !ward_testkit::contains_bytes(&bytes, &ref_hash),
        "the external reference's hash is in the erasure ledger"
    );

    // The subject row keeps only its pseudonymous id.
    let s = db.row(
        "SELECT external_ref, restrictions, hold_until FROM subjects WHERE id = ?1",
        rusqlite::params![blob(&f.a)],
    );
    assert_eq!(s.get::<Option<Vec<u8>>>(0), None);
    assert_eq!(s.get::<String>(1), "[]");
    assert_eq!(s.get::<Option<i64>>(2), None);
    drop(db);
}

#[tokio::test]
async fn erasure_destroys_the_subject_key_on_disk() {
    let srv = crate::start().await;
    let f = fixture(&srv).await;
    let keys = keys_db(&srv);
    let a_key = subject_key(&keys, &f.t.id, &f.a).expect("A's key");
    let b_key = subject_key(&keys, &f.t.id, &f.b).expect("B's key");
    drop(keys);
    assert!(
        !files_containing(&srv, &a_key).is_empty(),
        "the scan must be able to find a live wrapped key"
    );

    let (st, out) = erase(&srv, &f.t, &f.a).await;
    assert_eq!(st, StatusCode::OK, "{out}");

    let keys = keys_db(&srv);
    assert_eq!(
        subject_key(&keys, &f.t.id, &f.a),
        None,
        "A's key row is gone"
    );
    assert_eq!(
        subject_key(&keys, &f.t.id, &f.b),
        Some(b_key.clone()),
        "B's key is untouched"
    );
    drop(keys);
    assert_eq!(
        files_containing(&srv, &a_key),
        Vec::<String>::new(),
        "the destroyed key's bytes are still on disk"
    );
    assert!(!files_containing(&srv, &b_key).is_empty());

    let db = data_db(&srv);
    assert_eq!(count(&db, "records", "subject", &f.a), 0);
    assert_eq!(count(&db, "blind_index", "subject", &f.a), 0);
    assert_eq!(count(&db, "records", "subject", &f.b), 1);
    assert!(count(&db, "blind_index", "subject", &f.b) > 0);
    drop(db);
}

#[tokio::test]
async fn held_invoices_and_their_key_are_destroyed_when_the_hold_ends() {
    let srv = crate::start().await;
    let f = fixture(&srv).await;
    let db = data_db(&srv);
    let mut original = Vec::new();
    for b in &f.a_billing {
        let ct: Vec<u8> = db.scalar(
            "SELECT ciphertext FROM records WHERE id = ?1",
            rusqlite::params![blob(&id(b))],
        );
        original.push(ct);
    }
    let (st, out) = erase(&srv, &f.t, &f.a).await;
    assert_eq!(st, StatusCode::OK, "{out}");

    // The invoices moved to held_records, re-sealed under a hold of their own.
    let holds = db.rows(
        "SELECT id, subject FROM holds WHERE tenant = ?1",
        rusqlite::params![blob(&f.t.id)],
    );
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].get::<Vec<u8>>("subject"), blob(&f.a));
    let hold: Vec<u8> = holds[0].get("id");
    let held = db.rows(
        "SELECT hold, id, collection, ciphertext, hold_until, reason FROM held_records ORDER BY id",
        [],
    );
    assert_eq!(held.len(), 2);
    for (row, (b, ct)) in held.iter().zip(f.a_billing.iter().zip(&original)) {
        assert_eq!(row.get::<Vec<u8>>("hold"), hold);
        assert_eq!(row.get::<Vec<u8>>("id"), blob(&id(b)));
        assert_eq!(row.get::<String>("collection"), "billing");
        assert_eq!(
            row.get::<i64>("hold_until"),
            micros(at(&b["created_at"]) + days(3650))
        );
        assert_eq!(row.get::<String>("reason"), billing_hold_reason());
        assert_ne!(
            &row.get::<Vec<u8>>("ciphertext"),
            ct,
            "held records are re-sealed, not copied"
        );
    }
    let keys = keys_db(&srv);
    let hold_key: Vec<u8> = keys.scalar(
        "SELECT wrapped_key FROM hold_keys WHERE hold = ?1",
        rusqlite::params![&hold],
    );
    drop(keys);
    assert!(!files_containing(&srv, &hold_key).is_empty());

    // The earlier invoice's hold ends first; the hold key stays while anything is held.
    let end = billing_hold_end(&f);
    srv.clock
        .advance(end - time::Duration::hours(12) - srv.vault.now());
    assert_eq!(run_retention(&srv, false).await["holds_released"], 1);
    let left: Vec<Vec<u8>> = db.column("SELECT id FROM held_records", []);
    assert_eq!(left, vec![blob(&id(&f.a_billing[1]))]);
    let keys = keys_db(&srv);
    assert_eq!(count(&keys, "hold_keys", "tenant", &f.t.id), 1);
    drop(keys);

    srv.clock.advance(days(1));
    assert_eq!(run_retention(&srv, false).await["holds_released"], 1);
    let left: i64 = db.scalar("SELECT COUNT(*) FROM held_records", []);
    assert_eq!(left, 0, "held_records is empty once every hold ended");
    drop(db);
    let keys = keys_db(&srv);
    assert_eq!(
        count(&keys, "hold_keys", "tenant", &f.t.id),
        0,
        "the hold key is shredded"
    );
    drop(keys);
    assert_eq!(
        files_containing(&srv, &hold_key),
        Vec::<String>::new(),
        "the shredded hold key's bytes are still on disk"
    );
}

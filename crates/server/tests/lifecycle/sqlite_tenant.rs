//! Tenant destruction as seen in the SQLite files: the tenant key is shredded (its bytes gone
//! from disk), every row of the tenant's data is deleted and its API keys are revoked.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::sqlite_support::{blob, count, data_db, files_containing, keys_db};
use crate::support::{days, erase, run_retention, subject_with_ref, write};

#[tokio::test]
async fn destroying_a_tenant_shreds_its_key_and_deletes_its_rows() {
    let srv = crate::start().await;
    let t = srv.tenant("Destroyed Co").await;
    let keep = srv.tenant("Kept Co").await;
    let s = subject_with_ref(&srv, &t, "crm-destroyed-1").await;
    write(
        &srv,
        &t,
        &s,
        "contact",
        json!({ "name": "To Be Destroyed", "email": "destroyed@example.org" }),
    )
    .await;
    let erased = srv.subject(&t).await;
    write(
        &srv,
        &t,
        &erased,
        "billing",
        json!({ "invoice_number": "INV-D-1", "amount": "1.00", "billing_name": "Held Invoice", "issued_on": "2026-01-15" }),
    )
    .await;
    let (st, out) = erase(&srv, &t, &erased).await;
    assert_eq!(
        (st, &out["kept"][0]["records"]),
        (StatusCode::OK, &json!(1)),
        "{out}"
    );
    let (st, r) = srv
        .post(
            &format!("/v1/tenants/{}/requests", t.id),
            &t.owner,
            json!({ "kind": "access", "subject": s, "verified_by": "support" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let ks = srv.subject(&keep).await;
    write(
        &srv,
        &keep,
        &ks,
        "contact",
        json!({ "name": "Survivor", "email": "survivor@example.org" }),
    )
    .await;

    let keys = keys_db(&srv);
    let tenant_key: Vec<u8> = keys.scalar(
        "SELECT wrapped_key FROM tenant_keys WHERE tenant = ?1",
        rusqlite::params![blob(&t.id)],
    );
    let subject_keys: Vec<Vec<u8>> = keys.column(
        "SELECT wrapped_key FROM subject_keys WHERE tenant = ?1",
        rusqlite::params![blob(&t.id)],
    );
    assert_eq!(
        subject_keys.len(),
        1,
        "the erased subject's key is already gone"
    );
    assert_eq!(count(&keys, "hold_keys", "tenant", &t.id), 1);
    drop(keys);
    assert!(
        !files_containing(&srv, &tenant_key).is_empty(),
        "the scan must be able to find a live tenant key"
    );

    let (st, _) = srv
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/cancel", t.id),
            Some(&t.owner),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    srv.clock.advance(days(29));
    let report = run_retention(&srv, false).await;
    assert_eq!(report["tenants_destroyed"], json!([t.id]), "{report}");

    let keys = keys_db(&srv);
    for table in ["tenant_keys", "subject_keys", "hold_keys"] {
        assert_eq!(
            count(&keys, table, "tenant", &t.id),
            0,
            "{table} still has rows of the destroyed tenant"
        );
    }
    assert_eq!(count(&keys, "tenant_keys", "tenant", &keep.id), 1);
    assert_eq!(count(&keys, "subject_keys", "tenant", &keep.id), 1);
    drop(keys);
    for key in std::iter::once(&tenant_key).chain(&subject_keys) {
        assert_eq!(
            files_containing(&srv, key),
            Vec::<String>::new(),
            "a shredded key's bytes are still on disk"
        );
    }

    let db = data_db(&srv);
    for table in [
        "subjects",
        "records",
        "blind_index",
        "anonymized_records",
        "held_records",
        "holds",
        "requests",
    ] {
        assert_eq!(
            count(&db, table, "tenant", &t.id),
            0,
            "{table} still has rows of the destroyed tenant"
        );
    }
    assert_eq!(count(&db, "records", "tenant", &keep.id), 1);
    let row = db.row(
        "SELECT status, settings, destroy_after FROM tenants WHERE id = ?1",
        rusqlite::params![blob(&t.id)],
    );
    assert_eq!(row.get::<String>(0), "destroyed");
    assert_eq!(row.get::<String>(1), "{}");
    assert_eq!(row.get::<Option<i64>>(2), None);
    let live: i64 = db.scalar(
        "SELECT COUNT(*) FROM api_keys WHERE tenant = ?1 AND revoked_at IS NULL",
        rusqlite::params![blob(&t.id)],
    );
    assert_eq!(live, 0, "every key of the destroyed tenant is revoked");
    let kept: i64 = db.scalar(
        "SELECT COUNT(*) FROM api_keys WHERE tenant = ?1 AND revoked_at IS NULL",
        rusqlite::params![blob(&keep.id)],
    );
    assert_eq!(kept, 1);
    drop(db);
}

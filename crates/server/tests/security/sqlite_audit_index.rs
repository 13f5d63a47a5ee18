//! The audit view selects events by the `tenant` column of `audit_events`, a copy of the
//! tenant named inside the hashed event. A view must never show an event whose own content
//! names another tenant, even when that column was edited in the database.

use reqwest::StatusCode;
use ward_testkit::sql::Db;

use crate::support::{audit_all, with_rid};

#[tokio::test]
async fn edited_tenant_column_does_not_leak_another_tenants_event() {
    let srv = crate::start().await;
    let a = srv.tenant("Index A").await;
    let b = srv.tenant("Index B").await;
    let sb = srv.subject(&b).await;
    let rb = srv
        .contact(&b, &sb, "Index Person", "index.person@example.org")
        .await;
    let r = srv
        .request(
            reqwest::Method::GET,
            &format!(
                "/v1/tenants/{}/subjects/{sb}/records/{rb}?purpose=essential.service",
                b.id
            ),
        )
        .bearer_auth(&b.owner)
        .header("x-request-id", "b-private-read")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let b_events = audit_all(&srv, &b.id, &b.owner, "").await;
    let idx = with_rid(&b_events, "b-private-read")[0]["index"]
        .as_i64()
        .unwrap();

    // Re-label B's event as A's in the index column only; the event bytes still say B.
    let pool = Db::open(&srv.db_path());
    let a_id = uuid::Uuid::parse_str(&a.id).unwrap().as_bytes().to_vec();
    let done = pool.execute(
        "UPDATE audit_events SET tenant = ?1 WHERE idx = ?2",
        rusqlite::params![a_id, idx],
    );
    assert_eq!(done, 1);
    drop(pool);

    let a_events = audit_all(&srv, &a.id, &a.owner, "").await;
    for e in &a_events {
        assert_eq!(
            e["tenant"],
            a.id.as_str(),
            "tenant A's audit view shows an event of tenant B: {e}"
        );
    }
    assert!(with_rid(&a_events, "b-private-read").is_empty());
}

//! Tenant overrides of retention, because a tenant may shorten how long its data is kept but
//! never extend what the policy allows, and concurrent overrides must all stand.

use reqwest::StatusCode;
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};

use crate::retention::{read, travel, visit_fields};
use crate::support::{
    ANALYTICS, ESSENTIAL, assert_error, at, days, id, put, read_path, run_retention, tally, write,
};

async fn set_retention(
    srv: &TestServer,
    t: &TenantFixture,
    token: &str,
    collection: &str,
    period: &str,
) -> (StatusCode, Value) {
    put(
        srv,
        &format!("/v1/tenants/{}/retention/{collection}", t.id),
        token,
        json!({ "retain_for": period }),
    )
    .await
}

#[tokio::test]
async fn a_tenant_may_shorten_retention_but_never_extend_it() {
    let srv = crate::start().await;
    let t0 = srv.vault.now();
    let t = srv.tenant("Short Co").await;
    let other = srv.tenant("Long Co").await;
    let s = srv.subject(&t).await;
    let os = srv.subject(&other).await;
    let v1 = id(&write(&srv, &t, &s, "browser_visit", visit_fields()).await);
    let contact = write(
        &srv,
        &t,
        &s,
        "contact",
        json!({ "name": "C", "email": "c@example.org" }),
    )
    .await;
    let v2 = id(&write(&srv, &other, &os, "browser_visit", visit_fields()).await);

    let (st, b) = set_retention(&srv, &t, &t.owner, "browser_visit", "30d").await;
    assert_eq!(
        (st, b),
        (
            StatusCode::OK,
            json!({ "collection": "browser_visit", "retain_for": "30d" })
        )
    );
    // The existing record's expiry moved earlier; other tenants and collections are untouched.
    let (_, rec) = read(&srv, &t, &s, &v1, ANALYTICS).await;
    assert_eq!(at(&rec["expires_at"]), t0 + days(30), "{rec}");
    let (_, rec) = srv
        .get(&read_path(&other.id, &os, &v2, ANALYTICS), &other.owner)
        .await;
    assert_eq!(at(&rec["expires_at"]), t0 + days(60), "{rec}");
    let (_, rec) = read(&srv, &t, &s, &id(&contact), ESSENTIAL).await;
    assert_eq!(rec["expires_at"], contact["expires_at"]);

    // Longer than the policy, or than the tenant's own override: refused, nothing changes.
    for period in ["90d", "60d", "45d"] {
        let resp = set_retention(&srv, &t, &t.owner, "browser_visit", period).await;
        assert_error(
            &resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "retention_extension_refused",
        );
        assert_eq!(resp.1["error"]["field"], "retain_for");
    }
    assert_error(
        &set_retention(&srv, &other, &other.owner, "browser_visit", "61d").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "retention_extension_refused",
    );
    assert_error(
        &set_retention(&srv, &t, &t.owner, "browser_visit", "2mo").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_period",
    );
    assert_error(
        &set_retention(&srv, &t, &t.owner, "dossiers", "10d").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_collection",
    );
    let member = srv.key(&t.id, &t.owner, "member", &[ANALYTICS]).await;
    assert_error(
        &set_retention(&srv, &t, &member, "browser_visit", "10d").await,
        StatusCode::FORBIDDEN,
        "role_not_permitted",
    );
    assert_error(
        &set_retention(&srv, &t, &srv.operator, "browser_visit", "10d").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (_, rec) = read(&srv, &t, &s, &v1, ANALYTICS).await;
    assert_eq!(
        at(&rec["expires_at"]),
        t0 + days(30),
        "refused overrides changed the expiry: {rec}"
    );

    // New records get the shorter period too.
    srv.clock.advance(days(2));
    let v3 = write(&srv, &t, &s, "browser_visit", visit_fields()).await;
    assert_eq!(at(&v3["expires_at"]), t0 + days(32), "{v3}");

    travel(&srv, t0 + days(31));
    assert_error(
        &read(&srv, &t, &s, &v1, ANALYTICS).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(
        read(&srv, &t, &s, &id(&v3), ANALYTICS).await.0,
        StatusCode::OK
    );
    let (st, _) = srv
        .get(&read_path(&other.id, &os, &v2, ANALYTICS), &other.owner)
        .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "another tenant keeps the policy's 60 days"
    );
    let report = run_retention(&srv, false).await;
    assert_eq!(
        report["tenants"],
        json!({ t.id.clone(): { "browser_visit": tally(0, 1, 0) } }),
        "{report}"
    );

    // Shortening again moves the remaining record by the difference.
    let (st, b) = set_retention(&srv, &t, &t.owner, "browser_visit", "20d").await;
    assert_eq!(
        (st, b),
        (
            StatusCode::OK,
            json!({ "collection": "browser_visit", "retain_for": "20d" })
        )
    );
    assert_error(
        &read(&srv, &t, &s, &id(&v3), ANALYTICS).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let report = run_retention(&srv, false).await;
    assert_eq!(
        report["tenants"],
        json!({ t.id.clone(): { "browser_visit": tally(0, 1, 0) } }),
        "{report}"
    );
}

/// Overrides of different collections sent at once all stand (the store sets each key on the
/// row as it is in the transaction), and each is then the bound a later override must keep.
#[tokio::test]
async fn concurrent_overrides_of_different_collections_all_stand() {
    let srv = crate::start().await;
    let t = srv.tenant("Racing Co").await;
    for round in 0..5u32 {
        let contact = format!("{}d", 1000 - round);
        let jobs = format!("{}d", 700 - round);
        let (a, b) = tokio::join!(
            set_retention(&srv, &t, &t.owner, "contact", &contact),
            set_retention(&srv, &t, &t.owner, "job_application", &jobs),
        );
        assert_eq!(a.0, StatusCode::OK, "{a:?}");
        assert_eq!(b.0, StatusCode::OK, "{b:?}");
        // A lost update would leave one collection at the policy's period (or the previous
        // round's), and lengthening it would then be accepted.
        for (collection, now) in [("contact", 1000 - round), ("job_application", 700 - round)] {
            let longer = format!("{}d", now + 1);
            let resp = set_retention(&srv, &t, &t.owner, collection, &longer).await;
            assert_error(
                &resp,
                StatusCode::UNPROCESSABLE_ENTITY,
                "retention_extension_refused",
            );
        }
    }
    // The same collection from two requests at once: both answer, and what stands is the
    // shorter (a tenant only ever shortens).
    let (a, b) = tokio::join!(
        set_retention(&srv, &t, &t.owner, "contact", "500d"),
        set_retention(&srv, &t, &t.owner, "contact", "400d"),
    );
    assert_eq!(b.0, StatusCode::OK, "{b:?}");
    assert!(
        a.0 == StatusCode::OK || a.1["error"]["code"] == "retention_extension_refused",
        "{a:?}"
    );
    assert_error(
        &set_retention(&srv, &t, &t.owner, "contact", "401d").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "retention_extension_refused",
    );
    assert_eq!(
        set_retention(&srv, &t, &t.owner, "contact", "400d").await.0,
        StatusCode::OK
    );
}

//! Retention's core promise, and the helpers every `retention*` module shares: a record
//! vanishes from every read the moment it expires and is then deleted or anonymized by the
//! sweep, leaving no original value on disk, because expired personal data must stop being
//! disclosed at once even before the sweep has run.

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use ward_testkit::{TenantFixture, TestServer};

use crate::support::{
    ANALYTICS, ESSENTIAL, SECURITY, assert_error, at, audit, counts, days, export_path, id,
    list_path, lookup_path, read_path, record_path, run_retention, scan, tally, write,
};

pub(crate) const VISIT_IP: &str = "198.51.100.237";
pub(crate) const VISITED_AT: &str = "2026-01-14T21:37:42Z";
pub(crate) const GEO_LAT: &str = "47.218371";
pub(crate) const GEO_LON: &str = "-1.553621";

/// A browser visit with distinctive values (each of them must disappear on anonymization).
pub(crate) fn visit_fields() -> Value {
    json!({ "ip": VISIT_IP, "language": "br-FR", "geo": { "lat": 47.218371, "lon": -1.553621 }, "country": "FR",
            "browser": "Zorkbrowser 9.3", "referrer": "https://referrer.example/secret-path-8842", "visited_at": VISITED_AT })
}

/// Moves the clock to `t`.
pub(crate) fn travel(srv: &TestServer, t: OffsetDateTime) {
    let now = srv.vault.now();
    assert!(t >= now, "time travel backwards: {t} < {now}");
    srv.clock.advance(t - now);
}

pub(crate) async fn read(
    srv: &TestServer,
    t: &TenantFixture,
    s: &str,
    r: &str,
    purpose: &str,
) -> (StatusCode, Value) {
    srv.get(&read_path(&t.id, s, r, purpose), &t.owner).await
}

pub(crate) async fn list_ids(
    srv: &TestServer,
    t: &TenantFixture,
    s: &str,
    purpose: &str,
) -> Vec<String> {
    let (st, list) = srv.get(&list_path(&t.id, s, purpose), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    list.as_array().unwrap().iter().map(id).collect()
}

#[tokio::test]
pub(crate) async fn a_record_vanishes_from_every_read_the_moment_it_expires() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Expiry Co").await;
    let visit = write(&srv, &t, &s, "browser_visit", visit_fields()).await;
    let v = id(&visit);
    let expires = at(&visit["expires_at"]);
    assert_eq!(expires, at(&visit["created_at"]) + days(60), "{visit}");

    travel(&srv, at(&visit["created_at"]) + days(59));
    let (st, rec) = read(&srv, &t, &s, &v, ANALYTICS).await;
    assert_eq!(st, StatusCode::OK, "{rec}");
    assert_eq!(list_ids(&srv, &t, &s, ANALYTICS).await, vec![v.clone()]);
    travel(&srv, expires - Duration::seconds(1));
    assert_eq!(read(&srv, &t, &s, &v, SECURITY).await.0, StatusCode::OK);

    // At expiry, before any sweep: gone from reads, lists, lookups and exports.
    travel(&srv, expires);
    let resp = read(&srv, &t, &s, &v, ANALYTICS).await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        list_ids(&srv, &t, &s, ANALYTICS).await,
        Vec::<String>::new()
    );
    assert_eq!(list_ids(&srv, &t, &s, SECURITY).await, Vec::<String>::new());
    let (st, hits) = srv
        .get(
            &lookup_path(&t.id, "browser_visit", "ip", VISIT_IP, SECURITY),
            &t.owner,
        )
        .await;
    assert_eq!((st, hits), (StatusCode::OK, json!([])));
    let (st, doc) = srv.get(&export_path(&t.id, &s), &t.owner).await;
    assert_eq!((st, &doc["records"]), (StatusCode::OK, &json!([])), "{doc}");
    let resp = srv
        .patch(
            &record_path(&t.id, &s, &v),
            &t.owner,
            json!({ "purpose": "analytics.reporting", "fields": { "browser": "x" } }),
        )
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    let denied = audit(
        &srv,
        &t,
        &format!("subject={s}&action=record_read&outcome=denied"),
    )
    .await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["reason"], "record expired");

    // Nothing was swept yet: the record is still there for the retention engine to handle.
    let report = run_retention(&srv, true).await;
    assert_eq!(
        counts(&report, &t.id, "browser_visit"),
        &tally(0, 1, 0),
        "{report}"
    );
}

#[tokio::test]
pub(crate) async fn a_dry_run_reports_and_changes_nothing_then_the_run_anonymizes() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Sweep Co").await;
    let v = id(&write(&srv, &t, &s, "browser_visit", visit_fields()).await);
    let contact = id(&write(
        &srv,
        &t,
        &s,
        "contact",
        json!({ "name": "Stays", "email": "stays@example.org" }),
    )
    .await);
    let quiet = srv.tenant("Quiet Co").await;
    let qs = srv.subject(&quiet).await;
    srv.contact(&quiet, &qs, "Q", "q@example.org").await;
    srv.clock.advance(days(61));

    let dry = run_retention(&srv, true).await;
    assert_eq!(
        dry["tenants"],
        json!({ t.id.clone(): { "browser_visit": tally(0, 1, 0) } }),
        "{dry}"
    );
    assert_eq!(dry["holds_released"], 0);
    assert_eq!(dry["tenants_destroyed"], json!([]));
    let again = run_retention(&srv, true).await;
    assert_eq!(again, dry, "a dry run changed something");
    for action in ["retention_run", "record_anonymize", "record_expire"] {
        assert_eq!(
            audit(&srv, &t, &format!("action={action}")).await,
            Vec::<Value>::new(),
            "a dry run wrote {action}"
        );
    }

    let real = run_retention(&srv, false).await;
    assert_eq!(real["tenants"], dry["tenants"], "{real}");
    let after = run_retention(&srv, false).await;
    assert_eq!(
        after["tenants"],
        json!({}),
        "the record was handled once: {after}"
    );
    assert_error(
        &read(&srv, &t, &s, &v, ANALYTICS).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(list_ids(&srv, &t, &s, ESSENTIAL).await, vec![contact]);
}

#[tokio::test]
pub(crate) async fn anonymization_leaves_no_original_value_in_the_data_directory() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Anonymous Co").await;
    write(&srv, &t, &s, "browser_visit", visit_fields()).await;
    write(
        &srv,
        &t,
        &s,
        "customer_record",
        json!({ "name": "Philomena Quist", "email": "philomena.quist@anon.example", "phone": "+33 6 98 76 54 32",
                "birth_date": "1983-07-29", "loyalty_points": 4711, "notes": { "door code": "A7719Z" },
                "city": "Plouzané-Quist", "delivery_location": { "lat": 48.383917, "lon": -4.617283 },
                "last_seen_ip": "2001:db8:5a5a:1234:5678::9", "contract_end": "2026-01-10" }),
    )
    .await;
    let originals = [
        VISIT_IP,
        "2026-01-14T21:37:42",
        GEO_LAT,
        GEO_LON,
        "Zorkbrowser",
        "secret-path-8842",
        "Philomena",
        "philomena.quist@anon.example",
        "+33698765432",
        "1983-07-29",
        "A7719Z",
        "Plouzané-Quist",
        "48.383917",
        "-4.617283",
        "5a5a:1234:5678",
        "2026-01-10",
    ];
    srv.clock.advance(days(91));
    let report = run_retention(&srv, false).await;
    assert_eq!(
        counts(&report, &t.id, "browser_visit"),
        &tally(0, 1, 0),
        "{report}"
    );
    assert_eq!(
        counts(&report, &t.id, "customer_record"),
        &tally(0, 1, 0),
        "{report}"
    );
    assert_eq!(
        scan(&srv, &originals),
        vec![],
        "original values survived anonymization"
    );
}

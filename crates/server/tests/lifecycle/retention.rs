//! Retention: records expire per collection (counted from creation or from a date field), are
//! hidden from every read the moment they expire, then deleted or anonymized by the sweep;
//! holds defer it, tenants may shorten it, every run is audited, and the audit log itself is
//! pruned while staying verifiable.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};
use ward_testkit::{TenantFixture, TestServer};

use crate::support::{
    ANALYTICS, ESSENTIAL, RECRUITMENT, SECURITY, YEAR_DAYS, assert_error, at, audit, counts, days,
    export_path, hold, id, list_path, log_now, lookup_path, put, read_path, record_path,
    run_retention, scan, tally, write,
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

async fn read(
    srv: &TestServer,
    t: &TenantFixture,
    s: &str,
    r: &str,
    purpose: &str,
) -> (StatusCode, Value) {
    srv.get(&read_path(&t.id, s, r, purpose), &t.owner).await
}

async fn list_ids(srv: &TestServer, t: &TenantFixture, s: &str, purpose: &str) -> Vec<String> {
    let (st, list) = srv.get(&list_path(&t.id, s, purpose), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    list.as_array().unwrap().iter().map(id).collect()
}

#[tokio::test]
async fn a_record_vanishes_from_every_read_the_moment_it_expires() {
    let srv = crate::start().await;
    let t = srv.tenant("Expiry Co").await;
    let s = srv.subject(&t).await;
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
async fn a_dry_run_reports_and_changes_nothing_then_the_run_anonymizes() {
    let srv = crate::start().await;
    let t = srv.tenant("Sweep Co").await;
    let s = srv.subject(&t).await;
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
    srv.record(
        &quiet,
        &qs,
        "contact",
        json!({ "name": "Q", "email": "q@example.org" }),
    )
    .await;
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
async fn anonymization_leaves_no_original_value_in_the_data_directory() {
    let srv = crate::start().await;
    let t = srv.tenant("Anonymous Co").await;
    let s = srv.subject(&t).await;
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

#[tokio::test]
async fn customer_records_expire_ninety_days_after_the_contract_ends() {
    let srv = crate::start().await;
    let t = srv.tenant("Customers Co").await;
    let s = srv.subject(&t).await;
    let created = srv.vault.now();
    let ending = write(
        &srv,
        &t,
        &s,
        "customer_record",
        json!({ "name": "Ends In February", "contract_end": "2026-02-14" }),
    )
    .await;
    let open_ended = write(
        &srv,
        &t,
        &s,
        "customer_record",
        json!({ "name": "No End Date" }),
    )
    .await;
    let ended = write(
        &srv,
        &t,
        &s,
        "customer_record",
        json!({ "name": "Ended Last Year", "contract_end": "2025-11-01" }),
    )
    .await;
    let midnight = |d: time::Date| d.midnight().assume_utc();
    assert_eq!(
        at(&ending["expires_at"]),
        midnight(date!(2026 - 02 - 14)) + days(90),
        "counted from contract_end, not creation"
    );
    assert_eq!(
        at(&open_ended["expires_at"]),
        created + days(90),
        "without the date, counted from creation"
    );
    assert_eq!(
        at(&ended["expires_at"]),
        midnight(date!(2025 - 11 - 01)) + days(90)
    );
    assert!(at(&ended["expires_at"]) < created + days(90));

    // Rectifying the end date moves the expiry with it.
    let (st, moved) = srv
        .patch(
            &record_path(&t.id, &s, &id(&ending)),
            &t.owner,
            json!({ "purpose": "essential.service", "fields": { "contract_end": "2026-03-01" } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{moved}");
    let ending_expiry = midnight(date!(2026 - 03 - 01)) + days(90);
    assert_eq!(at(&moved["expires_at"]), ending_expiry);

    // 2026-01-31: only the contract that ended last year has expired.
    travel(&srv, datetime!(2026-01-31 00:00 UTC));
    assert_error(
        &read(&srv, &t, &s, &id(&ended), ESSENTIAL).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let report = run_retention(&srv, false).await;
    assert_eq!(
        counts(&report, &t.id, "customer_record"),
        &tally(0, 1, 0),
        "{report}"
    );

    // 90 days after creation: the open-ended one goes; the February contract is still live.
    travel(&srv, created + days(90));
    assert_error(
        &read(&srv, &t, &s, &id(&open_ended), ESSENTIAL).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (st, rec) = read(&srv, &t, &s, &id(&ending), ESSENTIAL).await;
    assert_eq!(st, StatusCode::OK, "{rec}");
    let report = run_retention(&srv, false).await;
    assert_eq!(
        counts(&report, &t.id, "customer_record"),
        &tally(0, 1, 0),
        "{report}"
    );

    travel(&srv, ending_expiry - Duration::seconds(1));
    assert_eq!(
        read(&srv, &t, &s, &id(&ending), ESSENTIAL).await.0,
        StatusCode::OK
    );
    assert_eq!(run_retention(&srv, false).await["tenants"], json!({}));
    travel(&srv, ending_expiry);
    assert_error(
        &read(&srv, &t, &s, &id(&ending), ESSENTIAL).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let report = run_retention(&srv, false).await;
    assert_eq!(
        counts(&report, &t.id, "customer_record"),
        &tally(0, 1, 0),
        "{report}"
    );
}

#[tokio::test]
async fn job_applications_are_deleted_two_years_after_the_application() {
    let srv = crate::start().await;
    let t = srv.tenant("Hiring Co").await;
    let s = srv.subject(&t).await;
    let app = write(
        &srv,
        &t,
        &s,
        "job_application",
        json!({ "name": "Candidate", "email": "candidate@example.org", "applied_on": "2026-01-10", "cover_letter": "Hire me." }),
    )
    .await;
    let expires = date!(2026 - 01 - 10).midnight().assume_utc() + days(2 * YEAR_DAYS);
    assert_eq!(at(&app["expires_at"]), expires, "{app}");
    travel(&srv, expires - Duration::seconds(1));
    assert_eq!(
        read(&srv, &t, &s, &id(&app), RECRUITMENT).await.0,
        StatusCode::OK
    );
    assert_eq!(run_retention(&srv, false).await["tenants"], json!({}));
    travel(&srv, expires + days(1));
    assert_error(
        &read(&srv, &t, &s, &id(&app), RECRUITMENT).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let report = run_retention(&srv, false).await;
    assert_eq!(
        report["tenants"],
        json!({ t.id.clone(): { "job_application": tally(1, 0, 0) } }),
        "{report}"
    );
    let expired = audit(&srv, &t, "action=record_expire").await;
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(expired[0]["record"], app["id"]);
    assert_eq!(expired[0]["subject"], s.as_str());
    assert_eq!(expired[0]["collection"], "job_application");
}

#[tokio::test]
async fn server_logs_are_deleted_after_fourteen_days() {
    let srv = crate::start().await;
    let t = srv.tenant("Logs Co").await;
    let s = srv.subject(&t).await;
    let log = write(
        &srv,
        &t,
        &s,
        "server_log",
        json!({ "ip": "192.0.2.200", "path": "/login", "at": "2026-01-15T08:00:00Z" }),
    )
    .await;
    assert_eq!(
        at(&log["expires_at"]),
        datetime!(2026-01-29 08:00 UTC),
        "14 days after the `at` field: {log}"
    );
    srv.clock.advance(days(13));
    assert_eq!(
        read(&srv, &t, &s, &id(&log), SECURITY).await.0,
        StatusCode::OK
    );
    assert_eq!(run_retention(&srv, false).await["tenants"], json!({}));
    srv.clock.advance(days(1));
    assert_error(
        &read(&srv, &t, &s, &id(&log), SECURITY).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let report = run_retention(&srv, false).await;
    assert_eq!(
        report["tenants"],
        json!({ t.id.clone(): { "server_log": tally(1, 0, 0) } }),
        "{report}"
    );
}

#[tokio::test]
async fn a_litigation_hold_keeps_expired_records_until_it_ends() {
    let srv = crate::start().await;
    let t = srv.tenant("Held Co").await;
    let held = srv.subject(&t).await;
    let free = srv.subject(&t).await;
    let hv = id(&write(&srv, &t, &held, "browser_visit", visit_fields()).await);
    write(&srv, &t, &free, "browser_visit", visit_fields()).await;
    let until = srv.vault.now() + days(100);
    let (st, b) = hold(&srv, &t, &held, Some(until)).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{b}");

    srv.clock.advance(days(61));
    let report = run_retention(&srv, false).await;
    assert_eq!(
        counts(&report, &t.id, "browser_visit"),
        &tally(0, 1, 1),
        "the free subject's visit goes, the held one stays: {report}"
    );
    // Held, but still expired for readers.
    assert_error(
        &read(&srv, &t, &held, &hv, ANALYTICS).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let report = run_retention(&srv, false).await;
    assert_eq!(
        counts(&report, &t.id, "browser_visit"),
        &tally(0, 0, 1),
        "{report}"
    );

    travel(&srv, until + Duration::seconds(1));
    let report = run_retention(&srv, false).await;
    assert_eq!(
        counts(&report, &t.id, "browser_visit"),
        &tally(0, 1, 0),
        "the hold ended: {report}"
    );
    assert_eq!(run_retention(&srv, false).await["tenants"], json!({}));
}

/// The records the tenant's log says were anonymized, sorted.
async fn anonymized_records(srv: &TestServer, t: &TenantFixture) -> Vec<String> {
    let mut ids: Vec<String> = audit(srv, t, "action=record_anonymize")
        .await
        .iter()
        .map(|e| e["record"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_sweep_in_many_small_windows_expires_each_record_once() {
    let srv = crate::start().await;
    let t = srv.tenant("Windowed Co").await;
    let (a, b, held) = (
        srv.subject(&t).await,
        srv.subject(&t).await,
        srv.subject(&t).await,
    );
    let mut visits = Vec::new();
    for s in [&a, &b, &a, &held, &b, &a, &held] {
        visits.push(id(
            &write(&srv, &t, s, "browser_visit", visit_fields()).await
        ));
    }
    let log = id(&log_now(&srv, &t, &b, "192.0.2.7").await);
    let (st, body) = hold(&srv, &t, &held, Some(srv.vault.now() + days(100))).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    srv.clock.advance(days(61));

    // Windows of three records, commits of two: the cursor crosses windows that start or end
    // on held records, and batches that straddle subjects.
    let run = |dry_run| {
        let opts = ward_vault::RetentionOptions {
            dry_run,
            window: 3,
            batch: 2,
            ..Default::default()
        };
        let vault = srv.vault.clone();
        async move {
            let report = vault.run_retention(&opts, |_| {}).await.unwrap();
            serde_json::to_value(report).unwrap()
        }
    };
    let expected = json!({ "browser_visit": tally(0, 5, 2), "server_log": tally(1, 0, 0) });
    for dry_run in [true, true, false] {
        let report = run(dry_run).await;
        assert_eq!(
            report["tenants"][&t.id], expected,
            "dry run {dry_run}: {report}"
        );
    }
    let anonymized = anonymized_records(&srv, &t).await;
    let mut free: Vec<String> = visits
        .iter()
        .enumerate()
        .filter(|(i, _)| ![3, 6].contains(i))
        .map(|(_, v)| v.clone())
        .collect();
    free.sort();
    assert_eq!(anonymized, free, "each free visit anonymized once");
    let expired = audit(&srv, &t, "action=record_expire").await;
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(expired[0]["record"], log.as_str());

    let again = run(false).await;
    assert_eq!(
        again["tenants"][&t.id],
        json!({ "browser_visit": tally(0, 0, 2) }),
        "only the held visits are left: {again}"
    );
}

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

#[tokio::test]
async fn every_run_is_audited_per_tenant_and_per_record() {
    let srv = crate::start().await;
    let t = srv.tenant("Audited Co").await;
    let other = srv.tenant("Also Audited Co").await;
    let s = srv.subject(&t).await;
    let os = srv.subject(&other).await;
    let mut visits = vec![
        id(&write(&srv, &t, &s, "browser_visit", visit_fields()).await),
        id(&write(&srv, &t, &s, "browser_visit", visit_fields()).await),
    ];
    visits.sort();
    let log = id(&log_now(&srv, &t, &s, "192.0.2.1").await);
    let other_log = id(&log_now(&srv, &other, &os, "192.0.2.2").await);
    srv.clock.advance(days(61));

    let report = run_retention(&srv, false).await;
    let expected = json!({ "browser_visit": tally(0, 2, 0), "server_log": tally(1, 0, 0) });
    assert_eq!(report["tenants"][&t.id], expected, "{report}");
    assert_eq!(
        report["tenants"][&other.id],
        json!({ "server_log": tally(1, 0, 0) }),
        "{report}"
    );

    let runs = audit(&srv, &t, "action=retention_run").await;
    assert_eq!(
        runs.len(),
        1,
        "one retention_run event per affected tenant: {runs:?}"
    );
    assert_eq!(runs[0]["detail"], expected);
    assert_eq!(
        runs[0]["actor"],
        json!({ "id": "system:retention", "role": "system" })
    );
    assert_eq!(runs[0]["tenant"], t.id.as_str());
    assert_eq!(at(&runs[0]["at"]), srv.vault.now());

    let anonymized = audit(&srv, &t, "action=record_anonymize").await;
    let mut ids: Vec<String> = anonymized
        .iter()
        .map(|e| e["record"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, visits, "{anonymized:?}");
    assert!(anonymized.iter().all(|e| e["subject"] == s.as_str()
        && e["collection"] == "browser_visit"
        && e["actor"]["id"] == "system:retention"));
    let expired = audit(&srv, &t, "action=record_expire").await;
    assert_eq!(
        expired
            .iter()
            .map(|e| e["record"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec![log.as_str()]
    );

    let runs = audit(&srv, &other, "action=retention_run").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["detail"], json!({ "server_log": tally(1, 0, 0) }));
    let expired = audit(&srv, &other, "action=record_expire").await;
    assert_eq!(
        expired
            .iter()
            .map(|e| e["record"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec![other_log.as_str()]
    );

    // Runs with nothing to do for a tenant write nothing for it.
    run_retention(&srv, false).await;
    run_retention(&srv, true).await;
    assert_eq!(audit(&srv, &t, "action=retention_run").await.len(), 1);
}

#[tokio::test]
async fn only_operators_run_retention() {
    let srv = crate::start().await;
    let t = srv.tenant("Not An Operator Co").await;
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    for token in [&t.owner, &admin] {
        let resp = srv
            .call(Method::POST, "/v1/retention/run", Some(token), None)
            .await;
        assert_error(&resp, StatusCode::FORBIDDEN, "role_not_permitted");
    }
    assert_error(
        &srv.call(Method::POST, "/v1/retention/run", None, None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
}

async fn verify(srv: &TestServer) -> ward_vault::VerifyReport {
    ward_vault::verify_log(srv.store.as_ref(), &srv.vault.audit_public_key(), |_, _| {})
        .await
        .unwrap_or_else(|e| panic!("the audit log no longer verifies: {e}"))
}

#[tokio::test]
async fn pruning_the_audit_log_keeps_what_remains_verifiable() {
    let srv = crate::start().await;
    let t = srv.tenant("Pruned Co").await;
    let s = srv.subject(&t).await;
    let r = srv
        .record(
            &t,
            &s,
            "contact",
            json!({ "name": "Old News", "email": "old@example.org" }),
        )
        .await;
    assert_eq!(read(&srv, &t, &s, &r, ESSENTIAL).await.0, StatusCode::OK);
    let before = verify(&srv).await;
    assert_eq!(before.first_index, 0);

    // 61 days later, with fresh activity after the cutoff.
    srv.clock.advance(days(61));
    assert_eq!(read(&srv, &t, &s, &r, ESSENTIAL).await.0, StatusCode::OK);
    let dry = run_retention(&srv, true).await;
    let pruned = dry["audit_events_pruned"].as_u64().unwrap();
    assert!(pruned > 0, "{dry}");
    assert_eq!(
        verify(&srv).await.first_index,
        0,
        "a dry run pruned something"
    );
    let report = run_retention(&srv, false).await;
    assert_eq!(
        report["audit_events_pruned"].as_u64(),
        Some(pruned),
        "{report}"
    );
    let after = verify(&srv).await;
    assert_eq!(
        after.first_index, pruned,
        "everything older than 60 days, and nothing newer, is gone"
    );
    assert!(after.tree_size > before.tree_size);
    assert!(after.checkpoints_verified >= 1);
    // The tenant's view shows only the recent read.
    let events = audit(&srv, &t, "").await;
    assert!(
        events
            .iter()
            .all(|e| at(&e["at"]) >= srv.vault.now() - days(60)),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e["action"] == "record_read"));
    assert_eq!(run_retention(&srv, false).await["audit_events_pruned"], 0);

    // A second prune resumes from the first one's checkpoint.
    srv.clock.advance(days(61));
    assert_eq!(read(&srv, &t, &s, &r, ESSENTIAL).await.0, StatusCode::OK);
    let report = run_retention(&srv, false).await;
    assert!(
        report["audit_events_pruned"].as_u64().unwrap() > 0,
        "{report}"
    );
    let again = verify(&srv).await;
    assert!(
        again.first_index > after.first_index,
        "{again:?} vs {after:?}"
    );
}

/// Regression: when no event was newer than the cutoff, the prune removed every row; the
/// verifier then found no first row, started from index 0 and reported the untouched log as
/// truncated. The prune now keeps the newest event as the log's anchor (an empty table could
/// not tell a legitimate prune from a deleted log), and everything older goes.
#[tokio::test]
async fn pruning_an_idle_audit_log_keeps_it_verifiable() {
    let srv = crate::start().await;
    let t = srv.tenant("Idle Co").await;
    let s = srv.subject(&t).await;
    srv.record(
        &t,
        &s,
        "contact",
        json!({ "name": "Idle", "email": "idle@example.org" }),
    )
    .await;
    let before = verify(&srv).await;

    // Nothing at all happens for 61 days; then retention prunes every event there is.
    srv.clock.advance(days(61));
    let report = run_retention(&srv, false).await;
    assert_eq!(
        report["audit_events_pruned"].as_u64(),
        Some(before.tree_size - 1),
        "{report}"
    );
    let after = verify(&srv).await;
    assert_eq!(
        after.tree_size,
        before.tree_size + 1,
        "the pruned history still counts, plus the sweep's own retention_run event: {after:?}"
    );

    // The next event continues the same log.
    srv.get(&format!("/v1/tenants/{}", t.id), &t.owner).await;
    let next = verify(&srv).await;
    assert_eq!(
        next.first_index,
        before.tree_size - 1,
        "the anchor event stays: {next:?}"
    );
    assert_eq!(next.tree_size, before.tree_size + 2, "{next:?}");
}

/// Deletes one record through the real store just before the sweep's first commit, as an
/// erasure or a tenant's own delete landing between the sweep's read and its commit would.
struct VanishFirst {
    victim: ward_store::Op,
    fired: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl ward_store::hooked::CommitHook for VanishFirst {
    async fn before_commit(
        &self,
        store: &dyn ward_store::Store,
        ops: Vec<ward_store::Op>,
    ) -> ward_store::Result<Vec<ward_store::Op>> {
        use std::sync::atomic::Ordering::SeqCst;
        let sweeping = ops
            .iter()
            .any(|op| matches!(op, ward_store::Op::AnonymizeRecord { .. }));
        if sweeping && !self.fired.swap(true, SeqCst) {
            store.commit(vec![self.victim.clone()]).await?;
        }
        Ok(ops)
    }
}

#[tokio::test]
async fn a_record_that_vanishes_mid_sweep_is_neither_swept_nor_counted() {
    let srv = crate::start().await;
    let t = srv.tenant("Vanishing Co").await;
    let mut visits = Vec::new();
    for _ in 0..3 {
        let s = srv.subject(&t).await;
        let v = id(&write(&srv, &t, &s, "browser_visit", visit_fields()).await);
        visits.push((s, v));
    }
    // The sweep works in key order (subject, then record); the last record in that order
    // disappears once the sweep has read it and before it reaches it.
    visits.sort();
    let (victim_subject, victim) = visits.pop().unwrap();
    let uuid = |s: &str| uuid::Uuid::parse_str(s).unwrap();
    let hook = VanishFirst {
        victim: ward_store::Op::DeleteRecord {
            tenant: uuid(&t.id),
            subject: uuid(&victim_subject),
            id: uuid(&victim),
        },
        fired: false.into(),
    };
    let vault = srv.vault_on(std::sync::Arc::new(ward_store::hooked::Hooked::new(
        srv.store.clone(),
        hook,
    )));
    srv.clock.advance(days(61));

    // One record per commit, so the vanished record's commit comes after the others'.
    let opts = ward_vault::RetentionOptions {
        batch: 1,
        ..Default::default()
    };
    let report = vault.run_retention(&opts, |_| {}).await.unwrap();
    let report = serde_json::to_value(&report).unwrap();
    assert_eq!(
        counts(&report, &t.id, "browser_visit"),
        &tally(0, 2, 0),
        "the vanished record is not counted, the others once: {report}"
    );
    let anonymized = anonymized_records(&srv, &t).await;
    let mut survivors: Vec<String> = visits.into_iter().map(|(_, v)| v).collect();
    survivors.sort();
    assert_eq!(anonymized, survivors, "one event per anonymized record");
    assert!(!anonymized.contains(&victim));

    // Nothing is left to sweep.
    let again = run_retention(&srv, false).await;
    assert_eq!(
        counts(&again, &t.id, "browser_visit"),
        &Value::Null,
        "{again}"
    );
}

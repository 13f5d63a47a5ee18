//! The example policy's retention rules, collection by collection (from creation or from a
//! date field), and litigation holds, because each rule is a legal commitment whose exact
//! deadline must be kept, and a hold must defer it for as long as the hold lasts.

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;
use time::macros::{date, datetime};
use ward_testkit::{TenantFixture, TestServer};

use crate::retention::{read, travel, visit_fields};
use crate::support::{
    ANALYTICS, ESSENTIAL, RECRUITMENT, SECURITY, YEAR_DAYS, assert_error, at, audit, counts, days,
    hold, id, record_path, run_retention, tally, write,
};

/// Checks record `r` of subject `s` reads as gone (404 `not_found`) for `purpose`: each
/// deadline below is checked this way the moment it passes.
async fn assert_expired(srv: &TestServer, t: &TenantFixture, s: &str, r: &str, purpose: &str) {
    assert_error(
        &read(srv, t, s, r, purpose).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

/// Runs a retention sweep and checks what it did to `collection` of tenant `t`: the steps of
/// the rules below each end with one sweep and its tally.
async fn assert_swept(srv: &TestServer, t: &TenantFixture, collection: &str, expected: Value) {
    let report = run_retention(srv, false).await;
    assert_eq!(counts(&report, &t.id, collection), &expected, "{report}");
}

#[tokio::test]
async fn customer_records_expire_ninety_days_after_the_contract_ends() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Customers Co").await;
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
    assert_expired(&srv, &t, &s, &id(&ended), ESSENTIAL).await;
    assert_swept(&srv, &t, "customer_record", tally(0, 1, 0)).await;

    // 90 days after creation: the open-ended one goes; the February contract is still live.
    travel(&srv, created + days(90));
    assert_expired(&srv, &t, &s, &id(&open_ended), ESSENTIAL).await;
    let (st, rec) = read(&srv, &t, &s, &id(&ending), ESSENTIAL).await;
    assert_eq!(st, StatusCode::OK, "{rec}");
    assert_swept(&srv, &t, "customer_record", tally(0, 1, 0)).await;

    travel(&srv, ending_expiry - Duration::seconds(1));
    assert_eq!(
        read(&srv, &t, &s, &id(&ending), ESSENTIAL).await.0,
        StatusCode::OK
    );
    assert_eq!(run_retention(&srv, false).await["tenants"], json!({}));
    travel(&srv, ending_expiry);
    assert_expired(&srv, &t, &s, &id(&ending), ESSENTIAL).await;
    assert_swept(&srv, &t, "customer_record", tally(0, 1, 0)).await;
}

#[tokio::test]
async fn job_applications_are_deleted_two_years_after_the_application() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Hiring Co").await;
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
    assert_expired(&srv, &t, &s, &id(&app), RECRUITMENT).await;
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
    let (t, s) = srv.tenant_and_subject("Logs Co").await;
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
    assert_expired(&srv, &t, &s, &id(&log), SECURITY).await;
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
    assert_expired(&srv, &t, &held, &hv, ANALYTICS).await;
    assert_swept(&srv, &t, "browser_visit", tally(0, 0, 1)).await;

    travel(&srv, until + Duration::seconds(1));
    let report = run_retention(&srv, false).await;
    assert_eq!(
        counts(&report, &t.id, "browser_visit"),
        &tally(0, 1, 0),
        "the hold ended: {report}"
    );
    assert_eq!(run_retention(&srv, false).await["tenants"], json!({}));
}

//! The tenant lifecycle: cancel (frozen at once), reactivate within the grace period, destroyed
//! by the retention engine after it; and the whole tenant as a portable archive.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};

use crate::support::{
    ESSENTIAL, assert_error, at, days, erase, export_path, list_path, lookup_path, read_path,
    run_retention, write,
};

/// The example policy's grace period.
const GRACE_DAYS: i64 = 28;

async fn lifecycle(
    srv: &TestServer,
    t: &TenantFixture,
    action: &str,
    token: &str,
) -> (StatusCode, Value) {
    srv.call(
        Method::POST,
        &format!("/v1/tenants/{}/{action}", t.id),
        Some(token),
        None,
    )
    .await
}

async fn tenant_row(srv: &TestServer, t: &TenantFixture, token: &str) -> (StatusCode, Value) {
    srv.get(&format!("/v1/tenants/{}", t.id), token).await
}

struct Fixture {
    t: TenantFixture,
    s: String,
    r: String,
}

async fn fixture(srv: &TestServer, name: &str) -> Fixture {
    let (t, s) = srv.tenant_and_subject(name).await;
    let r = srv
        .contact(&t, &s, "Tenant Person", "person@tenant.example")
        .await;
    Fixture { t, s, r }
}

#[tokio::test]
async fn a_cancelled_tenant_is_frozen_until_reactivated() {
    let srv = crate::start().await;
    let f = fixture(&srv, "Cancel Co").await;
    let t = &f.t;
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    assert_error(
        &lifecycle(&srv, t, "cancel", &admin).await,
        StatusCode::FORBIDDEN,
        "role_not_permitted",
    );
    assert_error(
        &lifecycle(&srv, t, "reactivate", &t.owner).await,
        StatusCode::CONFLICT,
        "conflict",
    );

    let (st, out) = lifecycle(&srv, t, "cancel", &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{out}");
    let destroy_after = srv.vault.now() + days(GRACE_DAYS);
    assert_eq!(out["status"], "deactivated", "{out}");
    assert_eq!(at(&out["destroy_after"]), destroy_after, "{out}");
    for token in [&t.owner, &srv.operator] {
        let (st, row) = tenant_row(&srv, t, token).await;
        assert_eq!(st, StatusCode::OK, "{row}");
        assert_eq!(row["status"], "deactivated");
        assert_eq!(at(&row["destroy_after"]), destroy_after);
    }

    // Every data access stops at once.
    for path in [
        read_path(&t.id, &f.s, &f.r, ESSENTIAL),
        list_path(&t.id, &f.s, ESSENTIAL),
        lookup_path(
            &t.id,
            "contact",
            "email",
            "person@tenant.example",
            ESSENTIAL,
        ),
        export_path(&t.id, &f.s),
    ] {
        assert_error(
            &srv.get(&path, &t.owner).await,
            StatusCode::FORBIDDEN,
            "tenant_inactive",
        );
    }
    let resp = srv
        .post(
            &format!("/v1/tenants/{}/subjects/{}/records", t.id, f.s),
            &t.owner,
            json!({ "collection": "contact", "fields": { "name": "N", "email": "n@example.org" } }),
        )
        .await;
    assert_error(&resp, StatusCode::FORBIDDEN, "tenant_inactive");
    assert_error(
        &srv.post(
            &format!("/v1/tenants/{}/subjects", t.id),
            &t.owner,
            json!({}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "tenant_inactive",
    );
    assert_error(
        &erase(&srv, t, &f.s).await,
        StatusCode::FORBIDDEN,
        "tenant_inactive",
    );
    assert_error(
        &lifecycle(&srv, t, "cancel", &t.owner).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    // Another tenant is not affected.
    let other = fixture(&srv, "Other Co").await;
    let (st, _) = srv
        .get(
            &read_path(&other.t.id, &other.s, &other.r, ESSENTIAL),
            &other.t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK);

    // Changing its mind on day 27 brings everything back.
    srv.clock.advance(days(GRACE_DAYS - 1));
    let (st, out) = lifecycle(&srv, t, "reactivate", &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{out}");
    assert_eq!(out["status"], "active");
    assert_eq!(out["destroy_after"], Value::Null);
    let (st, rec) = srv
        .get(&read_path(&t.id, &f.s, &f.r, ESSENTIAL), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{rec}");
    assert_eq!(rec["fields"]["name"], "Tenant Person");
    // And retention no longer destroys it after the original date.
    srv.clock.advance(days(5));
    let report = run_retention(&srv, false).await;
    assert_eq!(report["tenants_destroyed"], json!([]), "{report}");
    let (st, row) = tenant_row(&srv, t, &t.owner).await;
    assert_eq!((st, &row["status"]), (StatusCode::OK, &json!("active")));

    let events = crate::support::audit(&srv, t, "action=tenant_cancel").await;
    assert_eq!(
        events.iter().filter(|e| e["outcome"] == "allowed").count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        crate::support::audit(&srv, t, "action=tenant_reactivate&outcome=allowed")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_cancelled_tenant_is_destroyed_after_the_grace_period() {
    let srv = crate::start().await;
    let f = fixture(&srv, "Doomed Co").await;
    let t = &f.t;
    // A key that is never used before the destruction (so nothing about it is cached).
    let unused = srv.key(&t.id, &t.owner, "member", &[ESSENTIAL]).await;
    let keep = fixture(&srv, "Surviving Co").await;
    let (st, out) = lifecycle(&srv, t, "cancel", &srv.operator).await;
    assert_eq!(st, StatusCode::OK, "operators may cancel too: {out}");

    // One minute before the end of the grace period nothing happens.
    srv.clock
        .advance(days(GRACE_DAYS) - time::Duration::minutes(1));
    let report = run_retention(&srv, true).await;
    assert_eq!(report["tenants_destroyed"], json!([]), "{report}");
    let report = run_retention(&srv, false).await;
    assert_eq!(report["tenants_destroyed"], json!([]), "{report}");

    // Day 29: a dry run reports it and changes nothing, the real run destroys it.
    srv.clock.advance(days(1));
    let report = run_retention(&srv, true).await;
    assert_eq!(report["tenants_destroyed"], json!([t.id]), "{report}");
    let (st, row) = tenant_row(&srv, t, &srv.operator).await;
    assert_eq!(
        (st, &row["status"]),
        (StatusCode::OK, &json!("deactivated")),
        "a dry run destroys nothing: {row}"
    );
    for path in [
        read_path(&t.id, &f.s, &f.r, ESSENTIAL),
        list_path(&t.id, &f.s, ESSENTIAL),
    ] {
        assert_error(
            &srv.get(&path, &srv.operator).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    let report = run_retention(&srv, false).await;
    assert_eq!(report["tenants_destroyed"], json!([t.id]), "{report}");

    // Its keys are revoked: they no longer authenticate.
    assert_error(
        &tenant_row(&srv, t, &unused).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_error(
        &srv.get(&read_path(&t.id, &f.s, &f.r, ESSENTIAL), &unused)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    // The operator still sees that the tenant existed, and nothing of its data.
    let (st, row) = tenant_row(&srv, t, &srv.operator).await;
    assert_eq!(
        (st, &row["status"], &row["destroy_after"]),
        (StatusCode::OK, &json!("destroyed"), &Value::Null),
        "{row}"
    );
    // (Before, the operator was refused the data; now there is none to refuse.)
    assert_error(
        &srv.get(&read_path(&t.id, &f.s, &f.r, ESSENTIAL), &srv.operator)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &srv.get(&list_path(&t.id, &f.s, ESSENTIAL), &srv.operator)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // It cannot come back, and is not destroyed twice.
    assert_error(
        &lifecycle(&srv, t, "reactivate", &srv.operator).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &lifecycle(&srv, t, "cancel", &srv.operator).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let report = run_retention(&srv, false).await;
    assert_eq!(report["tenants_destroyed"], json!([]), "{report}");
    // The other tenant lives on.
    let (st, rec) = srv
        .get(
            &read_path(&keep.t.id, &keep.s, &keep.r, ESSENTIAL),
            &keep.t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{rec}");
}

/// Regression: the destruction revoked the keys in the store but left them in the vault's
/// authentication cache, so a key used just before kept authenticating for a few seconds.
#[tokio::test]
async fn keys_of_a_destroyed_tenant_stop_working_at_once_even_if_just_used() {
    let srv = crate::start().await;
    let f = fixture(&srv, "Just Used Co").await;
    let t = &f.t;
    let member = srv.key(&t.id, &t.owner, "member", &[ESSENTIAL]).await;
    let (st, _) = lifecycle(&srv, t, "cancel", &t.owner).await;
    assert_eq!(st, StatusCode::OK);
    srv.clock.advance(days(GRACE_DAYS + 1));
    // Both keys authenticate right before the destruction.
    for token in [&t.owner, &member] {
        let (st, row) = tenant_row(&srv, t, token).await;
        assert_eq!(
            (st, &row["status"]),
            (StatusCode::OK, &json!("deactivated")),
            "{row}"
        );
    }
    let report = run_retention(&srv, false).await;
    assert_eq!(report["tenants_destroyed"], json!([t.id]), "{report}");
    for token in [&t.owner, &member] {
        assert_error(
            &tenant_row(&srv, t, token).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
        assert_error(
            &srv.get(&read_path(&t.id, &f.s, &f.r, ESSENTIAL), token)
                .await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
    }
}

#[tokio::test]
async fn reactivation_is_refused_once_the_grace_period_is_over() {
    let srv = crate::start().await;
    let f = fixture(&srv, "Late Co").await;
    let (st, _) = lifecycle(&srv, &f.t, "cancel", &f.t.owner).await;
    assert_eq!(st, StatusCode::OK);
    srv.clock
        .advance(days(GRACE_DAYS) + time::Duration::seconds(1));
    // Even before the sweep destroys it.
    assert_error(
        &lifecycle(&srv, &f.t, "reactivate", &f.t.owner).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    let (st, row) = tenant_row(&srv, &f.t, &f.t.owner).await;
    assert_eq!(
        (st, &row["status"]),
        (StatusCode::OK, &json!("deactivated"))
    );
}

async fn tenant_export(
    srv: &TestServer,
    t: &TenantFixture,
    token: &str,
) -> (StatusCode, Option<String>, String) {
    let resp = srv
        .request(Method::GET, &format!("/v1/tenants/{}/export", t.id))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    (status, ct, resp.text().await.unwrap())
}

#[tokio::test]
async fn tenant_export_is_a_json_lines_archive_of_every_subject() {
    let srv = crate::start().await;
    let t = srv.tenant("Archive Co").await;
    let mut subjects = Vec::new();
    for n in 0..3 {
        let s = srv.subject(&t).await;
        let rec = write(
            &srv,
            &t,
            &s,
            "contact",
            json!({ "name": format!("Person {n}"), "email": format!("p{n}@archive.example") }),
        )
        .await;
        subjects.push((s, rec));
    }
    let erased = srv.subject(&t).await;
    srv.contact(&t, &erased, "Gone Person", "gone@archive.example")
        .await;
    let (st, _) = erase(&srv, &t, &erased).await;
    assert_eq!(st, StatusCode::OK);
    let other = srv.tenant("Not Archived Co").await;
    let other_s = srv.subject(&other).await;

    let (st, ct, body) = tenant_export(&srv, &t, &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(ct.as_deref(), Some("application/x-ndjson"));
    assert!(body.ends_with('\n'));
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l}: {e}")))
        .collect();
    assert_eq!(
        lines.len(),
        1 + subjects.len(),
        "a manifest, then one line per (unerased) subject: {body}"
    );
    let manifest = &lines[0];
    assert_eq!(manifest["format"], "ward.tenant-export.v1");
    assert_eq!(manifest["tenant"]["id"], t.id.as_str());
    assert_eq!(manifest["tenant"]["name"], "Archive Co");
    let collections: Vec<&String> = manifest["schema"]["collections"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        collections,
        vec![
            "billing",
            "browser_visit",
            "contact",
            "customer_record",
            "job_application",
            "server_log"
        ]
    );

    let mut expected: Vec<&String> = subjects.iter().map(|(s, _)| s).collect();
    expected.sort();
    let got: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l["subject"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        expected.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "subjects in id order, the erased one left out"
    );
    assert!(!body.contains("Gone Person") && !body.contains(&erased) && !body.contains(&other_s));
    for line in &lines[1..] {
        assert_eq!(line["format"], "ward.subject-export.v1");
        let (_, rec) = subjects
            .iter()
            .find(|(s, _)| line["subject"]["id"] == s.as_str())
            .unwrap();
        assert_eq!(line["records"].as_array().unwrap().len(), 1);
        assert_eq!(line["records"][0]["id"], rec["id"]);
        assert_eq!(line["records"][0]["fields"], rec["fields"]);
    }
    let exports = crate::support::audit(&srv, &t, "action=tenant_export").await;
    assert_eq!(exports.len(), 1);
    assert_eq!(exports[0]["detail"], json!({ "subjects": 3 }));

    // Members, auditors and operators get no archive; another tenant does not learn it exists.
    let member = srv.key(&t.id, &t.owner, "member", &[ESSENTIAL]).await;
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    for token in [&member, &auditor, &srv.operator] {
        let (st, _, body) = tenant_export(&srv, &t, token).await;
        let err: Value = serde_json::from_str(&body).unwrap();
        if token == &srv.operator {
            // Operators are told there is nothing of the tenant's data to see.
            assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
            assert_eq!(err["error"]["code"], "not_found");
        } else {
            assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
            assert_eq!(err["error"]["code"], "role_not_permitted");
        }
        assert!(!body.contains("Person 0"));
    }
    let (st, _, body) = tenant_export(&srv, &t, &other.owner).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
}

//! Erasure (GDPR Art. 17) by crypto-shredding: everything of the subject becomes unreadable at
//! once, legally held collections are kept (and reported) until their hold ends, litigation
//! holds defer erasure, and erasure is idempotent.

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use ward_testkit::{TenantFixture, TestServer};

use crate::support::{
    ESSENTIAL, LEGAL, SECURITY, YEAR_DAYS, assert_error, assert_leaks_none, at, audit, days, erase,
    export_path, find_path, hold, id, list_path, lookup_path, read_path, record_path,
    ref_export_path, rfc, run_retention, scan, subject_path, subject_with_ref, write,
};

pub(crate) const A_NAME: &str = "Ottoline Vexbridge-Quarrington";
pub(crate) const A_EMAIL: &str = "ottoline.vexbridge@quarrington-mail.example";
pub(crate) const A_REF: &str = "crm-ottoline-778201-vexbridge";
pub(crate) const A_CITY: &str = "Vexbridge-upon-Quarr";
pub(crate) const A_IP: &str = "198.51.100.213";
pub(crate) const A_ADDRESS: &str = "42 Quarrington Lane, Vexbridge";
pub(crate) const A_INVOICE_NAME: &str = "Ottoline Vexbridge Holdings";
const B_NAME: &str = "Bertrand Stayputte";
const B_EMAIL: &str = "bertrand.stayputte@example.org";

/// Every value written for subject A.
pub(crate) const A_VALUES: [&str; 7] = [
    A_NAME,
    A_EMAIL,
    A_REF,
    A_CITY,
    A_IP,
    A_ADDRESS,
    A_INVOICE_NAME,
];

/// A tenant with subject A (records in four collections, two of them invoices under the
/// billing legal hold) and subject B (one contact).
pub(crate) struct Fixture {
    pub(crate) t: TenantFixture,
    pub(crate) a: String,
    pub(crate) b: String,
    /// A's records that an erasure destroys: (id, collection, a purpose to read it).
    pub(crate) a_erased: Vec<(String, &'static str, &'static str)>,
    /// A's invoices (write responses), created a day apart.
    pub(crate) a_billing: Vec<Value>,
    pub(crate) b_contact: String,
}

pub(crate) async fn fixture(srv: &TestServer) -> Fixture {
    let t = srv.tenant("Erasure Co").await;
    let a = subject_with_ref(srv, &t, A_REF).await;
    let contact = write(
        srv,
        &t,
        &a,
        "contact",
        json!({ "name": A_NAME, "email": A_EMAIL, "postal_address": A_ADDRESS }),
    )
    .await;
    let customer = write(
        srv,
        &t,
        &a,
        "customer_record",
        json!({ "name": A_NAME, "email": A_EMAIL, "city": A_CITY, "last_seen_ip": A_IP }),
    )
    .await;
    let visit = write(
        srv,
        &t,
        &a,
        "browser_visit",
        json!({ "ip": A_IP, "visited_at": "2026-01-15T08:00:00Z" }),
    )
    .await;
    let invoice = |n: u32| {
        json!({ "invoice_number": format!("INV-OV-000{n}"), "amount": "120.00", "billing_name": A_INVOICE_NAME,
                "billing_address": A_ADDRESS, "issued_on": "2026-01-14" })
    };
    let first = write(srv, &t, &a, "billing", invoice(1)).await;
    srv.clock.advance(days(1));
    let second = write(srv, &t, &a, "billing", invoice(2)).await;
    let b = srv.subject(&t).await;
    let b_contact = srv.contact(&t, &b, B_NAME, B_EMAIL).await;
    Fixture {
        t,
        a,
        b,
        a_erased: vec![
            (id(&contact), "contact", ESSENTIAL),
            (id(&customer), "customer_record", ESSENTIAL),
            (id(&visit), "browser_visit", SECURITY),
        ],
        a_billing: vec![first, second],
        b_contact,
    }
}

/// The reason the example policy gives for the billing legal hold.
pub(crate) fn billing_hold_reason() -> String {
    let policy =
        ward_policy::Policy::parse(ward_policy::EXAMPLE_POLICY, "saas-policy.toml").unwrap();
    let billing = policy
        .collections
        .values()
        .find(|c| c.name.as_str() == "billing")
        .unwrap();
    billing.legal_hold.as_ref().unwrap().reason.clone()
}

/// When the last of A's invoices may be deleted: created + 10 years (of 365 days).
pub(crate) fn billing_hold_end(f: &Fixture) -> OffsetDateTime {
    f.a_billing
        .iter()
        .map(|b| at(&b["created_at"]))
        .max()
        .unwrap()
        + days(10 * YEAR_DAYS)
}

#[tokio::test]
async fn erasure_makes_everything_of_the_subject_unreadable_and_keeps_held_invoices() {
    let srv = crate::start().await;
    let f = fixture(&srv).await;
    let t = &f.t;
    // Read everything once, so any cached key would have to be forgotten by the erasure.
    for (r, _, purpose) in &f.a_erased {
        let (st, b) = srv.get(&read_path(&t.id, &f.a, r, purpose), &t.owner).await;
        assert_eq!(st, StatusCode::OK, "{b}");
    }
    let (st, before) = srv
        .get(
            &lookup_path(&t.id, "contact", "email", A_EMAIL, ESSENTIAL),
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{before}");
    assert_eq!(before.as_array().unwrap().len(), 1, "{before}");

    let (st, out) = erase(&srv, t, &f.a).await;
    assert_eq!(st, StatusCode::OK, "{out}");
    assert_eq!(out["subject"], f.a.as_str(), "{out}");
    assert_eq!(out["already_erased"], false, "{out}");
    assert_eq!(
        out["records_erased"], 3,
        "contact, customer_record and browser_visit are erased: {out}"
    );
    assert_eq!(at(&out["erased_at"]), srv.vault.now(), "{out}");
    assert_eq!(
        out["kept"],
        json!([{ "collection": "billing", "records": 2, "reason": billing_hold_reason(), "until": rfc(billing_hold_end(&f)) }]),
        "only billing is kept, until the later invoice's hold ends"
    );

    // Nothing of A is readable any more, by any path.
    for (r, collection, purpose) in &f.a_erased {
        let resp = srv.get(&read_path(&t.id, &f.a, r, purpose), &t.owner).await;
        assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
        assert_leaks_none(&resp.1, &A_VALUES);
        let resp = srv
            .patch(
                &record_path(&t.id, &f.a, r),
                &t.owner,
                json!({ "purpose": "essential.service", "fields": {} }),
            )
            .await;
        assert_eq!(
            resp.0,
            StatusCode::NOT_FOUND,
            "patch of erased {collection} record: {}",
            resp.1
        );
    }
    for b in &f.a_billing {
        let resp = srv
            .get(&read_path(&t.id, &f.a, &id(b), LEGAL), &t.owner)
            .await;
        assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    }
    assert_error(
        &srv.get(&list_path(&t.id, &f.a, ESSENTIAL), &t.owner).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &srv.get(&export_path(&t.id, &f.a), &t.owner).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &srv.get(&ref_export_path(&t.id, A_REF), &t.owner).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &srv.get(&find_path(&t.id, A_REF), &t.owner).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (st, hits) = srv
        .get(
            &lookup_path(&t.id, "contact", "email", A_EMAIL, ESSENTIAL),
            &t.owner,
        )
        .await;
    assert_eq!(
        (st, hits),
        (StatusCode::OK, json!([])),
        "the blind index must not find an erased subject"
    );
    let (st, hits) = srv
        .get(
            &lookup_path(&t.id, "billing", "invoice_number", "INV-OV-0001", LEGAL),
            &t.owner,
        )
        .await;
    assert_eq!(
        (st, hits),
        (StatusCode::OK, json!([])),
        "held invoices are not searchable"
    );
    let resp = srv
        .post(
            &format!("{}/records", subject_path(&t.id, &f.a)),
            &t.owner,
            json!({ "collection": "contact", "fields": { "name": "X", "email": "x@example.org" } }),
        )
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");

    // B is untouched.
    let (st, b) = srv
        .get(&read_path(&t.id, &f.b, &f.b_contact, ESSENTIAL), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["fields"]["name"], B_NAME);

    // Idempotent: the same answer, from the ledger.
    let (st, again) = erase(&srv, t, &f.a).await;
    assert_eq!(st, StatusCode::OK, "{again}");
    assert_eq!(again["already_erased"], true, "{again}");
    for key in ["subject", "erased_at", "records_erased", "kept"] {
        assert_eq!(
            again[key], out[key],
            "second erasure differs in {key}: {again} vs {out}"
        );
    }

    // The audit trail of the erasure names counts, never values.
    let events = audit(&srv, t, &format!("subject={}", f.a)).await;
    assert_leaks_none(&Value::Array(events.clone()), &A_VALUES);
    let erasures: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "subject_erase")
        .collect();
    assert_eq!(erasures.len(), 2, "{erasures:?}");
    assert!(erasures.iter().all(|e| e["outcome"] == "allowed"));
    assert_eq!(
        erasures[0]["detail"],
        json!({ "records_erased": 3, "kept": [{ "collection": "billing", "records": 2 }] })
    );

    // And no value of A is anywhere in the data directory.
    assert_eq!(scan(&srv, &A_VALUES), vec![]);
}

#[tokio::test]
async fn erasure_needs_an_owner_or_admin_of_the_same_tenant() {
    let srv = crate::start().await;
    let f = fixture(&srv).await;
    let t = &f.t;
    let member = srv.key(&t.id, &t.owner, "member", &[ESSENTIAL]).await;
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    let other = srv.tenant("Someone Else").await;
    let path = format!("{}/erase", subject_path(&t.id, &f.a));
    for token in [&member, &auditor] {
        assert_error(
            &srv.call(reqwest::Method::POST, &path, Some(token), None)
                .await,
            StatusCode::FORBIDDEN,
            "role_not_permitted",
        );
    }
    // Operators are told the data does not exist.
    assert_error(
        &srv.call(reqwest::Method::POST, &path, Some(&srv.operator), None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &srv.call(reqwest::Method::POST, &path, Some(&other.owner), None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let unknown = format!(
        "{}/erase",
        subject_path(&t.id, "0190a5d2-0000-7000-8000-000000000000")
    );
    assert_error(
        &srv.call(reqwest::Method::POST, &unknown, Some(&t.owner), None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // Nothing was erased by the refused attempts.
    let (r, _, purpose) = &f.a_erased[0];
    let (st, b) = srv.get(&read_path(&t.id, &f.a, r, purpose), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    let (st, out) = srv
        .call(reqwest::Method::POST, &path, Some(&admin), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{out}");
}

#[tokio::test]
async fn a_litigation_hold_defers_erasure_until_lifted_or_over() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Litigation Co").await;
    let r = srv.contact(&t, &s, A_NAME, A_EMAIL).await;
    let until = srv.vault.now() + days(30);

    let (st, b) = hold(&srv, &t, &s, Some(until)).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
    let resp = erase(&srv, &t, &s).await;
    assert_error(&resp, StatusCode::FORBIDDEN, "subject_on_hold");
    assert!(
        resp.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&rfc(until)),
        "the refusal says until when: {}",
        resp.1
    );
    let (st, rec) = srv
        .get(&read_path(&t.id, &s, &r, ESSENTIAL), &t.owner)
        .await;
    assert_eq!(
        (st, &rec["fields"]["name"]),
        (StatusCode::OK, &json!(A_NAME)),
        "a refused erasure changes nothing: {rec}"
    );
    let (st, doc) = srv.get(&export_path(&t.id, &s), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{doc}");
    assert_eq!(at(&doc["subject"]["hold_until"]), until, "{doc}");
    let denied = audit(&srv, &t, "action=subject_erase&outcome=denied").await;
    assert_eq!(denied.len(), 1, "the refusal is audited: {denied:?}");

    // Lifting the hold allows the erasure.
    let (st, b) = hold(&srv, &t, &s, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
    let (st, out) = erase(&srv, &t, &s).await;
    assert_eq!(st, StatusCode::OK, "{out}");
    assert_eq!(out["records_erased"], 1, "{out}");
    assert_error(
        &srv.get(&read_path(&t.id, &s, &r, ESSENTIAL), &t.owner)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // An erased subject cannot be put on hold.
    assert_error(
        &hold(&srv, &t, &s, Some(srv.vault.now() + days(1))).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // A hold that ran out no longer blocks.
    let s2 = srv.subject(&t).await;
    let (st, _) = hold(&srv, &t, &s2, Some(srv.vault.now() + days(1))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_error(
        &erase(&srv, &t, &s2).await,
        StatusCode::FORBIDDEN,
        "subject_on_hold",
    );
    srv.clock.advance(days(2));
    let (st, out) = erase(&srv, &t, &s2).await;
    assert_eq!(st, StatusCode::OK, "{out}");

    // Holds must end in the future and be RFC 3339.
    let s3 = srv.subject(&t).await;
    assert_error(
        &hold(&srv, &t, &s3, Some(srv.vault.now() - days(1))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_hold",
    );
    let resp = crate::support::put(
        &srv,
        &format!("{}/hold", subject_path(&t.id, &s3)),
        &t.owner,
        json!({ "until": "next week" }),
    )
    .await;
    assert_error(&resp, StatusCode::BAD_REQUEST, "invalid_time");
}

#[tokio::test]
async fn erasure_frees_the_external_reference() {
    let srv = crate::start().await;
    let t = srv.tenant("Reference Co").await;
    let a = subject_with_ref(&srv, &t, A_REF).await;
    srv.contact(&t, &a, A_NAME, A_EMAIL).await;
    // While A exists the reference is taken (so the reuse below proves something).
    let resp = srv
        .post(
            &format!("/v1/tenants/{}/subjects", t.id),
            &t.owner,
            json!({ "external_ref": A_REF }),
        )
        .await;
    assert_error(&resp, StatusCode::CONFLICT, "conflict");
    let (st, found) = srv.get(&find_path(&t.id, A_REF), &t.owner).await;
    assert_eq!(
        (st, found["id"].as_str()),
        (StatusCode::OK, Some(a.as_str()))
    );

    let (st, out) = erase(&srv, &t, &a).await;
    assert_eq!(st, StatusCode::OK, "{out}");
    assert_error(
        &srv.get(&find_path(&t.id, A_REF), &t.owner).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &srv.get(&ref_export_path(&t.id, A_REF), &t.owner).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let b = subject_with_ref(&srv, &t, A_REF).await;
    assert_ne!(a, b);
    let (st, found) = srv.get(&find_path(&t.id, A_REF), &t.owner).await;
    assert_eq!(
        (st, found["id"].as_str()),
        (StatusCode::OK, Some(b.as_str())),
        "{found}"
    );
    let (st, doc) = srv.get(&ref_export_path(&t.id, A_REF), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{doc}");
    assert_eq!(doc["subject"]["id"], b.as_str());
    assert_eq!(
        doc["records"],
        json!([]),
        "the new subject inherits nothing of the erased one: {doc}"
    );
}

#[tokio::test]
async fn held_invoices_are_deleted_by_retention_when_the_hold_ends() {
    let srv = crate::start().await;
    let f = fixture(&srv).await;
    let (st, out) = erase(&srv, &f.t, &f.a).await;
    assert_eq!(st, StatusCode::OK, "{out}");
    let end = billing_hold_end(&f);

    // Half a day before the later hold ends, only the earlier invoice's hold is over.
    srv.clock
        .advance(end - time::Duration::hours(12) - srv.vault.now());
    let report = run_retention(&srv, false).await;
    assert_eq!(report["holds_released"], 1, "{report}");
    srv.clock.advance(days(1));
    let report = run_retention(&srv, false).await;
    assert_eq!(report["holds_released"], 1, "{report}");
    let report = run_retention(&srv, false).await;
    assert_eq!(
        report["holds_released"], 0,
        "nothing is held any more: {report}"
    );

    let released = audit(&srv, &f.t, "action=record_expire").await;
    let mut ids: Vec<String> = released
        .iter()
        .filter(|e| e["detail"]["reason"] == "legal hold ended")
        .map(id_of_record)
        .collect();
    ids.sort();
    let mut expected: Vec<String> = f.a_billing.iter().map(id).collect();
    expected.sort();
    assert_eq!(
        ids, expected,
        "one record_expire event per released invoice: {released:?}"
    );
    assert!(
        released
            .iter()
            .all(|e| e["collection"] == "billing" && e["actor"]["id"] == "system:retention")
    );
}

fn id_of_record(e: &Value) -> String {
    e["record"]
        .as_str()
        .unwrap_or_else(|| panic!("no record in {e}"))
        .to_owned()
}

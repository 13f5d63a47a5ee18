//! Restriction and objection (GDPR Art. 18 and 21): per purpose, or everything but essential
//! processing, until lifted.

use reqwest::StatusCode;
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};

use crate::support::{
    ANALYTICS, ESSENTIAL, LEGAL, MARKETING, SECURITY, assert_error, audit, enc, export_path, id,
    list_path, lookup_path, read_path, subject_path, write,
};

const EMAIL: &str = "shared.inbox@restrict-example.org";
const IP: &str = "203.0.113.44";

struct Fixture {
    t: TenantFixture,
    /// The subject that objects.
    a: String,
    a_contact: String,
    a_visit: String,
    a_invoice: String,
    /// Another subject with the same e-mail address and IP, which objects to nothing.
    b: String,
    b_contact: String,
    b_visit: String,
}

async fn fixture(srv: &TestServer) -> Fixture {
    let t = srv.tenant("Objection Co").await;
    let a = srv.subject(&t).await;
    let a_contact = id(&write(
        srv,
        &t,
        &a,
        "contact",
        json!({ "name": "Aurelie Nope", "email": EMAIL }),
    )
    .await);
    let a_visit = id(&write(
        srv,
        &t,
        &a,
        "browser_visit",
        json!({ "ip": IP, "visited_at": "2026-01-15T08:00:00Z" }),
    )
    .await);
    let a_invoice = id(&write(
        srv,
        &t,
        &a,
        "billing",
        json!({ "invoice_number": "INV-R-1", "amount": "10.00", "billing_name": "Aurelie Nope", "issued_on": "2026-01-15" }),
    )
    .await);
    let b = srv.subject(&t).await;
    let b_contact = id(&write(
        srv,
        &t,
        &b,
        "contact",
        json!({ "name": "Bob Fine", "email": EMAIL }),
    )
    .await);
    let b_visit = id(&write(
        srv,
        &t,
        &b,
        "browser_visit",
        json!({ "ip": IP, "visited_at": "2026-01-15T08:30:00Z" }),
    )
    .await);
    Fixture {
        t,
        a,
        a_contact,
        a_visit,
        a_invoice,
        b,
        b_contact,
        b_visit,
    }
}

fn restrictions_path(f: &Fixture) -> String {
    format!("{}/restrictions", subject_path(&f.t.id, &f.a))
}

async fn restrict(srv: &TestServer, f: &Fixture, body: Value) -> (StatusCode, Value) {
    srv.post(&restrictions_path(f), &f.t.owner, body).await
}

async fn lift(srv: &TestServer, f: &Fixture, purpose: Option<&str>) -> (StatusCode, Value) {
    let path = match purpose {
        Some(p) => format!("{}?purpose={}", restrictions_path(f), enc(p)),
        None => restrictions_path(f),
    };
    srv.delete(&path, &f.t.owner).await
}

/// Status of reading one of A's records for `purpose`.
async fn read(srv: &TestServer, f: &Fixture, record: &str, purpose: &str) -> (StatusCode, Value) {
    srv.get(&read_path(&f.t.id, &f.a, record, purpose), &f.t.owner)
        .await
}

#[track_caller]
fn assert_restricted(resp: &(StatusCode, Value), purpose: &str) {
    assert_error(resp, StatusCode::FORBIDDEN, "processing_restricted");
    assert!(
        resp.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains(purpose),
        "the refusal names the purpose: {}",
        resp.1
    );
}

#[track_caller]
fn assert_readable(resp: &(StatusCode, Value), record: &str) {
    assert_eq!(resp.0, StatusCode::OK, "{}", resp.1);
    assert_eq!(resp.1["id"], record, "{}", resp.1);
}

/// Subject ids of a lookup's hits.
async fn lookup_subjects(
    srv: &TestServer,
    f: &Fixture,
    collection: &str,
    field: &str,
    value: &str,
    purpose: &str,
) -> Vec<String> {
    let (st, hits) = srv
        .get(
            &lookup_path(&f.t.id, collection, field, value, purpose),
            &f.t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{hits}");
    let mut out: Vec<String> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["subject"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn restricting_a_purpose_stops_only_that_purpose_for_only_that_subject() {
    let srv = crate::start().await;
    let f = fixture(&srv).await;
    assert_readable(&read(&srv, &f, &f.a_contact, MARKETING).await, &f.a_contact);

    let (st, b) = restrict(&srv, &f, json!({ "purposes": [MARKETING] })).await;
    assert_eq!(
        (st, b),
        (StatusCode::OK, json!({ "restrictions": [MARKETING] }))
    );

    assert_restricted(&read(&srv, &f, &f.a_contact, MARKETING).await, MARKETING);
    assert_readable(&read(&srv, &f, &f.a_contact, ESSENTIAL).await, &f.a_contact);
    assert_readable(
        &read(&srv, &f, &f.a_contact, "essential.service.authentication").await,
        &f.a_contact,
    );
    assert_readable(&read(&srv, &f, &f.a_visit, ANALYTICS).await, &f.a_visit);
    let (st, rec) = srv
        .get(
            &read_path(&f.t.id, &f.b, &f.b_contact, MARKETING),
            &f.t.owner,
        )
        .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "another subject's objection does not apply to B: {rec}"
    );

    // A list for the restricted purpose gives none of A's records (the objection covers the
    // subject, so the whole list is refused); a list for another purpose gives them all.
    let resp = srv
        .get(&list_path(&f.t.id, &f.a, MARKETING), &f.t.owner)
        .await;
    assert_restricted(&resp, MARKETING);
    let (st, list) = srv
        .get(&list_path(&f.t.id, &f.a, ESSENTIAL), &f.t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![f.a_contact.as_str()],
        "contact is the only collection of A allowing essential.service"
    );

    // A lookup across subjects leaves the objecting subject out.
    assert_eq!(
        lookup_subjects(&srv, &f, "contact", "email", EMAIL, MARKETING).await,
        vec![f.b.clone()]
    );
    assert_eq!(
        lookup_subjects(&srv, &f, "contact", "email", EMAIL, ESSENTIAL).await,
        sorted(vec![f.a.clone(), f.b.clone()])
    );

    // The export tells the subject what is restricted.
    let (st, doc) = srv.get(&export_path(&f.t.id, &f.a), &f.t.owner).await;
    assert_eq!(st, StatusCode::OK, "{doc}");
    assert_eq!(doc["subject"]["restrictions"], json!([MARKETING]));

    // The refusal is audited as a denial for that purpose.
    let denied = audit(
        &srv,
        &f.t,
        &format!("subject={}&action=record_read&outcome=denied", f.a),
    )
    .await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["purpose"], MARKETING);
    assert_eq!(denied[0]["record"], f.a_contact.as_str());
    let restricts = audit(
        &srv,
        &f.t,
        &format!("subject={}&action=subject_restrict", f.a),
    )
    .await;
    assert_eq!(restricts.len(), 1, "{restricts:?}");
}

#[tokio::test]
async fn objecting_to_everything_non_essential_keeps_service_and_legal_obligations() {
    let srv = crate::start().await;
    let f = fixture(&srv).await;
    let (st, b) = restrict(&srv, &f, json!({ "all_non_essential": true })).await;
    assert_eq!(
        (st, b),
        (
            StatusCode::OK,
            json!({ "restrictions": ["all_non_essential"] })
        )
    );

    for purpose in [
        ANALYTICS,
        "personalize.content",
        "functional.service.improve",
    ] {
        assert_restricted(&read(&srv, &f, &f.a_visit, purpose).await, purpose);
    }
    assert_restricted(&read(&srv, &f, &f.a_contact, MARKETING).await, MARKETING);
    assert_readable(&read(&srv, &f, &f.a_visit, SECURITY).await, &f.a_visit);
    for purpose in [
        ESSENTIAL,
        "essential.service.authentication",
        "essential.service.operations.support",
    ] {
        assert_readable(&read(&srv, &f, &f.a_contact, purpose).await, &f.a_contact);
    }
    for purpose in [LEGAL, "essential.service.payment_processing"] {
        assert_readable(&read(&srv, &f, &f.a_invoice, purpose).await, &f.a_invoice);
    }
    let (st, rec) = srv
        .get(&read_path(&f.t.id, &f.b, &f.b_visit, ANALYTICS), &f.t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{rec}");
    assert_eq!(
        lookup_subjects(&srv, &f, "browser_visit", "ip", IP, ANALYTICS).await,
        vec![f.b.clone()]
    );
    assert_eq!(
        lookup_subjects(&srv, &f, "browser_visit", "ip", IP, SECURITY).await,
        sorted(vec![f.a.clone(), f.b.clone()])
    );
    assert_restricted(
        &srv.get(&list_path(&f.t.id, &f.a, ANALYTICS), &f.t.owner)
            .await,
        ANALYTICS,
    );
    // essential.service.security is allowed for browser_visit, and for contact through its
    // parent essential.service.
    let (st, list) = srv
        .get(&list_path(&f.t.id, &f.a, SECURITY), &f.t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let ids: Vec<String> = list.as_array().unwrap().iter().map(id).collect();
    assert_eq!(
        sorted(ids),
        sorted(vec![f.a_contact.clone(), f.a_visit.clone()]),
        "{list}"
    );
}

#[tokio::test]
async fn essential_purposes_cannot_be_restricted() {
    let srv = crate::start().await;
    let f = fixture(&srv).await;
    for purposes in [
        json!([ESSENTIAL]),
        json!([LEGAL]),
        json!(["essential"]),
        json!([MARKETING, SECURITY]),
    ] {
        let resp = restrict(&srv, &f, json!({ "purposes": purposes })).await;
        assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "essential_purpose");
        assert_eq!(resp.1["error"]["field"], "purposes", "{}", resp.1);
    }
    // The refused mixed request applied nothing, not even its non-essential part.
    assert_readable(&read(&srv, &f, &f.a_contact, MARKETING).await, &f.a_contact);
    let (_, doc) = srv.get(&export_path(&f.t.id, &f.a), &f.t.owner).await;
    assert_eq!(doc["subject"]["restrictions"], json!([]), "{doc}");

    assert_error(
        &restrict(&srv, &f, json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "empty_restriction",
    );
    assert_error(
        &restrict(&srv, &f, json!({ "purposes": [] })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "empty_restriction",
    );
    assert_error(
        &restrict(
            &srv,
            &f,
            json!({ "purposes": ["marketing.carrier_pigeons"] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_purpose",
    );

    let unknown = format!(
        "{}/restrictions",
        subject_path(&f.t.id, "0190a5d2-0000-7000-8000-000000000000")
    );
    assert_error(
        &srv.post(&unknown, &f.t.owner, json!({ "purposes": [MARKETING] }))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let member = srv.key(&f.t.id, &f.t.owner, "member", &[MARKETING]).await;
    let resp = srv
        .post(
            &restrictions_path(&f),
            &member,
            json!({ "purposes": [MARKETING] }),
        )
        .await;
    assert_error(&resp, StatusCode::FORBIDDEN, "role_not_permitted");
    assert_readable(&read(&srv, &f, &f.a_contact, MARKETING).await, &f.a_contact);
}

#[tokio::test]
async fn a_parent_purpose_restriction_covers_its_children() {
    let srv = crate::start().await;
    let f = fixture(&srv).await;
    let (st, b) = restrict(&srv, &f, json!({ "purposes": ["marketing"] })).await;
    assert_eq!(
        (st, b),
        (StatusCode::OK, json!({ "restrictions": ["marketing"] }))
    );
    assert_restricted(&read(&srv, &f, &f.a_contact, MARKETING).await, MARKETING);
    assert_readable(&read(&srv, &f, &f.a_visit, ANALYTICS).await, &f.a_visit);
    assert_readable(&read(&srv, &f, &f.a_contact, ESSENTIAL).await, &f.a_contact);
}

#[tokio::test]
async fn lifting_restrictions_restores_exactly_what_was_lifted() {
    let srv = crate::start().await;
    let f = fixture(&srv).await;
    let (st, b) = restrict(
        &srv,
        &f,
        json!({ "purposes": [MARKETING, ANALYTICS], "all_non_essential": true }),
    )
    .await;
    assert_eq!(
        (st, b),
        (
            StatusCode::OK,
            json!({ "restrictions": ["all_non_essential", ANALYTICS, MARKETING] })
        )
    );
    // Restricting again adds no duplicates.
    let (st, b) = restrict(&srv, &f, json!({ "purposes": [MARKETING] })).await;
    assert_eq!(
        (st, b),
        (
            StatusCode::OK,
            json!({ "restrictions": ["all_non_essential", ANALYTICS, MARKETING] })
        )
    );

    // Lifting analytics alone leaves it covered by the blanket objection.
    let (st, b) = lift(&srv, &f, Some(ANALYTICS)).await;
    assert_eq!(
        (st, b),
        (
            StatusCode::OK,
            json!({ "restrictions": ["all_non_essential", MARKETING] })
        )
    );
    assert_restricted(&read(&srv, &f, &f.a_visit, ANALYTICS).await, ANALYTICS);

    // Lifting the blanket objection frees analytics and personalization, not marketing.
    let (st, b) = lift(&srv, &f, Some("all_non_essential")).await;
    assert_eq!(
        (st, b),
        (StatusCode::OK, json!({ "restrictions": [MARKETING] }))
    );
    assert_readable(&read(&srv, &f, &f.a_visit, ANALYTICS).await, &f.a_visit);
    assert_readable(
        &read(&srv, &f, &f.a_visit, "personalize.content").await,
        &f.a_visit,
    );
    assert_restricted(&read(&srv, &f, &f.a_contact, MARKETING).await, MARKETING);

    // Lifting something not restricted changes nothing.
    let (st, b) = lift(&srv, &f, Some("personalize.content")).await;
    assert_eq!(
        (st, b),
        (StatusCode::OK, json!({ "restrictions": [MARKETING] }))
    );

    // Lifting everything.
    let (st, b) = lift(&srv, &f, None).await;
    assert_eq!((st, b), (StatusCode::OK, json!({ "restrictions": [] })));
    assert_readable(&read(&srv, &f, &f.a_contact, MARKETING).await, &f.a_contact);
    let (st, list) = srv
        .get(&list_path(&f.t.id, &f.a, MARKETING), &f.t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        lookup_subjects(&srv, &f, "contact", "email", EMAIL, MARKETING).await,
        sorted(vec![f.a.clone(), f.b.clone()])
    );
    let lifts = audit(
        &srv,
        &f.t,
        &format!("subject={}&action=subject_unrestrict", f.a),
    )
    .await;
    assert_eq!(lifts.len(), 4, "{lifts:?}");
}

//! Data-subject requests as tracked objects: opened with who verified the requester, due one
//! month later (GDPR Art. 12(3)), completed by performing them, or rejected with a reason.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};

use crate::support::{ESSENTIAL, MARKETING, assert_error, at, days, id, read_path, write};

const KINDS: [&str; 5] = [
    "access",
    "portability",
    "erasure",
    "rectification",
    "restriction",
];

fn requests_path(t: &TenantFixture) -> String {
    format!("/v1/tenants/{}/requests", t.id)
}

async fn open(srv: &TestServer, t: &TenantFixture, body: Value) -> Value {
    let (st, b) = srv.post(&requests_path(t), &t.owner, body).await;
    assert_eq!(st, StatusCode::CREATED, "open request: {b}");
    b
}

fn body(kind: &str, subject: &str) -> Value {
    let mut b = json!({ "kind": kind, "subject": subject, "verified_by": "support:jane via account login" });
    if kind == "restriction" {
        b["purposes"] = json!([MARKETING]);
    }
    b
}

async fn complete(
    srv: &TestServer,
    t: &TenantFixture,
    request: &Value,
    how: Option<Value>,
) -> (StatusCode, Value) {
    let path = format!("{}/{}/complete", requests_path(t), id(request));
    srv.call(Method::POST, &path, Some(&t.owner), how).await
}

async fn reject(
    srv: &TestServer,
    t: &TenantFixture,
    request: &Value,
    reason: &str,
) -> (StatusCode, Value) {
    srv.post(
        &format!("{}/{}/reject", requests_path(t), id(request)),
        &t.owner,
        json!({ "reason": reason }),
    )
    .await
}

async fn list(srv: &TestServer, t: &TenantFixture, query: &str) -> Vec<Value> {
    let (st, b) = srv
        .get(&format!("{}?{query}", requests_path(t)), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    b.as_array().unwrap().clone()
}

fn ids(v: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = v.iter().map(id).collect();
    out.sort();
    out
}

#[tokio::test]
async fn requests_are_due_in_a_month_and_listed_as_overdue_after_it() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Requests Co").await;
    let mut opened = Vec::new();
    for kind in KINDS {
        let r = open(&srv, &t, body(kind, &s)).await;
        assert_eq!(r["kind"], kind);
        assert_eq!(r["subject"], s.as_str());
        assert_eq!(r["status"], "open");
        assert_eq!(r["verified_by"], "support:jane via account login");
        assert_eq!(at(&r["created_at"]), srv.vault.now());
        assert_eq!(at(&r["due_at"]) - at(&r["created_at"]), days(30), "{r}");
        assert_eq!(r["closed_at"], Value::Null);
        assert_eq!(r["overdue"], false);
        opened.push(r);
    }
    assert_eq!(
        opened[4]["detail"],
        json!({ "purposes": [MARKETING], "all_non_essential": false })
    );
    assert_eq!(ids(&list(&srv, &t, "status=open").await), ids(&opened));
    assert_eq!(list(&srv, &t, "overdue=true").await, Vec::<Value>::new());

    // Day 29: still in time. Day 31: every one of them is overdue.
    srv.clock.advance(days(29));
    assert_eq!(list(&srv, &t, "overdue=true").await, Vec::<Value>::new());
    srv.clock.advance(days(2));
    let overdue = list(&srv, &t, "overdue=true").await;
    assert_eq!(ids(&overdue), ids(&opened));
    assert!(overdue.iter().all(|r| r["overdue"] == true), "{overdue:?}");

    // Closing one takes it off the overdue list, and a closed request is never overdue.
    let (st, done) = reject(
        &srv,
        &t,
        &opened[0],
        "requester did not answer the verification e-mail",
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["overdue"], false);
    assert_eq!(list(&srv, &t, "overdue=true").await.len(), 4);
    assert_eq!(
        ids(&list(&srv, &t, "status=rejected").await),
        vec![id(&opened[0])]
    );
    assert_eq!(
        list(&srv, &t, "status=completed").await,
        Vec::<Value>::new()
    );
    assert_eq!(list(&srv, &t, "").await.len(), 5);
}

#[tokio::test]
async fn completing_a_request_performs_it() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Complete Co").await;
    let contact = write(
        &srv,
        &t,
        &s,
        "contact",
        json!({ "name": "Mary Somervile", "email": "mary@example.org" }),
    )
    .await;
    let contact_id = id(&contact);
    srv.clock.advance(days(3));

    // Access and portability: the result is the subject's export.
    for kind in ["access", "portability"] {
        let r = open(&srv, &t, body(kind, &s)).await;
        let (st, done) = complete(&srv, &t, &r, None).await;
        assert_eq!(st, StatusCode::OK, "{done}");
        assert_eq!(done["status"], "completed");
        assert_eq!(at(&done["closed_at"]), srv.vault.now());
        assert_eq!(done["detail"]["outcome"], json!({ "delivered": true }));
        let doc = &done["result"];
        assert_eq!(doc["format"], "ward.subject-export.v1", "{done}");
        assert_eq!(doc["subject"]["id"], s.as_str());
        assert_eq!(doc["records"][0]["id"], contact_id.as_str());
        assert_eq!(doc["records"][0]["fields"], contact["fields"]);
    }

    // Restriction: the restriction is in force afterwards.
    let r = open(&srv, &t, body("restriction", &s)).await;
    let (st, rec) = srv
        .get(&read_path(&t.id, &s, &contact_id, MARKETING), &t.owner)
        .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "an open restriction request restricts nothing yet: {rec}"
    );
    let (st, done) = complete(&srv, &t, &r, None).await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["result"], json!({ "restrictions": [MARKETING] }));
    assert_error(
        &srv.get(&read_path(&t.id, &s, &contact_id, MARKETING), &t.owner)
            .await,
        StatusCode::FORBIDDEN,
        "processing_restricted",
    );

    // Rectification: needs the record and the corrected fields, and changes the record.
    let r = open(&srv, &t, body("rectification", &s)).await;
    assert_error(
        &complete(&srv, &t, &r, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "fields_required",
    );
    assert_error(
        &complete(&srv, &t, &r, Some(json!({ "record": contact_id }))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "fields_required",
    );
    let (st, still) = srv
        .get(&format!("{}?status=open", requests_path(&t)), &t.owner)
        .await;
    assert_eq!(
        (st, still[0]["id"].clone()),
        (StatusCode::OK, r["id"].clone()),
        "a failed completion leaves the request open"
    );
    let (st, done) = complete(
        &srv,
        &t,
        &r,
        Some(json!({ "record": contact_id, "fields": { "name": "Mary Somerville" } })),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(
        done["result"],
        json!({ "record": contact_id, "revision": 2 })
    );
    let (st, rec) = srv
        .get(&read_path(&t.id, &s, &contact_id, ESSENTIAL), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{rec}");
    assert_eq!(
        rec["fields"],
        json!({ "name": "Mary Somerville", "email": "mary@example.org" })
    );
    assert_eq!(rec["revision"], 2);

    // Erasure: the subject is gone afterwards.
    let r = open(&srv, &t, body("erasure", &s)).await;
    let (st, done) = complete(&srv, &t, &r, None).await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["result"]["subject"], s.as_str());
    assert_eq!(done["result"]["records_erased"], 1);
    assert_eq!(done["result"]["already_erased"], false);
    assert_eq!(
        done["detail"]["outcome"]["records_erased"], 1,
        "the outcome is recorded with the request"
    );
    assert_error(
        &srv.get(&read_path(&t.id, &s, &contact_id, ESSENTIAL), &t.owner)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Completing (or rejecting) a closed request is a conflict.
    assert_error(
        &complete(&srv, &t, &r, None).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_error(
        &reject(&srv, &t, &r, "too late").await,
        StatusCode::CONFLICT,
        "conflict",
    );
    let completed = list(&srv, &t, "status=completed").await;
    assert_eq!(completed.len(), 5, "{completed:?}");
    assert!(
        completed
            .iter()
            .all(|r| r["closed_at"].is_string() && r.get("result").is_none()),
        "{completed:?}"
    );
}

#[tokio::test]
async fn rejecting_a_request_records_the_reason() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Reject Co").await;
    let r = open(&srv, &t, body("erasure", &s)).await;
    assert_error(
        &reject(&srv, &t, &r, "   ").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_reason",
    );
    let (st, done) = reject(&srv, &t, &r, "identity could not be verified").await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "rejected");
    assert_eq!(
        done["detail"]["outcome"],
        json!({ "reason": "identity could not be verified" })
    );
    assert_eq!(at(&done["closed_at"]), srv.vault.now());
    assert!(done.get("result").is_none(), "{done}");
    // Nothing was erased, and the request cannot be completed or rejected again.
    let (st, doc) = srv
        .get(&crate::support::export_path(&t.id, &s), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{doc}");
    assert_error(
        &complete(&srv, &t, &r, None).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_error(
        &reject(&srv, &t, &r, "again").await,
        StatusCode::CONFLICT,
        "conflict",
    );
    let listed = list(&srv, &t, "status=rejected").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0]["detail"]["outcome"]["reason"],
        "identity could not be verified"
    );
}

#[tokio::test]
async fn invalid_requests_are_refused() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Invalid Requests Co").await;
    let post = |b: Value| {
        let srv = &srv;
        let path = requests_path(&t);
        let owner = t.owner.clone();
        async move { srv.post(&path, &owner, b).await }
    };
    let resp =
        post(json!({ "kind": "deletion", "subject": s, "verified_by": "support:jane" })).await;
    assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_kind");
    assert_eq!(resp.1["error"]["field"], "kind");
    assert_error(
        &post(json!({ "kind": "access", "subject": s, "verified_by": " " })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_verified_by",
    );
    assert_error(
        &post(json!({ "kind": "restriction", "subject": s, "verified_by": "x" })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "empty_restriction",
    );
    assert_error(
        &post(json!({ "kind": "restriction", "subject": s, "verified_by": "x", "purposes": ["nope"] })).await,
        StatusCode::BAD_REQUEST,
        "invalid_purpose",
    );
    assert_error(
        &post(json!({ "kind": "access", "subject": "0190a5d2-0000-7000-8000-000000000000", "verified_by": "x" })).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &post(json!({ "kind": "access", "verified_by": "x" })).await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    );
    assert_eq!(
        list(&srv, &t, "").await,
        Vec::<Value>::new(),
        "no refused request was stored"
    );

    let member = srv.key(&t.id, &t.owner, "member", &[ESSENTIAL]).await;
    let resp = srv
        .post(&requests_path(&t), &member, body("access", &s))
        .await;
    assert_error(&resp, StatusCode::FORBIDDEN, "role_not_permitted");
    assert_error(
        &srv.get(&requests_path(&t), &member).await,
        StatusCode::FORBIDDEN,
        "role_not_permitted",
    );
    let resp = srv
        .get(&format!("{}?status=pending", requests_path(&t)), &t.owner)
        .await;
    assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_status");
    let unknown = json!({ "id": "0190a5d2-0000-7000-8000-000000000000" });
    assert_error(
        &complete(&srv, &t, &unknown, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // Another tenant neither sees nor completes this tenant's requests.
    let r = open(&srv, &t, body("access", &s)).await;
    let other = srv.tenant("Other Co").await;
    let resp = srv
        .call(
            Method::POST,
            &format!("{}/{}/complete", requests_path(&t), id(&r)),
            Some(&other.owner),
            None,
        )
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(list(&srv, &other, "").await, Vec::<Value>::new());
}

#[tokio::test]
async fn a_request_that_cannot_be_performed_stays_open() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Stuck Requests Co").await;
    let other = srv.subject(&t).await;
    let mine = write(
        &srv,
        &t,
        &s,
        "contact",
        json!({ "name": "Mine", "email": "mine@example.org" }),
    )
    .await;
    let theirs = write(
        &srv,
        &t,
        &other,
        "contact",
        json!({ "name": "Theirs", "email": "theirs@example.org" }),
    )
    .await;

    // A rectification can only correct the requester's own records.
    let r = open(&srv, &t, body("rectification", &s)).await;
    let resp = complete(
        &srv,
        &t,
        &r,
        Some(json!({ "record": id(&theirs), "fields": { "name": "Hijacked" } })),
    )
    .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    let (st, rec) = srv
        .get(&read_path(&t.id, &other, &id(&theirs), ESSENTIAL), &t.owner)
        .await;
    assert_eq!(
        (st, &rec["fields"]["name"]),
        (StatusCode::OK, &json!("Theirs")),
        "{rec}"
    );
    let (st, done) = complete(
        &srv,
        &t,
        &r,
        Some(json!({ "record": id(&mine), "fields": { "name": "Mine, corrected" } })),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{done}");

    // An erasure under a litigation hold waits for the hold.
    let (st, _) = crate::support::hold(&srv, &t, &s, Some(srv.vault.now() + days(10))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let r = open(&srv, &t, body("erasure", &s)).await;
    assert_error(
        &complete(&srv, &t, &r, None).await,
        StatusCode::FORBIDDEN,
        "subject_on_hold",
    );
    assert_eq!(ids(&list(&srv, &t, "status=open").await), vec![id(&r)]);
    let (st, _) = crate::support::hold(&srv, &t, &s, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, done) = complete(&srv, &t, &r, None).await;
    assert_eq!(
        (st, &done["status"]),
        (StatusCode::OK, &json!("completed")),
        "{done}"
    );
}

//! What each role may do inside its own tenant: member, auditor, admin, owner, operator.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};

use crate::common::*;

/// A tenant with a contact and a job application for one subject.
struct World {
    t: TenantFixture,
    s: String,
    contact: String,
    job: String,
}

async fn world(srv: &TestServer) -> World {
    let t = srv.tenant("Roles").await;
    let s = subject_with_ref(srv, &t, "roles-1").await;
    let contact = srv.record(&t, &s, "contact", contact()).await;
    let job = srv
        .record(&t, &s, "job_application", sample("job_application").input)
        .await;
    World { t, s, contact, job }
}

/// Every personal-data endpoint of the tenant, each of which writes or reveals data.
fn data_endpoints(w: &World) -> Vec<(Method, String, Option<Value>)> {
    let t = &w.t.id;
    vec![
        (
            Method::POST,
            subjects_path(t),
            Some(json!({ "external_ref": "new" })),
        ),
        (
            Method::GET,
            format!("{}?external_ref=roles-1", subjects_path(t)),
            None,
        ),
        (
            Method::POST,
            records_path(t, &w.s),
            Some(json!({ "collection": "contact", "fields": contact() })),
        ),
        (Method::GET, list_path(t, &w.s, ESSENTIAL), None),
        (Method::GET, read_path(t, &w.s, &w.contact, ESSENTIAL), None),
        (
            Method::PATCH,
            record_path(t, &w.s, &w.contact),
            Some(json!({ "purpose": "essential.service", "fields": { "name": "Changed" } })),
        ),
        (Method::DELETE, record_path(t, &w.s, &w.contact), None),
        (
            Method::GET,
            lookup_path(t, "contact", "email", "ada@example.com", ESSENTIAL),
            None,
        ),
        (
            Method::POST,
            format!("/v1/tenants/{t}/batch"),
            Some(
                json!({ "items": [{ "op": "create_record", "subject": w.s, "collection": "contact", "fields": contact() }] }),
            ),
        ),
    ]
}

/// The world is as `world` made it.
async fn assert_untouched(srv: &TestServer, w: &World) {
    let got = read(srv, &w.t, &w.s, &w.contact, ESSENTIAL).await;
    assert_eq!(got["revision"], 1, "{got}");
    assert_eq!(got["fields"]["name"], "Ada Lovelace");
    let mut want = vec![w.contact.clone(), w.job.clone()];
    want.sort();
    assert_eq!(all_record_ids(srv, &w.t, &w.s).await, want);
    let resp = srv
        .get(
            &format!("{}?external_ref=new", subjects_path(&w.t.id)),
            &w.t.owner,
        )
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn operator_gets_404_on_every_personal_data_endpoint() {
    let srv = crate::start().await;
    let w = world(&srv).await;
    for (method, path, body) in data_endpoints(&w) {
        let resp = srv
            .call(method.clone(), &path, Some(&srv.operator), body)
            .await;
        assert_eq!(resp.0, StatusCode::NOT_FOUND, "{method} {path}: {}", resp.1);
        assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
        assert!(!resp.1.to_string().contains("Ada"), "{}", resp.1);
    }
    let resp = srv
        .get(&format!("/v1/tenants/{}/audit", w.t.id), &srv.operator)
        .await;
    assert_error(&resp, StatusCode::NOT_FOUND, "not_found");
    assert_untouched(&srv, &w).await;
    // What operators are for still works.
    let (st, _) = srv
        .get(&format!("/v1/tenants/{}", w.t.id), &srv.operator)
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, keys) = srv
        .get(&format!("/v1/tenants/{}/keys", w.t.id), &srv.operator)
        .await;
    assert_eq!(st, StatusCode::OK, "{keys}");
    let (st, b) = srv
        .post("/v1/tenants", &srv.operator, json!({ "name": "Another" }))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
}

#[tokio::test]
async fn auditor_reads_the_audit_log_and_nothing_else() {
    let srv = crate::start().await;
    let w = world(&srv).await;
    let auditor = srv.key(&w.t.id, &w.t.owner, "auditor", &[]).await;
    for (method, path, body) in data_endpoints(&w) {
        let resp = srv.call(method.clone(), &path, Some(&auditor), body).await;
        assert_eq!(resp.0, StatusCode::FORBIDDEN, "{method} {path}: {}", resp.1);
        assert_error(&resp, StatusCode::FORBIDDEN, "role_not_permitted");
    }
    assert_untouched(&srv, &w).await;
    let (st, page) = srv
        .get(&format!("/v1/tenants/{}/audit", w.t.id), &auditor)
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(!page["events"].as_array().expect("events").is_empty());
    // The auditor may read the tenant itself.
    let (st, _) = srv.get(&format!("/v1/tenants/{}", w.t.id), &auditor).await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn member_reads_only_for_its_purposes() {
    let srv = crate::start().await;
    let w = world(&srv).await;
    let member = srv.key(&w.t.id, &w.t.owner, "member", &[ESSENTIAL]).await;
    let t = &w.t.id;
    // Its purpose: fine.
    let (st, got) = srv
        .get(&read_path(t, &w.s, &w.contact, ESSENTIAL), &member)
        .await;
    assert_eq!(st, StatusCode::OK, "{got}");
    assert_eq!(got["fields"]["email"], "ada@example.com");
    let (st, list) = srv.get(&list_path(t, &w.s, ESSENTIAL), &member).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let (st, hits) = srv
        .get(
            &lookup_path(t, "contact", "email", "ada@example.com", ESSENTIAL),
            &member,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(hits.as_array().map(Vec::len), Some(1), "{hits}");
    // A purpose the collection allows but the key does not hold.
    for path in [
        read_path(t, &w.s, &w.contact, MARKETING),
        list_path(t, &w.s, MARKETING),
        lookup_path(t, "contact", "email", "ada@example.com", MARKETING),
        read_path(t, &w.s, &w.job, RECRUITMENT),
        list_path(t, &w.s, RECRUITMENT),
        // A sub-purpose is another purpose: the key names essential.service only.
        read_path(t, &w.s, &w.contact, SECURITY),
    ] {
        let resp = srv.get(&path, &member).await;
        let err = assert_error(&resp, StatusCode::FORBIDDEN, "purpose_not_allowed");
        let purpose = path
            .split("purpose=")
            .nth(1)
            .and_then(|p| p.split('&').next())
            .unwrap_or_default();
        assert!(
            err["message"]
                .as_str()
                .unwrap_or_default()
                .contains(purpose),
            "names {purpose}: {err}"
        );
        assert!(!resp.1.to_string().contains("Grace"), "{}", resp.1);
    }
}

#[tokio::test]
async fn member_writes_only_collections_its_purposes_cover() {
    let srv = crate::start().await;
    let w = world(&srv).await;
    let member = srv.key(&w.t.id, &w.t.owner, "member", &[ESSENTIAL]).await;
    let t = &w.t.id;
    // Covered: contact allows essential.service.
    let (st, c) = srv
        .post(
            &records_path(t, &w.s),
            &member,
            json!({ "collection": "contact", "fields": contact() }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let new_contact = c["id"].as_str().expect("id").to_owned();
    let (st, p) = srv
        .patch(
            &record_path(t, &w.s, &new_contact),
            &member,
            json!({ "purpose": "essential.service", "fields": { "name": "M" } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let (st, _) = srv
        .delete(&record_path(t, &w.s, &new_contact), &member)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, subj) = srv.post(&subjects_path(t), &member, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{subj}");
    // Not covered: job_application is for recruitment only.
    let resp = srv
        .post(
            &records_path(t, &w.s),
            &member,
            json!({ "collection": "job_application", "fields": sample("job_application").input }),
        )
        .await;
    assert_error_mentioning(
        &resp,
        StatusCode::FORBIDDEN,
        "purpose_not_allowed",
        "job_application",
    );
    let resp = srv
        .patch(
            &record_path(t, &w.s, &w.job),
            &member,
            json!({ "purpose": "essential.service", "fields": { "name": "Hijacked" } }),
        )
        .await;
    assert_error(&resp, StatusCode::FORBIDDEN, "purpose_not_allowed");
    let resp = srv.delete(&record_path(t, &w.s, &w.job), &member).await;
    assert_error(&resp, StatusCode::FORBIDDEN, "purpose_not_allowed");
    let resp = srv
        .post(
            &format!("/v1/tenants/{t}/batch"),
            &member,
            json!({ "items": [{ "op": "create_record", "subject": w.s, "collection": "billing", "fields": sample("billing").input }] }),
        )
        .await;
    assert_error(&resp, StatusCode::FORBIDDEN, "purpose_not_allowed");
    let job = read(&srv, &w.t, &w.s, &w.job, RECRUITMENT).await;
    assert_eq!(job["revision"], 1);
    assert_eq!(job["fields"]["name"], "Grace Hopper");
    let mut want = vec![w.contact.clone(), w.job.clone()];
    want.sort();
    assert_eq!(all_record_ids(&srv, &w.t, &w.s).await, want);
    // Members do not read the audit log.
    let resp = srv.get(&format!("/v1/tenants/{t}/audit"), &member).await;
    assert_error(&resp, StatusCode::FORBIDDEN, "role_not_permitted");
}

#[tokio::test]
async fn a_recruitment_member_sees_only_recruitment_data() {
    let srv = crate::start().await;
    let w = world(&srv).await;
    let hr = srv.key(&w.t.id, &w.t.owner, "member", &[RECRUITMENT]).await;
    let (st, list) = srv.get(&list_path(&w.t.id, &w.s, RECRUITMENT), &hr).await;
    assert_eq!(st, StatusCode::OK);
    let list = list.as_array().expect("array").clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], w.job.as_str());
    let resp = srv
        .get(&read_path(&w.t.id, &w.s, &w.contact, ESSENTIAL), &hr)
        .await;
    assert_error(&resp, StatusCode::FORBIDDEN, "purpose_not_allowed");
    let resp = srv
        .post(
            &records_path(&w.t.id, &w.s),
            &hr,
            json!({ "collection": "contact", "fields": contact() }),
        )
        .await;
    assert_error(&resp, StatusCode::FORBIDDEN, "purpose_not_allowed");
    assert_untouched(&srv, &w).await;
}

#[tokio::test]
async fn admin_reads_and_writes_data() {
    let srv = crate::start().await;
    let w = world(&srv).await;
    let admin = srv.key(&w.t.id, &w.t.owner, "admin", &[]).await;
    let t = &w.t.id;
    let (st, got) = srv
        .get(&read_path(t, &w.s, &w.job, RECRUITMENT), &admin)
        .await;
    assert_eq!(st, StatusCode::OK, "{got}");
    let (st, p) = srv
        .patch(
            &record_path(t, &w.s, &w.contact),
            &admin,
            json!({ "purpose": "essential.service", "fields": { "name": "By Admin" } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let (st, c) = srv
        .post(
            &records_path(t, &w.s),
            &admin,
            json!({ "collection": "billing", "fields": sample("billing").input }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    // Admins are not limited to purposes, but collections still are.
    let resp = srv
        .get(&read_path(t, &w.s, &w.job, ESSENTIAL), &admin)
        .await;
    assert_error(&resp, StatusCode::FORBIDDEN, "purpose_not_allowed");
}

#[tokio::test]
async fn admin_reads_the_audit_log() {
    // The permission table (`ward roles`): a tenant's owner and admins manage members, API
    // keys, support grants and data-subject requests, and read the audit log of every access
    // to their organization; `Role::Admin` is documented as "everything but issuing owner
    // keys".
    let srv = crate::start().await;
    let w = world(&srv).await;
    let admin = srv.key(&w.t.id, &w.t.owner, "admin", &[]).await;
    let (st, page) = srv
        .get(&format!("/v1/tenants/{}/audit", w.t.id), &admin)
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(!page["events"].as_array().expect("events").is_empty());
}

#[tokio::test]
async fn a_member_may_write_what_it_may_read() {
    // A collection allowing `essential.service` allows its sub-purposes too (a read of a
    // contact for `essential.service.security` is allowed), so a member key holding
    // `essential.service.security` reads contacts; it must then also be able to write them.
    // The write rule compares purposes by exact equality instead of by the same hierarchy.
    let srv = crate::start().await;
    let w = world(&srv).await;
    let security = srv.key(&w.t.id, &w.t.owner, "member", &[SECURITY]).await;
    let (st, got) = srv
        .get(&read_path(&w.t.id, &w.s, &w.contact, SECURITY), &security)
        .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "the member reads contacts for its purpose: {got}"
    );
    let (st, created) = srv
        .post(
            &records_path(&w.t.id, &w.s),
            &security,
            json!({ "collection": "contact", "fields": contact() }),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::CREATED,
        "so it may write them too: {created}"
    );
}

//! Two stateless Ward servers on one PostgreSQL schema serve the same tenants consistently:
//! a write on one is readable on the other at once, concurrent writers lose nothing, and the
//! audit log stays one verifiable tree.

use reqwest::StatusCode;
use serde_json::json;
use ward_testkit::{Backend, Options, TenantFixture, TestServer};

async fn pair() -> (TestServer, TestServer) {
    let a = TestServer::start_with(Options::on(Backend::Postgres)).await;
    let schema = a.schema.clone().expect("first server owns a schema");
    let b = TestServer::start_with(Options {
        backend: Backend::Postgres,
        join: Some((schema, a.dir.path().to_path_buf())),
        ..Options::default()
    })
    .await;
    (a, b)
}

/// Cancels tenant `t` through `server`, its owner asking.
async fn cancel(server: &TestServer, t: &TenantFixture) {
    let (status, body) = server
        .post(&format!("/v1/tenants/{}/cancel", t.id), &t.owner, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A second contact record for subject `s`, written through `server`: what it answers.
async fn write_again(
    server: &TestServer,
    t: &TenantFixture,
    s: &str,
) -> (StatusCode, serde_json::Value) {
    server
        .post(
            &format!("/v1/tenants/{}/subjects/{s}/records", t.id),
            &t.owner,
            json!({"collection": "contact", "fields": {"name": "Ada again", "email": "ada2@example.com"}}),
        )
        .await
}

#[tokio::test]
async fn a_write_on_one_server_is_readable_on_the_other_at_once() {
    let (a, b) = pair().await;
    let t = a.tenant("Acme").await;
    let s = a.subject(&t).await;
    let r = a.contact(&t, &s, "Ada", "ada@example.com").await;
    let path = format!(
        "/v1/tenants/{}/subjects/{s}/records/{r}?purpose=essential.service",
        t.id
    );
    let (status, body) = b.get(&path, &t.owner).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["fields"]["name"], "Ada");
    // A change on B is seen by A.
    let (status, _) = b
        .patch(
            &format!("/v1/tenants/{}/subjects/{s}/records/{r}", t.id),
            &t.owner,
            json!({"purpose": "essential.service", "fields": {"name": "Ada L."}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = a.get(&path, &t.owner).await;
    assert_eq!(body["fields"]["name"], "Ada L.");
    // A cancellation on A stops access on B at once.
    cancel(&a, &t).await;
    let (status, body) = b.get(&path, &t.owner).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "tenant_inactive");
}

#[tokio::test]
async fn a_cancellation_on_one_server_stops_new_records_on_the_other_at_once() {
    let (a, b) = pair().await;
    let t = a.tenant("Acme").await;
    let s = a.subject(&t).await;
    // B writes for the subject first, so it remembers the subject (and its tenant as active).
    b.contact(&t, &s, "Ada", "ada@example.com").await;
    cancel(&a, &t).await;
    let (status, body) = write_again(&b, &t, &s).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "tenant_inactive", "{body}");
    // Nothing was stored: the subject still has its one record.
    let records = a
        .store
        .subject_view(
            uuid::Uuid::parse_str(&t.id).unwrap(),
            uuid::Uuid::parse_str(&s).unwrap(),
            ward_store::RecordFilter::All(None),
        )
        .await
        .unwrap()
        .unwrap()
        .records;
    assert_eq!(records.len(), 1);
}

#[tokio::test]
async fn concurrent_writers_on_both_servers_lose_nothing_and_the_log_verifies() {
    let (a, b) = pair().await;
    let t = a.tenant("Acme").await;
    let subject = a.subject(&t).await;
    let per_server = 40;
    let mut tasks = Vec::new();
    for (n, srv) in [&a, &b].into_iter().enumerate() {
        for i in 0..per_server {
            let url = format!("{}/v1/tenants/{}/subjects/{subject}/records", srv.url, t.id);
            let token = t.owner.clone();
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let resp = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"collection": "contact", "fields": {"name": format!("n{n}-{i}"), "email": format!("u{n}x{i}@example.com")}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::CREATED);
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Every write is visible from either server.
    for srv in [&a, &b] {
        let (status, list) = srv
            .get(
                &format!(
                    "/v1/tenants/{}/subjects/{subject}/records?purpose=essential.service",
                    t.id
                ),
                &t.owner,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list.as_array().unwrap().len(), 2 * per_server);
    }
    // One log: both servers agree on its head, and it verifies against a signed checkpoint.
    let head_a = a.store.audit_head().await.unwrap();
    let head_b = b.store.audit_head().await.unwrap();
    assert_eq!(head_a.size, head_b.size);
    assert_eq!(head_a.root, head_b.root);
    b.vault.checkpoint().await.unwrap();
    let report = ward_vault::verify_log(a.store.as_ref(), &a.vault.audit_public_key(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.first_index, 0);
    assert!(report.tree_size >= 2 * per_server as u64, "{report:?}");
    assert_eq!(report.checkpoints_verified, 1);
}

#[tokio::test]
async fn an_erasure_on_one_server_is_observed_by_the_other_at_once() {
    let (a, b) = pair().await;
    let t = a.tenant("Acme").await;
    let s = a.subject(&t).await;
    let kept = a.subject(&t).await;
    let r = b.contact(&t, &s, "Ada", "ada@example.com").await;
    let other = a.contact(&t, &kept, "Bob", "bob@example.com").await;
    let read = |subject: &str, record: &str| {
        format!(
            "/v1/tenants/{}/subjects/{subject}/records/{record}?purpose=essential.service",
            t.id
        )
    };
    // Both servers read the record first, so both hold its subject's key in their caches.
    for srv in [&a, &b] {
        let (status, body) = srv.get(&read(&s, &r), &t.owner).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = a
        .post(
            &format!("/v1/tenants/{}/subjects/{s}/erase", t.id),
            &t.owner,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // B, with the key still in its cache, neither reads nor writes the subject any more.
    let (status, body) = b.get(&read(&s, &r), &t.owner).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    let (status, body) = write_again(&b, &t, &s).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // The other subject is untouched on both.
    for srv in [&a, &b] {
        let (status, body) = srv.get(&read(&kept, &other), &t.owner).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["fields"]["name"], "Bob");
    }
    // Both servers' events make one log that verifies against a checkpoint signed by either.
    a.vault.checkpoint().await.unwrap();
    let report = ward_vault::verify_log(b.store.as_ref(), &b.vault.audit_public_key(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.first_index, 0);
    assert_eq!(report.checkpoints_verified, 1);
    assert_eq!(report.tree_size, b.store.audit_head().await.unwrap().size);
}

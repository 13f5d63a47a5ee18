//! Record rotation (`POST /v1/keys/rotate-records`, `ward keys rotate --records`): every
//! subject gets a new key and its records are re-encrypted by a background job while clients
//! keep reading and writing; no request fails, every record ends on the new key version, and
//! the old keys are destroyed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;
use ward_store::{RecordFilter, Store};
use ward_testkit::{TenantFixture, TestServer};
use ward_vault::Clock as _;

/// Subjects × records per subject before the rotation: enough for several batches.
const SUBJECTS: usize = 300;
const RECORDS_PER_SUBJECT: usize = 2;

/// Creates subjects with records through one batch request per subject.
async fn populate(srv: &TestServer, t: &TenantFixture, n: usize) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let s = srv.subject(t).await;
        let mut records = Vec::new();
        for k in 0..RECORDS_PER_SUBJECT {
            records.push(
                srv.contact(
                    t,
                    &s,
                    &format!("N{i}-{k}"),
                    &format!("n{i}x{k}@example.com"),
                )
                .await,
            );
        }
        out.push((s, records));
    }
    out
}

/// Every record of the tenant's subjects and the subject's current key version.
async fn versions(store: &Arc<dyn Store>, tenant: Uuid, subjects: &[Uuid]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for s in subjects {
        let view = store
            .subject_view(tenant, *s, RecordFilter::All(None))
            .await
            .unwrap()
            .unwrap();
        for r in &view.records {
            out.push((view.subject.record_key_version, r.key_version));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_rotation_under_concurrent_reads_and_writes_fails_no_request() {
    let srv = Arc::new(crate::start().await);
    let t = srv.tenant("Acme").await;
    let other = srv.tenant("Other").await;
    let other_subject = srv.subject(&other).await;
    srv.contact(&other, &other_subject, "Untouched", "u@example.com")
        .await;
    let subjects = populate(&srv, &t, SUBJECTS).await;
    let tenant: Uuid = t.id.parse().unwrap();
    let ids: Vec<Uuid> = subjects.iter().map(|(s, _)| s.parse().unwrap()).collect();
    assert!(
        versions(&srv.store, tenant, &ids)
            .await
            .iter()
            .all(|v| *v == (1, 1))
    );

    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU32::new(0));
    let mut workers = Vec::new();
    for w in 0..4usize {
        let (srv, t, stop, requests) = (srv.clone(), t.clone(), stop.clone(), requests.clone());
        let mine: Vec<(String, Vec<String>)> =
            subjects.iter().skip(w).step_by(37).cloned().collect();
        workers.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) || n < 3 {
                let (s, records) = &mine[n % mine.len()];
                let base = format!("/v1/tenants/{}/subjects/{s}/records", t.id);
                let (status, body) = srv
                    .get(&format!("{base}/{}?purpose=essential.service", records[0]), &t.owner)
                    .await;
                assert_eq!(status, StatusCode::OK, "read during rotation: {body}");
                assert!(body["fields"]["name"].as_str().unwrap().starts_with('N'), "{body}");
                let (status, body) = srv
                    .get(&format!("{base}?purpose=essential.service"), &t.owner)
                    .await;
                assert_eq!(status, StatusCode::OK, "list during rotation: {body}");
                assert!(body.as_array().unwrap().len() >= RECORDS_PER_SUBJECT, "{body}");
                let (status, body) = srv
                    .patch(
                        &format!("{base}/{}", records[1]),
                        &t.owner,
                        json!({"purpose": "essential.service", "fields": {"name": format!("N-patched-{w}-{n}")}}),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "update during rotation: {body}");
                let (status, body) = srv
                    .post(
                        &base,
                        &t.owner,
                        json!({"collection": "contact", "fields": {"name": format!("New{w}-{n}"), "email": format!("new{w}x{n}@example.com")}}),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED, "write during rotation: {body}");
                let (status, body) = srv
                    .get(
                        &format!("/v1/tenants/{}/lookup?collection=contact&field=email&value=new{w}x{n}@example.com&purpose=essential.service", t.id),
                        &t.owner,
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "lookup during rotation: {body}");
                assert_eq!(body.as_array().unwrap().len(), 1, "{body}");
                requests.fetch_add(5, Ordering::Relaxed);
                n += 1;
            }
        }));
    }

    let body = srv.rotate_records(&t.id).await;
    let jobs = body["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{body}");
    assert_eq!(jobs[0]["tenant"], t.id);
    // The workers may already have added a few records when the job counted them.
    let total = jobs[0]["records_total"].as_u64().unwrap();
    assert!(total >= (SUBJECTS * RECORDS_PER_SUBJECT) as u64, "{body}");
    // Asking again while it runs returns the same job instead of starting a second one.
    let again = srv.rotate_records(&t.id).await;
    if again["jobs"][0]["status"] == "running" {
        assert_eq!(again["jobs"][0]["id"], jobs[0]["id"]);
    }

    let status = srv.wait_for_record_job(&t.id).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert!(requests.load(Ordering::Relaxed) >= 60);

    let job = status["record_jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["tenant"] == t.id)
        .unwrap();
    assert_eq!(job["status"], "done", "{status}");
    assert!(
        job["subjects_done"].as_u64().unwrap() >= SUBJECTS as u64,
        "{job}"
    );
    assert!(
        job["records_done"].as_u64().unwrap() >= (SUBJECTS * RECORDS_PER_SUBJECT) as u64 - 60,
        "{job}"
    );
    assert_eq!(status["retired_subject_keys"], 0, "{status}");
    assert_eq!(srv.store.retired_key_count(None).await.unwrap(), 0);

    // Every record of every subject is on its subject's new key, version 2.
    let all = versions(&srv.store, tenant, &ids).await;
    assert!(
        all.len() as u64 >= total,
        "{} records, {total} counted",
        all.len()
    );
    for (subject_version, record_version) in &all {
        assert_eq!(*subject_version, 2);
        assert_eq!(*record_version, 2);
    }
    // The other tenant was not touched.
    let other_view = srv
        .store
        .subject_view(
            other.id.parse().unwrap(),
            other_subject.parse().unwrap(),
            RecordFilter::All(None),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other_view.subject.record_key_version, 1);
    assert_eq!(other_view.records[0].key_version, 1);

    // Everything reads back with its content.
    for (i, (s, records)) in subjects.iter().enumerate().step_by(23) {
        let (status, body) = srv
            .get(
                &format!(
                    "/v1/tenants/{}/subjects/{s}/records/{}?purpose=essential.service",
                    t.id, records[0]
                ),
                &t.owner,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["fields"]["name"], format!("N{i}-0"));
    }
    let (status, hits) = srv
        .get(&format!("/v1/tenants/{}/lookup?collection=contact&field=email&value=n7x1@example.com&purpose=essential.service", t.id), &t.owner)
        .await;
    assert_eq!(status, StatusCode::OK, "{hits}");
    assert_eq!(hits.as_array().unwrap().len(), 1);

    // The tenant's audit log shows the job starting (with the operator as actor) and ending.
    let page = srv.tenant_audit(&t, "action=key_rotate").await;
    let events = page["events"].as_array().unwrap();
    let phases: Vec<&str> = events
        .iter()
        .filter(|e| e["detail"]["scope"] == "records")
        .map(|e| e["detail"]["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["started", "done"], "{page}");
    assert_eq!(events[0]["actor"]["role"], "operator", "{page}");

    // The audit log still verifies.
    let report =
        ward_vault::verify_log(srv.store.as_ref(), &srv.vault.audit_public_key(), |_, _| {})
            .await
            .unwrap();
    assert!(report.tree_size > 0);

    // A second rotation moves everything to version 3.
    srv.rotate_records(&t.id).await;
    srv.wait_for_record_job(&t.id).await;
    for (subject_version, record_version) in versions(&srv.store, tenant, &ids).await {
        assert_eq!((subject_version, record_version), (3, 3));
    }
}

#[tokio::test]
async fn only_operators_rotate_records_and_unknown_tenants_are_404() {
    let srv = crate::start().await;
    let t = srv.tenant("Acme").await;
    let (status, body) = srv
        .post("/v1/keys/rotate-records", &t.owner, json!({"tenant": t.id}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "role_not_permitted");
    let (status, body) = srv
        .post(
            "/v1/keys/rotate-records",
            &srv.operator,
            json!({"tenant": Uuid::nil()}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = srv
        .post(
            "/v1/keys/rotate-records",
            &srv.operator,
            json!({"tenant": t.id, "cipher": "des"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Nothing was started by the refused requests.
    assert!(srv.vault.key_jobs().await.unwrap().is_empty());
}

#[tokio::test]
async fn rotating_every_tenant_starts_one_job_each_and_an_empty_tenant_finishes_at_once() {
    let srv = crate::start().await;
    let a = srv.tenant("A").await;
    let b = srv.tenant("B").await;
    let s = srv.subject(&a).await;
    srv.contact(&a, &s, "X", "x@example.com").await;
    let (status, body) = srv
        .post("/v1/keys/rotate-records", &srv.operator, json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["jobs"].as_array().unwrap().len(), 2, "{body}");
    let done_a = srv.wait_for_record_job(&a.id).await;
    srv.wait_for_record_job(&b.id).await;
    assert_eq!(done_a["retired_subject_keys"], 0);
    let jobs = srv.vault.key_jobs().await.unwrap();
    assert!(jobs.iter().all(|j| j.status == "done"), "{jobs:?}");
    let b_job = jobs.iter().find(|j| j.tenant.to_string() == b.id).unwrap();
    assert_eq!((b_job.subjects_done, b_job.records_done), (0, 0));
    let a_job = jobs.iter().find(|j| j.tenant.to_string() == a.id).unwrap();
    assert_eq!((a_job.subjects_done, a_job.records_done), (1, 1));
    assert!((a_job.progress() - 1.0).abs() < f64::EPSILON);
}

#[tokio::test]
async fn a_job_held_by_another_process_is_left_alone_until_its_lease_expires() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Acme").await;
    srv.contact(&t, &s, "X", "x@example.com").await;
    let jobs = srv
        .vault
        .start_record_rotation(None, Some(t.id.parse().unwrap()))
        .await
        .unwrap();
    let job = jobs[0].id;
    // Another process claims it (as its first progress step does).
    let now = srv.clock.now();
    srv.store
        .commit(vec![ward_store::Op::AdvanceKeyJob {
            id: job,
            owner: "elsewhere".into(),
            cursor: None,
            subjects: 0,
            records: 0,
            at: now,
            lease_until: now + time::Duration::seconds(60),
        }])
        .await
        .unwrap();
    let left = srv.vault.run_key_job(job, "here", &|_| {}).await.unwrap();
    assert_eq!(left.status, "running");
    assert_eq!(left.records_done, 0);
    // The other process died: after its lease runs out, this one takes the job over.
    srv.clock.advance(time::Duration::seconds(61));
    let done = srv.vault.run_key_job(job, "here", &|_| {}).await.unwrap();
    assert_eq!(done.status, "done");
    assert_eq!(done.records_done, 1);
    // A finished job runs no more.
    let again = srv.vault.run_key_job(job, "here", &|_| {}).await.unwrap();
    assert_eq!(again.status, "done");
}

#[tokio::test]
async fn tenant_key_rotation_waits_for_a_record_rotation_and_erasure_takes_retired_keys() {
    let srv = crate::start().await;
    let t = srv.tenant("Acme").await;
    let tenant: Uuid = t.id.parse().unwrap();
    let s = srv.subject(&t).await;
    let r = srv.contact(&t, &s, "X", "x@example.com").await;
    let subject: Uuid = s.parse().unwrap();
    // Step 1 of a rotation only (as if the job stopped right after it): the subject has a new
    // current key and a retired one that still seals its record.
    let view = srv
        .store
        .subject_view(tenant, subject, RecordFilter::None)
        .await
        .unwrap()
        .unwrap();
    srv.store
        .commit(vec![ward_store::Op::RotateSubjectKeys {
            tenant,
            tenant_key_version: view.subject.key_version,
            keys: vec![ward_store::SubjectKeyChange {
                subject,
                expected_version: 1,
                // The wrapped key of another subject: a stand-in the store cannot tell apart.
                wrapped_key: view.subject.wrapped_key.clone().unwrap(),
            }],
        }])
        .await
        .unwrap();
    assert_eq!(srv.store.retired_key_count(Some(tenant)).await.unwrap(), 1);
    // The record, sealed under the retired version 1, still reads.
    let (status, body) = srv.read_for_service(&t, &s, &r).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["fields"]["name"], "X");
    // A tenant key rotation now would strand the retired key: refused with a reason.
    let (status, body) = srv
        .post("/v1/keys/rotate", &srv.operator, json!({"tenant": t.id}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("record rotation"),
        "{body}"
    );
    // Erasure destroys retired keys with the current one.
    let (status, body) = crate::support::erase(&srv, &t, &s).await;
    assert!(status.is_success(), "{body}");
    assert_eq!(srv.store.retired_key_count(Some(tenant)).await.unwrap(), 0);
    assert!(
        srv.store
            .retired_keys(tenant, subject)
            .await
            .unwrap()
            .is_empty()
    );
}

//! Key rotation under load: tenant and root keys rotate while clients read and write; no
//! request fails, everything stays readable and searchable, and the old root version ends up
//! sealing nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn rotation_under_concurrent_reads_and_writes_fails_no_request() {
    let srv = Arc::new(crate::start().await);
    let t = srv.tenant("Acme").await;
    let mut subjects = Vec::new();
    for i in 0..8 {
        let s = srv.subject(&t).await;
        let r = srv
            .contact(&t, &s, &format!("N{i}"), &format!("n{i}@example.com"))
            .await;
        subjects.push((s, r));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (i, (s, r)) in subjects.iter().cloned().enumerate() {
        let (srv, t, stop) = (srv.clone(), t.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) || n < 5 {
                let (status, body) = srv.read_for_service(&t, &s, &r).await;
                assert_eq!(status, StatusCode::OK, "read failed during rotation: {body}");
                let (status, body) = srv
                    .post(
                        &format!("/v1/tenants/{}/subjects/{s}/records", t.id),
                        &t.owner,
                        json!({"collection": "contact", "fields": {"name": format!("W{i}-{n}"), "email": format!("w{i}x{n}@example.com")}}),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED, "write failed during rotation: {body}");
                n += 1;
            }
            n
        }));
    }
    // Others create subjects (whose keys are wrapped under the tenant key) meanwhile.
    let mut creators = Vec::new();
    for k in 0..2 {
        let (srv, t, stop) = (srv.clone(), t.clone(), stop.clone());
        creators.push(tokio::spawn(async move {
            let mut made = Vec::new();
            while !stop.load(Ordering::Relaxed) || made.len() < 3 {
                let s = srv.subject(&t).await;
                let r = srv
                    .contact(
                        &t,
                        &s,
                        &format!("C{k}-{}", made.len()),
                        &format!("c{k}x{}@example.com", made.len()),
                    )
                    .await;
                made.push((s, r));
            }
            made
        }));
    }
    // Rotate the tenant key twice and the root key once while the workers run.
    for _ in 0..2 {
        let (status, body) = srv
            .post("/v1/keys/rotate", &srv.operator, json!({"tenant": t.id}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["subjects_rewrapped"].as_u64().unwrap() >= 8, "{body}");
    }
    let ring = srv.root_keys.with_new_version().unwrap();
    let report = srv.vault.rotate_root(&ring).await.unwrap();
    assert_eq!(report.root_version, 2);
    assert_eq!(report.tenants_rewrapped, 1);
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    assert!(total >= 40, "workers made {total} round trips");
    // No subject created during a rotation was stranded under a destroyed key.
    for c in creators {
        for (s, r) in c.await.unwrap() {
            let (status, body) = srv.read_for_service(&t, &s, &r).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "subject created during rotation: {body}"
            );
        }
    }

    // Status: every tenant sealed under root v2, tenant key at version 3.
    let (status, body) = srv.get("/v1/keys/status", &srv.operator).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["current_root_version"], 2);
    assert_eq!(body["root_versions_in_use"], json!({"2": 1}));
    assert_eq!(body["tenant_key_versions"][&t.id], 3);

    // Everything is still readable, and the blind index still finds what it found before.
    for (i, (s, r)) in subjects.iter().enumerate() {
        let (status, body) = srv.read_for_service(&t, s, r).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["fields"]["name"], format!("N{i}"));
    }
    let (status, hits) = srv
        .get(&format!("/v1/tenants/{}/lookup?collection=contact&field=email&value=n3@example.com&purpose=essential.service", t.id), &t.owner)
        .await;
    assert_eq!(status, StatusCode::OK, "{hits}");
    assert_eq!(hits.as_array().unwrap().len(), 1);

    // A vault that holds only the new root version (the old one destroyed) opens every tenant.
    let fresh = ward_vault::Vault::new(ward_vault::VaultConfig {
        store: srv.store.clone(),
        policy: ward_policy::Policy::parse(ward_policy::EXAMPLE_POLICY, "example").unwrap(),
        root_keys: ring.without_version(ward_crypto::KeyVersion(1)).unwrap(),
        signing_key: ward_audit::SigningKey::generate().unwrap(),
        clock: Arc::new(srv.clock.clone()),
        origin: "fresh".into(),
        limits: Default::default(),
    })
    .unwrap();
    let owner = fresh
        .authenticate(Some(&t.owner), "check", None)
        .await
        .unwrap();
    let ctx = ward_vault::RequestContext {
        principal: owner,
        request_id: "check".into(),
        client_ip: None,
    };
    let (s, r) = &subjects[0];
    let rec = fresh
        .read_record(
            &ctx,
            t.id.parse().unwrap(),
            s.parse().unwrap(),
            r.parse().unwrap(),
            "essential.service",
        )
        .await
        .unwrap();
    assert_eq!(
        rec.fields.as_ref().expect("a read has fields")["name"],
        "N0"
    );
}

#[tokio::test]
async fn only_operators_rotate_keys() {
    let srv = crate::start().await;
    let t = srv.tenant("Acme").await;
    let (status, body) = srv
        .post("/v1/keys/rotate", &t.owner, json!({"tenant": t.id}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "role_not_permitted");
    let (status, _) = srv.get("/v1/keys/status", &t.owner).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Both refusals are in the audit log, like every denial.
    let size = srv.store.audit_head().await.unwrap().size;
    let denied: Vec<serde_json::Value> = srv
        .store
        .audit_rows(0, u32::try_from(size).unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.event).unwrap())
        .filter(|e| e["action"] == "key_rotate" && e["outcome"] == "denied")
        .collect();
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert!(denied[0]["reason"].as_str().unwrap().contains("may not"));
    let (status, body) = srv
        .post(
            "/v1/keys/rotate",
            &srv.operator,
            json!({"tenant": uuid::Uuid::nil()}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn a_key_rotation_is_in_the_tenants_audit_log() {
    let srv = crate::start().await;
    let t = srv.tenant("Acme").await;
    srv.subject(&t).await;
    let (status, _) = srv
        .post("/v1/keys/rotate", &srv.operator, json!({"tenant": t.id}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = srv.tenant_audit(&t, "action=key_rotate").await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    assert_eq!(events[0]["detail"]["scope"], "tenant");
    assert_eq!(events[0]["detail"]["to"], 2);
}

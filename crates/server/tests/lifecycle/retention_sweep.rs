//! The sweep itself: windows, audit events and who may run it, because a sweep that runs in
//! small steps or races with deletes must expire each record exactly once, count only what it
//! did, and leave an audit trail per tenant and per record.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};

use crate::retention::visit_fields;
use crate::support::{
    assert_error, at, audit, counts, days, hold, id, log_now, run_retention, tally, write,
};

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

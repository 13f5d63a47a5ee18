//! Backups through the library on real stores: a PostgreSQL vault round trip, erasure and
//! the key window (injected clock), and a backup taken while 32 writers run.

#[path = "backup_support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::StatusCode;
use serde_json::json;
use support::{assert_same_records, populate, read, repo, serve};
use ward_backup::{BackupReport, OpenMode, Repository, Retention, Stream};
use ward_store::{SqliteStore, Store};
use ward_testkit::{Backend, Options, TestServer};
use ward_vault::Clock as _;

async fn signing_key(srv: &TestServer) -> Option<bytes::Bytes> {
    std::fs::read(&srv.signing_key_path)
        .ok()
        .map(bytes::Bytes::from)
}

/// A backup of the server's store now, signed with its audit key: the backup every test
/// here takes.
async fn back_up(r: &Repository, srv: &TestServer) -> BackupReport {
    r.backup_store(
        srv.store.clone(),
        signing_key(srv).await,
        srv.clock.now(),
        None,
    )
    .await
    .unwrap()
}

async fn scratch_sqlite(dir: &tempfile::TempDir, name: &str) -> Arc<dyn Store> {
    let sub = dir.path().join(name);
    std::fs::create_dir_all(&sub).unwrap();
    Arc::new(SqliteStore::open(&sub.join("ward.db")).await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_vault_restores_into_postgres_and_sqlite() {
    let srv = TestServer::start_with(Options::on(Backend::Postgres)).await;
    let (tenants, written) = populate(&srv).await;
    let loc = tempfile::tempdir().unwrap();
    let r = repo(&[loc.path()], &srv.root_keys, OpenMode::ReadWrite).await;
    let report = back_up(&r, &srv).await;
    assert!(report.complete());

    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let pg: Arc<dyn Store> = Arc::new(
        ward_store::PostgresStore::open_in_schema(&ward_testkit::postgres_url(), &name)
            .await
            .unwrap(),
    );
    let scratch = tempfile::tempdir().unwrap();
    let sqlite = scratch_sqlite(&scratch, "s").await;
    for target in [pg, sqlite] {
        let restored = r
            .restore_into(&report.data.id, target.clone(), None)
            .await
            .unwrap();
        assert_eq!(restored.keys, report.keys.id);
        assert_eq!(
            restored.reconciliation,
            ward_store::Reconciliation::default()
        );
        let url = serve(&srv, target.clone()).await;
        assert_same_records(&url, &tenants, &written).await;
        let key = ward_audit::SigningKey::load_or_create(&srv.signing_key_path)
            .unwrap()
            .0;
        ward_vault::verify_log(target.as_ref(), &key.public_key(), |_, _| {})
            .await
            .expect("the restored audit log verifies");
        // A target that is not empty any more is refused, and left as it was.
        assert!(r.restore_into(&report.data.id, target, None).await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erased_subject_stays_gone_and_no_key_snapshot_decrypts_it_after_the_key_window() {
    let srv = TestServer::start().await;
    let (tenants, written) = populate(&srv).await;
    let loc = tempfile::tempdir().unwrap();
    let r = repo(&[loc.path()], &srv.root_keys, OpenMode::ReadWrite).await;
    let before = back_up(&r, &srv).await;

    let victim = written[0].clone();
    let t = &tenants[victim.tenant];
    let (st, body) = srv
        .call(
            reqwest::Method::POST,
            &format!("/v1/tenants/{}/subjects/{}/erase", t.id, victim.subject),
            Some(&t.owner),
            None,
        )
        .await;
    assert!(st.is_success(), "erase: {st} {body}");
    // The next day's backup (a day apart, so retention keeps both data snapshots).
    srv.clock.advance(time::Duration::days(1));
    let after = back_up(&r, &srv).await;

    // Restoring the backup taken before the erasure: the subject is gone.
    let scratch = tempfile::tempdir().unwrap();
    let target = scratch_sqlite(&scratch, "restored").await;
    let restored = r
        .restore_into(&before.data.id, target.clone(), None)
        .await
        .unwrap();
    assert_eq!(
        restored.keys, after.keys.id,
        "the newest key snapshot is applied"
    );
    assert_eq!(restored.reconciliation.erased_subjects, 1);
    let url = serve(&srv, target).await;
    let (st, _) = read(&url, t, &victim).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let others: Vec<_> = written
        .iter()
        .filter(|w| w.subject != victim.subject)
        .cloned()
        .collect();
    assert_same_records(&url, &tenants, &others).await;

    // Which key snapshots can still open the victim's records from the old data snapshot.
    let tenant = uuid::Uuid::parse_str(&t.id).unwrap();
    let subject = uuid::Uuid::parse_str(&victim.subject).unwrap();
    let decryptable_with = |keys: ward_backup::SnapshotId| {
        let r = r.clone();
        let data = before.data.id.clone();
        async move {
            let dir = tempfile::tempdir().unwrap();
            let store = scratch_sqlite(&dir, "pair").await;
            r.restore_stream(&data, store.clone()).await.unwrap();
            r.restore_stream(&keys, store.clone()).await.unwrap();
            let records = store
                .records_of_subjects(tenant, None, subject)
                .await
                .unwrap();
            assert!(
                records.iter().any(|rec| rec.subject == subject),
                "the old data snapshot still holds the ciphertext"
            );
            let keyed = store.keyed_subjects(tenant, None, 10_000).await.unwrap();
            keyed.iter().any(|s| s.id == subject)
        }
    };
    assert!(
        decryptable_with(before.keys.id.clone()).await,
        "before the erasure the key was there"
    );
    assert!(!decryptable_with(after.keys.id.clone()).await);

    // The key window passes; a new backup, then prune: only key snapshots without the
    // victim's key remain, and none of them opens its records.
    srv.clock.advance(time::Duration::days(31));
    back_up(&r, &srv).await;
    let pruned = r
        .prune(&Retention::default(), srv.clock.now())
        .await
        .unwrap();
    assert!(pruned.snapshots_deleted.contains(&before.keys.id));
    assert!(pruned.snapshots_deleted.contains(&after.keys.id));
    let remaining: Vec<_> = r
        .snapshot_ids()
        .await
        .unwrap()
        .into_iter()
        .filter(|id| id.stream() == Stream::Keys)
        .collect();
    assert!(!remaining.is_empty());
    assert!(
        r.snapshot_ids().await.unwrap().contains(&before.data.id),
        "data kept a year"
    );
    for keys in remaining {
        assert!(
            !decryptable_with(keys.clone()).await,
            "{keys} must not hold the key"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_while_32_writers_run_restores_a_consistent_point_in_time() {
    let srv = Arc::new(TestServer::start().await);
    let t = Arc::new(srv.tenant("Busy").await);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..32 {
        let (srv, t, stop) = (srv.clone(), t.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) || n < 3 {
                let s = srv.subject(&t).await;
                srv.contact(&t, &s, &format!("W{w}-{n}"), "w@example.com")
                    .await;
                n += 1;
            }
            n
        }));
    }
    // Let every writer get going, then back up mid-stream.
    while srv.store.audit_head().await.unwrap().size < 200 {
        tokio::task::yield_now().await;
    }
    let loc = tempfile::tempdir().unwrap();
    let r = repo(&[loc.path()], &srv.root_keys, OpenMode::ReadWrite).await;
    let report = back_up(&r, &srv).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }

    let scratch = tempfile::tempdir().unwrap();
    let target = scratch_sqlite(&scratch, "restored").await;
    r.restore_into(&report.data.id, target.clone(), None)
        .await
        .unwrap();
    let tenant = uuid::Uuid::parse_str(&t.id).unwrap();
    let records = target
        .records_of_subjects(tenant, None, uuid::Uuid::max())
        .await
        .unwrap();
    assert!(!records.is_empty());
    // Every restored record has its creation event, and every subject its key.
    let head = target.audit_head().await.unwrap();
    let mut created = HashSet::new();
    let mut from = 0;
    while from < head.size {
        let rows = target.audit_rows(from, 10_000).await.unwrap();
        for row in &rows {
            if row.columns.action == "record_create" {
                let e: serde_json::Value = serde_json::from_slice(&row.event).unwrap();
                created.insert(e["record"].as_str().unwrap_or_default().to_owned());
            }
        }
        from += rows.len() as u64;
        if rows.is_empty() {
            break;
        }
    }
    for rec in &records {
        assert!(
            created.contains(&rec.id.to_string()),
            "record {} has no audit event",
            rec.id
        );
    }
    let keyed: HashSet<_> = target
        .keyed_subjects(tenant, None, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    for rec in &records {
        assert!(keyed.contains(&rec.subject), "torn subject {}", rec.subject);
    }
    let vault = srv.vault_on(target.clone());
    let sample = vault.verify_decryption(1_000_000).await.unwrap();
    assert_eq!(sample.failures, 0);
    assert_eq!(sample.records, records.len() as u64);
    let key = ward_audit::SigningKey::load_or_create(&srv.signing_key_path)
        .unwrap()
        .0;
    ward_vault::verify_log(target.as_ref(), &key.public_key(), |_, _| {})
        .await
        .expect("the restored audit log verifies");
}

/// The second backup of a store takes over, unread, the sections (large tables, audit log
/// ranges) that did not change since the first, and reads the rest; each snapshot restores
/// to the store as it was when it was taken. On both backends.
#[tokio::test(flavor = "multi_thread")]
async fn a_later_backup_reads_only_what_changed_and_each_snapshot_restores_whole() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let srv = TestServer::start_with(Options {
            backend,
            ..Options::default()
        })
        .await;
        let (tenants, written) = populate(&srv).await;
        let loc = tempfile::tempdir().unwrap();
        let r = repo(&[loc.path()], &srv.root_keys, OpenMode::ReadWrite).await;
        let backup = || async { back_up(&r, &srv).await };
        let first = backup().await;
        assert_eq!(
            first.data.bytes_reused, 0,
            "{backend:?}: nothing to reuse yet"
        );

        let second = backup().await;
        assert!(
            second.data.bytes_reused > 0 && second.data.bytes_read < first.data.bytes_read,
            "{backend:?}: read {} and reused {} of {}",
            second.data.bytes_read,
            second.data.bytes_reused,
            first.data.bytes_read
        );
        assert_eq!(second.data.bytes_new, 0, "{backend:?}: nothing changed");

        // A record written after the second backup is in the third.
        let t = &tenants[0];
        let subject = srv.subject(t).await;
        let fields = json!({"name": "Late", "email": "late@example.com"});
        let record = srv.record(t, &subject, "contact", fields.clone()).await;
        let third = backup().await;
        assert!(third.data.bytes_reused > 0, "{backend:?}");
        let late = support::Written {
            tenant: 0,
            subject,
            record,
            fields,
        };

        let scratch = tempfile::tempdir().unwrap();
        for (i, (snapshot, has_late)) in [(&second.data.id, false), (&third.data.id, true)]
            .into_iter()
            .enumerate()
        {
            let target = scratch_sqlite(&scratch, &format!("r{i}")).await;
            r.restore_into(snapshot, target.clone(), None)
                .await
                .unwrap();
            let url = serve(&srv, target.clone()).await;
            assert_same_records(&url, &tenants, &written).await;
            let (status, _) = read(&url, t, &late).await;
            assert_eq!(
                status == StatusCode::OK,
                has_late,
                "{backend:?}: the late record in snapshot {snapshot}"
            );
        }
    }
}

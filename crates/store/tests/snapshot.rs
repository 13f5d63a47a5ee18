//! Logical snapshots on both backends: every table in exactly one stream; export then import
//! into an empty store of the same and of the other backend gives the same rows and an audit
//! log that verifies and keeps growing; an export while 32 writers commit is one point in
//! time; imports into non-empty stores, truncated and corrupted dumps are refused and leave
//! the target as it was; the restore reconciliation erases what the newer key snapshot and
//! the ledger say is gone, keeps the audit log, and is idempotent.
//!
//! Needs PostgreSQL at `WARD_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), as `postgres_store.rs` does; every test works in
//! schemas of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod snapshot_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use snapshot_support::*;
use uuid::Uuid;
use ward_store::{Op, RecordFilter, SnapshotStream, SqliteStore, Store, StoreError};

const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_of_both_schemas_is_in_exactly_one_stream() {
    let data: BTreeSet<&str> = SnapshotStream::Data.tables().into_iter().collect();
    let keys: BTreeSet<&str> = SnapshotStream::Keys.tables().into_iter().collect();
    assert!(data.is_disjoint(&keys), "{:?}", data.intersection(&keys));
    let streams: BTreeSet<&str> = data.union(&keys).copied().collect();
    for backend in BACKENDS {
        let target = backend.open().await;
        let tables = target.schema_tables().await;
        let outside: Vec<_> = tables
            .iter()
            .filter(|t| !streams.contains(t.as_str()))
            .collect();
        assert!(
            outside.is_empty(),
            "{backend:?} tables in neither snapshot stream (add them to snapshot/tables.rs): \
             {outside:?}"
        );
        // And every table a stream names exists (the audit head is the writer's memory on
        // SQLite, not a table).
        for table in &streams {
            assert!(
                tables.contains(*table) || (backend == Backend::Sqlite && *table == "audit_head"),
                "{backend:?} has no table {table}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_restores_into_either_backend_with_identical_rows() {
    for from in BACKENDS {
        let source = from.open().await;
        let fixture = populate(&*source.store).await;
        let data = dump(&*source.store, SnapshotStream::Data).await;
        let keys = dump(&*source.store, SnapshotStream::Keys).await;
        assert!(data.summary.tables["records"] >= 4, "{:?}", data.summary);
        assert_eq!(data.summary.tables["audit_head"], 1);
        assert_eq!(data.summary.bytes, data.bytes.len() as u64);
        for to in BACKENDS {
            let target = to.open().await;
            let imported = load(&*target.store, SnapshotStream::Data, &data.bytes, 4096)
                .await
                .unwrap();
            assert_eq!(imported, data.summary, "{from:?} -> {to:?}");
            let imported = load(&*target.store, SnapshotStream::Keys, &keys.bytes, 100)
                .await
                .unwrap();
            assert_eq!(imported, keys.summary, "{from:?} -> {to:?}");
            // The same rows, byte for byte: a dump is canonical whichever backend wrote it.
            assert!(
                dump(&*target.store, SnapshotStream::Data).await.bytes == data.bytes,
                "data differs after {from:?} -> {to:?}"
            );
            assert!(
                dump(&*target.store, SnapshotStream::Keys).await.bytes == keys.bytes,
                "keys differ after {from:?} -> {to:?}"
            );
            // And the same answers through the store's own reads.
            assert_eq!(
                view(&*target.store, &fixture).await,
                view(&*source.store, &fixture).await,
                "{from:?} -> {to:?}"
            );
            // Nothing to reconcile in a consistent pair of snapshots.
            assert_eq!(
                target.store.reconcile_restore().await.unwrap(),
                Default::default()
            );
            // The import stored the log's tree nodes, those over pruned events included.
            let nodes = async |store: &dyn ward_store::Store| {
                store.audit_tree_nodes(vec![(8, 0..1 << 40)]).await.unwrap()
            };
            let source_nodes = nodes(&*source.store).await;
            assert_eq!(source_nodes.len(), 2);
            assert_eq!(
                nodes(&*target.store).await,
                source_nodes,
                "{from:?} -> {to:?}"
            );
            // The log verifies and keeps growing where it left off, with the same chain.
            verify_audit(&*target.store, &fixture).await;
            let next = target
                .store
                .commit(vec![audit_op(
                    Some(fixture.tenant),
                    None,
                    "after-restore",
                    900,
                )])
                .await
                .unwrap();
            assert_eq!(
                next.audit_indices,
                vec![fixture.audit_size],
                "{from:?} -> {to:?}"
            );
            verify_audit(&*target.store, &fixture).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_during_32_writers_is_one_point_in_time() {
    for backend in BACKENDS {
        let source = backend.open().await;
        let store = Arc::clone(&source.store);
        let tenant = Uuid::now_v7();
        store
            .commit(vec![Op::InsertTenant(tenant_row(tenant, 1))])
            .await
            .unwrap();
        let writers: Vec<_> = (0..32)
            .map(|w| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { write_with_events(&*store, tenant, w, 40).await })
            })
            .collect();
        // Dumps while the writers run (a few: each is checked by a restore).
        let mut dumps = Vec::new();
        while dumps.len() < 5 && !writers.iter().all(|w| w.is_finished()) {
            dumps.push(dump(&*store, SnapshotStream::Data).await);
        }
        let mut subjects = Vec::new();
        for writer in writers {
            subjects.push(writer.await.unwrap());
        }
        dumps.push(dump(&*store, SnapshotStream::Data).await);
        let keys = dump(&*store, SnapshotStream::Keys).await;
        let mut sizes = BTreeSet::new();
        for data in dumps {
            let target = Backend::Sqlite.open().await;
            load(&*target.store, SnapshotStream::Data, &data.bytes, 1 << 20)
                .await
                .unwrap();
            load(&*target.store, SnapshotStream::Keys, &keys.bytes, 1 << 20)
                .await
                .unwrap();
            let check = consistency(&*target.store, tenant, &subjects).await;
            assert_eq!(check.records, check.events, "{backend:?}: a torn snapshot");
            sizes.insert(check.records);
        }
        // The last dump was taken after every writer finished.
        assert_eq!(sizes.last(), Some(&(32 * 40)), "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_into_a_store_with_rows_is_refused_and_changes_nothing() {
    for backend in BACKENDS {
        let source = backend.open().await;
        populate(&*source.store).await;
        let data = dump(&*source.store, SnapshotStream::Data).await;
        let keys = dump(&*source.store, SnapshotStream::Keys).await;
        let target = backend.open().await;
        let other = Uuid::now_v7();
        target
            .store
            .commit(vec![Op::InsertTenant(tenant_row(other, 1))])
            .await
            .unwrap();
        let before = (
            dump(&*target.store, SnapshotStream::Data).await.bytes,
            dump(&*target.store, SnapshotStream::Keys).await.bytes,
        );
        let err = load(&*target.store, SnapshotStream::Data, &data.bytes, 4096)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::NotEmpty { table: "tenants" }),
            "{backend:?}: {err}"
        );
        let err = load(&*target.store, SnapshotStream::Keys, &keys.bytes, 4096)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::NotEmpty {
                    table: "tenant_keys"
                }
            ),
            "{backend:?}: {err}"
        );
        assert!(err.to_string().contains("not empty"), "{err}");
        let after = (
            dump(&*target.store, SnapshotStream::Data).await.bytes,
            dump(&*target.store, SnapshotStream::Keys).await.bytes,
        );
        assert!(
            before == after,
            "{backend:?}: a refused import changed the store"
        );

        // A store whose only rows are audit events is not empty either.
        let audited = backend.open().await;
        audited
            .store
            .commit(vec![audit_op(None, None, "only-event", 1)])
            .await
            .unwrap();
        let err = load(&*audited.store, SnapshotStream::Data, &data.bytes, 4096)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotEmpty { .. }), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_corrupted_dumps_are_refused_and_leave_the_target_empty() {
    for from in BACKENDS {
        let source = from.open().await;
        populate(&*source.store).await;
        let data = dump(&*source.store, SnapshotStream::Data).await;
        let keys = dump(&*source.store, SnapshotStream::Keys).await;
        for to in BACKENDS {
            let target = to.open().await;
            let empty = (
                dump(&*target.store, SnapshotStream::Data).await.bytes,
                dump(&*target.store, SnapshotStream::Keys).await.bytes,
            );
            let middle = data.bytes.len() / 2;
            // A byte inside a record's ciphertext: the rows are well-formed and inserted, and
            // only the digest at the end finds the damage, so the import must roll back.
            let mut flipped = data.bytes.clone();
            let pattern: Vec<u8> = (100u8..140).collect();
            let at = flipped
                .windows(pattern.len())
                .position(|w| w == pattern.as_slice())
                .expect("a record ciphertext in the dump");
            flipped[at + 20] ^= 0x20;
            let cases: Vec<(&str, SnapshotStream, Vec<u8>)> = vec![
                (
                    "truncated data",
                    SnapshotStream::Data,
                    data.bytes[..data.bytes.len() - 10].to_vec(),
                ),
                (
                    "data cut in half",
                    SnapshotStream::Data,
                    data.bytes[..middle].to_vec(),
                ),
                ("corrupted data", SnapshotStream::Data, flipped),
                (
                    "truncated keys",
                    SnapshotStream::Keys,
                    keys.bytes[..keys.bytes.len() - 1].to_vec(),
                ),
                ("keys as data", SnapshotStream::Data, keys.bytes.clone()),
                ("empty input", SnapshotStream::Keys, Vec::new()),
            ];
            for (case, stream, bytes) in cases {
                let err = load(&*target.store, stream, &bytes, 333).await.unwrap_err();
                assert!(
                    matches!(err, StoreError::Snapshot(_)),
                    "{from:?} -> {to:?}, {case}: {err}"
                );
                let now = (
                    dump(&*target.store, SnapshotStream::Data).await.bytes,
                    dump(&*target.store, SnapshotStream::Keys).await.bytes,
                );
                assert!(now == empty, "{from:?} -> {to:?}, {case}: rows were left");
            }
            // The refused attempts left nothing in the way of the real import.
            load(&*target.store, SnapshotStream::Data, &data.bytes, 1 << 16)
                .await
                .unwrap();
            load(&*target.store, SnapshotStream::Keys, &keys.bytes, 1 << 16)
                .await
                .unwrap();
            assert!(dump(&*target.store, SnapshotStream::Data).await.bytes == data.bytes);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_whose_consumer_goes_away_fails_cleanly() {
    for backend in BACKENDS {
        let source = backend.open().await;
        populate(&*source.store).await;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        drop(rx);
        let err = source
            .store
            .export_snapshot(SnapshotStream::Data, tx)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("consumer went away"), "{err}");
        // The store still serves.
        dump(&*source.store, SnapshotStream::Data).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_erases_what_the_newer_keys_and_ledger_say_is_gone() {
    for from in BACKENDS {
        let source = from.open().await;
        let fixture = populate(&*source.store).await;
        let data = dump(&*source.store, SnapshotStream::Data).await;
        // After the data snapshot: one subject erased with a ledger entry, one whose key was
        // destroyed (no ledger entry), and the second tenant destroyed.
        erase_after_snapshot(&*source.store, &fixture).await;
        let keys = dump(&*source.store, SnapshotStream::Keys).await;
        for to in BACKENDS {
            let target = to.open().await;
            load(&*target.store, SnapshotStream::Data, &data.bytes, 4096)
                .await
                .unwrap();
            load(&*target.store, SnapshotStream::Keys, &keys.bytes, 4096)
                .await
                .unwrap();
            let events_before = target.store.audit_head().await.unwrap();
            let done = target.store.reconcile_restore().await.unwrap();
            assert_eq!(done.erased_subjects, 2, "{from:?} -> {to:?}: {done:?}");
            assert_eq!(done.destroyed_tenants, 1, "{from:?} -> {to:?}: {done:?}");
            // Two records of the ledger subject, one of the keyless one, one of the tenant.
            assert_eq!(done.records_removed, 4, "{from:?} -> {to:?}: {done:?}");
            assert_gone(&*target.store, &fixture).await;
            // The log is untouched and still verifies.
            let events_after = target.store.audit_head().await.unwrap();
            assert_eq!(events_after.size, events_before.size);
            assert_eq!(events_after.chain, events_before.chain);
            verify_audit(&*target.store, &fixture).await;
            // The key of the subject created after the data snapshot went with nothing to open,
            // and the reconciled key stream exports (on PostgreSQL every key needs its row).
            let source_keys = keys.summary.tables["subject_keys"];
            let target_keys = dump(&*target.store, SnapshotStream::Keys).await.summary;
            assert_eq!(target_keys.tables["subject_keys"], source_keys - 1);
            // Idempotent.
            assert_eq!(
                target.store.reconcile_restore().await.unwrap(),
                Default::default()
            );
            // What was not erased is still there.
            let kept = target
                .store
                .subject_view(fixture.tenant, fixture.kept, RecordFilter::All(None))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(kept.records.len(), 1);
            assert!(kept.subject.wrapped_key.is_some());
            // The restored store's rows now match the source's (erased as it was live),
            // except for the times the reconciliation wrote (destruction, revocation).
            assert_eq!(
                view(&*target.store, &fixture).await,
                view(&*source.store, &fixture).await,
                "{from:?} -> {to:?}"
            );
        }
    }
}

/// SQLite keeps the sealed history of the audit log in bundles, PostgreSQL keeps rows: a dump
/// lists the log as rows either way, byte for byte the same, and a bundled log restores into
/// either backend with the same head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundled_log_dumps_as_the_rows_it_was() {
    const EVENTS: i64 = 65_536 + 300;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.db");
    let lite = SqliteStore::open(&path).await.unwrap();
    let pg = Backend::Postgres.open().await;
    let tenant = Uuid::from_u128(7);
    for store in [&lite as &dyn Store, &*pg.store] {
        for start in (0..EVENTS).step_by(1000) {
            let ops = (start..(start + 1000).min(EVENTS))
                .map(|i| {
                    let subject = (i % 3 == 0).then(|| Uuid::from_u128(100 + (i % 40) as u128));
                    audit_op((i % 5 != 0).then_some(tenant), subject, "bundled", i)
                })
                .collect();
            store.commit(ops).await.unwrap();
        }
    }
    assert_eq!(lite.seal_audit_subject_index().await.unwrap(), 1);
    let bundled: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT COALESCE(SUM(count), 0) FROM audit_bundles",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bundled, 65_536);
    let data = dump(&lite, SnapshotStream::Data).await;
    assert!(
        data.bytes == dump(&*pg.store, SnapshotStream::Data).await.bytes,
        "the bundled log dumps as PostgreSQL's rows"
    );
    let head = lite.audit_head().await.unwrap();
    for to in BACKENDS {
        let target = to.open().await;
        load(&*target.store, SnapshotStream::Data, &data.bytes, 1 << 16)
            .await
            .unwrap();
        let restored = target.store.audit_head().await.unwrap();
        assert_eq!(
            (restored.size, restored.root, restored.chain),
            (head.size, head.root, head.chain),
            "{to:?}"
        );
        assert!(
            dump(&*target.store, SnapshotStream::Data).await.bytes == data.bytes,
            "{to:?}"
        );
    }
}

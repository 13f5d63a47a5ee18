//! A vault restored from store snapshots: records written over HTTP on one backend, the data
//! stream dumped, a subject erased, the key stream dumped; both imported into an empty store
//! of either backend and reconciled. A vault on the restored store with the same root key
//! decrypts every record that was not erased, the erased subject stays gone, and the audit
//! log verifies under the deployment's signing key and keeps growing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use uuid::Uuid;
use ward_audit::SigningKey;
use ward_store::{PostgresStore, SnapshotStream, SqliteStore, Store};
use ward_testkit::{Backend, Options, TestServer, postgres_url};

const PURPOSE: &str = "essential.service";

async fn dump(store: &dyn Store, stream: SnapshotStream) -> Vec<u8> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let collect = tokio::spawn(async move {
        let mut out = Vec::new();
        while let Some(buf) = rx.recv().await {
            out.extend_from_slice(&buf);
        }
        out
    });
    store.export_snapshot(stream, tx).await.unwrap();
    collect.await.unwrap()
}

async fn load(store: &dyn Store, stream: SnapshotStream, bytes: Vec<u8>) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let send = tokio::spawn(async move {
        for piece in bytes.chunks(64 << 10) {
            if tx.send(Bytes::copy_from_slice(piece)).await.is_err() {
                break;
            }
        }
    });
    store.import_snapshot(stream, rx).await.unwrap();
    send.await.unwrap();
}

/// An empty store of `backend`, and the PostgreSQL schema to drop afterwards.
async fn empty_store(backend: Backend, dir: &std::path::Path) -> (Arc<dyn Store>, Option<String>) {
    match backend {
        Backend::Sqlite => (
            Arc::new(SqliteStore::open(&dir.join("restored.db")).await.unwrap()),
            None,
        ),
        Backend::Postgres => {
            let schema = format!("t_{}", Uuid::new_v4().simple());
            let store = PostgresStore::open_in_schema(&postgres_url(), &schema)
                .await
                .expect("PostgreSQL is required for this suite");
            (Arc::new(store), Some(schema))
        }
    }
}

async fn drop_schema(schema: Option<String>) {
    if let Some(schema) = schema {
        let mut conn = PgConnection::connect(&postgres_url()).await.unwrap();
        conn.execute(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_store_opens_with_the_same_root_key_and_keeps_erasures() {
    for source in [Backend::Sqlite, Backend::Postgres] {
        let srv = TestServer::start_with(Options {
            backend: source,
            ..Default::default()
        })
        .await;
        let t = srv.tenant("Acme").await;
        let mut written = Vec::new();
        for i in 0..4 {
            let s = srv.subject(&t).await;
            let r = srv
                .contact(&t, &s, &format!("N{i}"), &format!("n{i}@example.com"))
                .await;
            written.push((s, r, format!("N{i}")));
        }
        srv.vault.checkpoint().await.unwrap();
        let data = dump(&*srv.store, SnapshotStream::Data).await;
        // Erased after the data snapshot: the restore must not bring it back.
        let (erased, erased_record, _) = written.pop().unwrap();
        let (status, body) = srv
            .call(
                Method::POST,
                &format!("/v1/tenants/{}/subjects/{erased}/erase", t.id),
                Some(&t.owner),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let keys = dump(&*srv.store, SnapshotStream::Keys).await;
        let public = SigningKey::load_or_create(&srv.signing_key_path)
            .unwrap()
            .0
            .public_key();

        for target in [Backend::Sqlite, Backend::Postgres] {
            let dir = tempfile::tempdir().unwrap();
            let (store, schema) = empty_store(target, dir.path()).await;
            load(&*store, SnapshotStream::Data, data.clone()).await;
            load(&*store, SnapshotStream::Keys, keys.clone()).await;
            let done = store.reconcile_restore().await.unwrap();
            assert_eq!(
                done.erased_subjects, 1,
                "{source:?} -> {target:?}: {done:?}"
            );
            assert_eq!(done.records_removed, 1, "{done:?}");

            let vault = srv.vault_on(Arc::clone(&store));
            let ctx = ward_vault::RequestContext {
                principal: vault
                    .authenticate(Some(&t.owner), "check", None)
                    .await
                    .unwrap(),
                request_id: "check".into(),
                client_ip: None,
            };
            let tenant: Uuid = t.id.parse().unwrap();
            for (s, r, name) in &written {
                let record = vault
                    .read_record(
                        &ctx,
                        tenant,
                        s.parse().unwrap(),
                        r.parse().unwrap(),
                        PURPOSE,
                    )
                    .await
                    .unwrap();
                assert_eq!(
                    record.fields.as_ref().expect("fields")["name"],
                    name.as_str(),
                    "{source:?} -> {target:?}"
                );
            }
            let gone = vault
                .read_record(
                    &ctx,
                    tenant,
                    erased.parse().unwrap(),
                    erased_record.parse().unwrap(),
                    PURPOSE,
                )
                .await;
            assert!(gone.is_err(), "{source:?} -> {target:?}: {gone:?}");
            // The reads above were audited on the restored log, which verifies whole.
            let report = ward_vault::verify_log(&*store, &public, |_, _| {})
                .await
                .unwrap();
            assert!(report.checkpoints_verified >= 1, "{report:?}");
            assert_eq!(
                report.tree_size,
                store.audit_head().await.unwrap().size,
                "{source:?} -> {target:?}"
            );
            drop(vault);
            drop(store);
            drop_schema(schema).await;
        }
    }
}

//! A log whose sealed history SQLite keeps in bundles verifies from storage as its rows did,
//! and an edit inside a bundle is found: an event changed (the stored tree node over it no
//! longer matches, nor does the next bundle's chain value), or a bundle that no longer
//! unpacks (named by the event it starts at).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, Actor, AuditEvent, Outcome, SigningKey};
use ward_store::audit_codec::{pack_bundle, unpack_bundle};
use ward_store::{CheckpointRow, Op, SqliteStore, Store, StoreError};
use ward_vault::{LogVerifyError, verify_log};

/// One segment of the subject index (sealed, then bundled) and part of the next.
const EVENTS: u64 = 65_536 + 500;

/// Event `i`: a tenant's read, or, every 1,000th event of the sealed segment, Ward's own
/// retention sweep (no tenant).
fn event(i: u64) -> AuditEvent {
    let system = i.is_multiple_of(1000) && i < 65_536;
    AuditEvent {
        at: OffsetDateTime::from_unix_timestamp(1_767_225_600 + i as i64).unwrap(),
        request_id: format!("req-{i}"),
        actor: Actor {
            id: "key:bundles".into(),
            role: "member".into(),
        },
        tenant: (!system).then(|| Uuid::from_u128(1 + u128::from(i % 3))),
        subject: Some(Uuid::from_u128(100 + u128::from(i % 50))),
        record: None,
        collection: Some("contact".into()),
        purpose: Some("essential.service".into()),
        action: if system {
            Action::RetentionRun
        } else {
            Action::RecordRead
        },
        outcome: Outcome::Allowed,
        reason: None,
        client: None,
        detail: None,
    }
}

/// A sealed, bundled log of [`EVENTS`] events under a signed checkpoint of its whole size.
async fn bundled_log(path: &Path) -> SigningKey {
    let store = SqliteStore::open(path).await.unwrap();
    for start in (0..EVENTS).step_by(1000) {
        let ops = (start..(start + 1000).min(EVENTS))
            .map(|i| Op::Audit(Box::new(event(i))))
            .collect();
        store.commit(ops).await.unwrap();
    }
    let key = SigningKey::generate().unwrap();
    let head = store.audit_head().await.unwrap();
    let cp = key.sign("bundles", head.size, head.root, head.chain, 0);
    store
        .commit(vec![Op::SaveCheckpoint(CheckpointRow {
            tree_size: head.size,
            checkpoint: serde_json::to_string(&cp).unwrap(),
            frontier: head.frontier,
            created_at: OffsetDateTime::now_utc(),
        })])
        .await
        .unwrap();
    assert_eq!(store.seal_audit_subject_index().await.unwrap(), 1);
    key
}

/// Rewrites the body of the bundle starting at `first`.
fn edit_bundle(path: &Path, first: i64, edit: impl FnOnce(Vec<u8>) -> Vec<u8>) {
    let db = rusqlite::Connection::open(path).unwrap();
    let body: Vec<u8> = db
        .query_row(
            "SELECT body FROM audit_bundles WHERE first = ?1",
            [first],
            |r| r.get(0),
        )
        .unwrap();
    let changed = db
        .execute(
            "UPDATE audit_bundles SET body = ?1 WHERE first = ?2",
            rusqlite::params![edit(body), first],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundled_log_verifies_and_an_edit_inside_a_bundle_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.db");
    let key = bundled_log(&path).await;
    let bundled: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT SUM(count) FROM audit_bundles", [], |r| r.get(0))
        .unwrap();
    assert_eq!(bundled, 65_536);
    let store = SqliteStore::open(&path).await.unwrap();
    let report = verify_log(&store, &key.public_key(), |_, _| {})
        .await
        .unwrap();
    assert_eq!((report.tree_size, report.checkpoints_verified), (EVENTS, 1));
    // Ward's own events and the prune's search by time are found inside bundles too.
    let last_sweep = store.last_system_event("retention_run").await.unwrap();
    assert_eq!(last_sweep.map(|r| r.idx), Some(65_000));
    let at = |i: i64| OffsetDateTime::from_unix_timestamp(1_767_225_600 + i).unwrap();
    assert_eq!(
        store.audit_index_at(at(40_001)).await.unwrap(),
        Some(40_001)
    );
    assert_eq!(
        store.audit_index_at(at(65_900)).await.unwrap(),
        Some(65_900)
    );
    drop(store);

    // Event 4,099 (the fourth of the bundle at 4,096) now says it was denied.
    let original = tempfile::tempdir().unwrap();
    std::fs::copy(&path, original.path().join("ward.db")).unwrap();
    edit_bundle(&path, 4_096, |body| {
        let events = unpack_bundle(&body).unwrap();
        let mut events: Vec<Vec<u8>> = events.iter().map(<[u8]>::to_vec).collect();
        let text = String::from_utf8(events[3].clone()).unwrap();
        assert!(text.contains("\"allowed\""));
        events[3] = text.replace("\"allowed\"", "\"denied\"").into_bytes();
        pack_bundle(events.iter().map(Vec::as_slice))
    });
    let store = SqliteStore::open(&path).await.unwrap();
    let err = verify_log(&store, &key.public_key(), |_, _| {})
        .await
        .unwrap_err();
    match &err {
        LogVerifyError::TreeNodeMismatch { first, last, .. } => {
            assert!((*first..=*last).contains(&4_099), "{err}");
        }
        LogVerifyError::Tampered(e) => {
            let bad = e.first_bad_index().unwrap();
            assert!((4_099..=4_096 + 16).contains(&bad), "{err}");
        }
        other => panic!("unexpected {other}"),
    }
    drop(store);

    // A bundle cut short: the read fails, naming where the bundle starts.
    std::fs::copy(original.path().join("ward.db"), &path).unwrap();
    edit_bundle(&path, 8_192, |mut body| {
        body.truncate(body.len() / 2);
        body
    });
    let store = SqliteStore::open(&path).await.unwrap();
    let err = verify_log(&store, &key.public_key(), |_, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LogVerifyError::Store(StoreError::Corrupt(m)) if m.contains("8192")),
        "{err}"
    );
}

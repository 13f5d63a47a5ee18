//! The subject index of sealed 65,536-event segments (SQLite), because a subject's access log
//! is read through it: `ward audit verify` rebuilds each sealed segment's postings from the
//! events it authenticated and fails naming a segment whose stored postings differ.

use tempfile::TempDir;
use uuid::Uuid;
use ward_audit::{Action, Actor, AuditEvent, Outcome};
use ward_store::{Op, SqliteStore, Store};
use ward_testkit::TestServer;

use crate::common::{assert_verdict, copy_data, db, stdout, verify};

/// A data directory whose log has one sealed segment and part of the next: 70,000 events of
/// 3 tenants' 50 subjects, appended through the store (a server would take minutes).
async fn sealed_log() -> TempDir {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    copy_data(srv.dir.path(), dir.path());
    drop(srv);
    let store = SqliteStore::open(&dir.path().join("ward.db"))
        .await
        .unwrap();
    let mut ops = Vec::new();
    for i in 0..70_000u128 {
        ops.push(Op::Audit(Box::new(AuditEvent {
            at: time::OffsetDateTime::now_utc(),
            request_id: format!("req-{i}"),
            actor: Actor {
                id: "key:bench".into(),
                role: "member".into(),
            },
            tenant: Some(Uuid::from_u128(1 + i % 3)),
            subject: (!i.is_multiple_of(5)).then(|| Uuid::from_u128(100 + i % 50)),
            record: None,
            collection: None,
            purpose: None,
            action: Action::RecordRead,
            outcome: Outcome::Allowed,
            reason: None,
            client: None,
            detail: None,
        })));
        if ops.len() == 1000 {
            store.commit(std::mem::take(&mut ops)).await.unwrap();
        }
    }
    assert_eq!(store.seal_audit_subject_index().await.unwrap(), 1);
    drop(store);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_subject_postings_are_checked() {
    let dir = sealed_log().await;
    let out = verify(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let edits = [
        // One subject's postings lose an event: its access log would miss it.
        "UPDATE audit_subject_postings SET offsets = substr(offsets, 2) \
         WHERE seg = 0 AND sno = (SELECT MIN(sno) FROM audit_subject_postings)",
        // A subject's number given to another pair: reads of the subject find no postings.
        "UPDATE audit_subject_ids SET subject = randomblob(16) \
         WHERE sno = (SELECT MIN(sno) FROM audit_subject_ids)",
        // A subject's row gone altogether.
        "DELETE FROM audit_subject_postings WHERE seg = 0 AND sno = \
         (SELECT MAX(sno) FROM audit_subject_postings)",
    ];
    for edit in edits {
        let edited = tempfile::tempdir().unwrap();
        copy_data(dir.path(), edited.path());
        assert_eq!(db(edited.path()).execute(edit, []), 1, "{edit}");
        let out = verify(edited.path(), &[]);
        assert_verdict(
            &out,
            1,
            "the subject index of events 0 to 65535 does not match the events",
        );
    }
}

//! The stored Merkle tree nodes (one per complete 16-, 256-, … event subtree), because proofs are
//! served from them: `ward audit verify` must name a node that does not match the events,
//! and a log whose nodes are missing (written before they were stored) gets them at open.

use tempfile::TempDir;
use ward_testkit::TestServer;

use crate::common::{assert_verdict, copy_data, db, head_size, rounds, stdout, verify, ward};

/// A data directory with a log of more than two 256-event subtrees.
async fn long_log() -> (TempDir, u64) {
    let srv = TestServer::start().await;
    let t = srv.tenant("Tree Co").await;
    rounds(&srv, &t, 0, 200).await;
    let total = head_size(&srv).await;
    assert!(total > 512, "{total}");
    let copy = tempfile::tempdir().unwrap();
    copy_data(srv.dir.path(), copy.path());
    drop(srv);
    (copy, total)
}

#[tokio::test]
async fn tree_nodes_are_checked_and_restored() {
    let (dir, total) = long_log().await;
    let nodes = |dir: &TempDir| -> i64 {
        db(dir.path()).scalar("SELECT COUNT(*) FROM audit_tree WHERE height = 8", [])
    };
    assert_eq!(nodes(&dir) as u64, total / 256);
    let out = verify(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // An altered node: proofs served from it would not verify, so verification fails
    // naming it (not an event: the events are intact).
    let tampered = tempfile::tempdir().unwrap();
    copy_data(dir.path(), tampered.path());
    let changed = db(tampered.path()).execute(
        "UPDATE audit_tree SET hash = zeroblob(32) WHERE height = 8 AND idx = 1",
        [],
    );
    assert_eq!(changed, 1);
    let out = verify(tampered.path(), &[]);
    assert_verdict(
        &out,
        1,
        "stored Merkle tree node 1 of height 8 (events 256 to 511) does not match the events",
    );
    assert!(
        !stdout(&out).contains("first bad index"),
        "{}",
        stdout(&out)
    );
    // `ward doctor` checks the nodes of the unsigned tail too (here the whole log).
    let out = ward(&[
        "doctor",
        "--json",
        "--data-dir",
        &tampered.path().display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "audit_log")
        .unwrap();
    assert_eq!(check["status"], "fail", "{check:#}");
    assert!(
        check["explanation"]
            .as_str()
            .unwrap()
            .contains("stored Merkle tree node 1 of height 8"),
        "{check:#}"
    );

    // Nodes missing, as in a log written before they were stored: the next open stores
    // them (here, `ward audit verify`'s), and the log verifies.
    let missing = tempfile::tempdir().unwrap();
    copy_data(dir.path(), missing.path());
    db(missing.path()).execute("DELETE FROM audit_tree", []);
    assert_eq!(nodes(&missing), 0);
    let out = verify(missing.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(nodes(&missing) as u64, total / 256);
}

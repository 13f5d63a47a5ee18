//! Proofs are built from the stored Merkle tree nodes. A node the store lacks (a log pruned
//! before nodes were stored, a writer that could not store one) is computed from the level
//! below, and only a proof that needs pruned events is refused: checked here by deleting
//! nodes and events from the SQLite file under a running server.

use reqwest::StatusCode;
use ward_testkit::sql::Db;

use crate::proofs_support::{LoggedTenant, checked_inclusion, consistency, get, logged_tenant};
use crate::proofs_verifier::{mth, verify_consistency};

#[tokio::test]
async fn proofs_compute_missing_nodes_and_refuse_only_what_was_pruned() {
    let srv = crate::start().await;
    let LoggedTenant {
        member,
        size,
        leaves,
    } = logged_tenant(&srv, "Missing nodes", 80).await;
    assert!(size > 300, "{size}");

    // Every node above the first 16-event block goes: proofs now compute them from the
    // events, and must come out the same.
    let db = Db::open(&srv.db_path());
    let gone = db.execute(
        "DELETE FROM audit_tree WHERE NOT (height = 4 AND idx = 0)",
        [],
    );
    assert!(gone > 15, "{gone}");
    for (n, m) in [
        (0, size),
        (17, size),
        (255, 256),
        (256, 300),
        (size - 1, size),
    ] {
        checked_inclusion(&srv, &member, &leaves, n, m).await;
    }
    for (a, b) in [(1, size), (16, 300), (255, size), (257, size)] {
        let p = consistency(&srv, &member, a, b).await;
        assert_eq!(p.from_root, mth(&leaves[..a as usize]));
        assert_eq!(p.to_root, mth(&leaves[..b as usize]));
        assert!(verify_consistency(a, b, &p.from_root, &p.to_root, &p.proof));
    }

    // The first block's events pruned, its node kept: a proof that needs only the node
    // answers; one that needs one of those events is refused as pruned.
    db.execute("DELETE FROM audit_events WHERE idx < 16", []);
    checked_inclusion(&srv, &member, &leaves, 17, size).await;
    checked_inclusion(&srv, &member, &leaves, size - 1, size).await;
    for path in [
        format!("/v1/audit/proof/inclusion?index=5&tree_size={size}"),
        format!("/v1/audit/proof/consistency?from=7&to={size}"),
    ] {
        let r = get(&srv, &member, &path).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            r.text
        );
        assert_eq!(r.json["error"]["code"], "pruned", "{path}: {}", r.text);
    }
}

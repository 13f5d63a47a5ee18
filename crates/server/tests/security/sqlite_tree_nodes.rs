//! Proofs are built from the stored Merkle tree nodes. A node the store lacks (a log pruned
//! before nodes were stored, a writer that could not store one) is computed from the level
//! below, and only a proof that needs pruned events is refused: checked here by deleting
//! nodes and events from the SQLite file under a running server.

use reqwest::StatusCode;
use ward_testkit::sql::Db;

use crate::proofs_support::{
    activity, consistency, get, inclusion, new_checkpoint, tenant_with_member,
};
use crate::proofs_verifier::{H, mth, verify_consistency, verify_inclusion};
use crate::support::hash32;

#[tokio::test]
async fn proofs_compute_missing_nodes_and_refuse_only_what_was_pruned() {
    let srv = crate::start().await;
    let (t, member) = tenant_with_member(&srv, "Missing nodes").await;
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    activity(&srv, &t, 80).await;
    let cp = new_checkpoint(&srv, &auditor).await;
    let size = cp["tree_size"].as_u64().unwrap();
    assert!(size > 300, "{size}");
    let leaves: Vec<H> = {
        let mut out = Vec::new();
        for i in 0..size {
            out.push(inclusion(&srv, &member, i, size).await.leaf);
        }
        out
    };
    assert_eq!(mth(&leaves), hash32(&cp["root"]));

    // Every node above the first 16-event block goes: proofs now compute them from the
    // events, and must come out the same.
    let db = Db::open(&srv.db_path());
    let gone = db.execute(
        "DELETE FROM audit_tree WHERE NOT (height = 4 AND idx = 0)",
        [],
    );
    assert!(gone > 15, "{gone}");
    let check = async |n: u64, m: u64| {
        let p = inclusion(&srv, &member, n, m).await;
        assert_eq!(p.leaf, leaves[n as usize], "leaf {n} at size {m}");
        assert_eq!(p.root, mth(&leaves[..m as usize]), "root at size {m}");
        assert!(verify_inclusion(n, m, &p.leaf, &p.proof, &p.root));
    };
    for (n, m) in [
        (0, size),
        (17, size),
        (255, 256),
        (256, 300),
        (size - 1, size),
    ] {
        check(n, m).await;
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
    check(17, size).await;
    check(size - 1, size).await;
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

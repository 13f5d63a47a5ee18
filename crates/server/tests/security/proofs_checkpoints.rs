//! Proofs from the server checked by the independent verifier and tied to signed checkpoints,
//! because an auditor must be able to confirm, with nothing but the public key, that an event
//! is in the log and that the log only ever grew. Backend-neutral: HTTP only.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};

use crate::proofs_support::{
    LoggedTenant, activity, checked_inclusion, checkpoint_of, consistency, flip, get, inclusion,
    logged_tenant, new_checkpoint, tenant_with_member,
};
use crate::proofs_verifier::{
    H, canonical_event, chain, leaf, mth, verify_consistency, verify_inclusion,
};
use crate::support::{audit_all, b64_encode, hash32, send};

#[tokio::test]
async fn proofs_verify_independently_and_match_signed_checkpoints() {
    let srv = crate::start().await;
    let (t, member) = tenant_with_member(&srv, "Proofs").await;
    activity(&srv, &t, 6).await;
    // Application (member) keys may read checkpoints and proofs but not sign checkpoints.
    let r = send(
        &srv,
        Method::POST,
        "/v1/audit/checkpoint",
        Some(&member),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    let cp1_json = new_checkpoint(&srv, &auditor).await;
    activity(&srv, &t, 7).await;
    srv.clock.advance(time::Duration::seconds(61));
    let cp2_json = new_checkpoint(&srv, &auditor).await;
    let (cp1, cp2) = (checkpoint_of(&cp1_json), checkpoint_of(&cp2_json));
    let (size1, size2) = (cp1.tree_size, cp2.tree_size);
    assert!(size1 >= 20 && size2 >= size1 + 20, "sizes {size1} {size2}");
    let r = get(&srv, &member, "/v1/audit/checkpoint").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, cp2_json, "GET returns the newest checkpoint");

    // Signatures: documented message format, Ed25519 under the published key.
    let r = send(&srv, Method::GET, "/v1/audit/public-key", None, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["algorithm"], "ed25519");
    let key = ward_audit::PublicKey::from_base64(r.json["public_key"].as_str().unwrap())
        .expect("public key");
    for (cp, json) in [(&cp1, &cp1_json), (&cp2, &cp2_json)] {
        let documented = format!(
            "ward.audit.checkpoint.v1\n{}\n{}\n{}\n{}\n{}\n",
            json["origin"].as_str().unwrap(),
            json["tree_size"],
            json["root"].as_str().unwrap(),
            json["chain"].as_str().unwrap(),
            json["timestamp"]
        );
        assert_eq!(cp.signed_message(), documented.into_bytes());
        cp.verify(&key)
            .expect("checkpoint signature verifies under the published key");
        assert!(cp.timestamp <= srv.vault.now().unix_timestamp());
        let mut bad = cp.clone();
        bad.root = b64_encode(&flip(&hash32(&json["root"])));
        assert!(bad.verify(&key).is_err(), "altered root accepted");
        let mut bad = cp.clone();
        bad.tree_size += 1;
        assert!(bad.verify(&key).is_err(), "altered size accepted");
        let mut bad = cp.clone();
        bad.chain = b64_encode(&flip(&hash32(&json["chain"])));
        assert!(bad.verify(&key).is_err(), "altered chain accepted");
        let mut bad = cp.clone();
        bad.timestamp -= 1;
        assert!(bad.verify(&key).is_err(), "altered time accepted");
        let mut bad = cp.clone();
        bad.origin.push('x');
        assert!(bad.verify(&key).is_err(), "altered origin accepted");
        let other = ward_audit::SigningKey::generate().unwrap().public_key();
        assert!(cp.verify(&other).is_err(), "verifies under a foreign key");
    }

    // Every leaf of the tree at size2, each with its proof verified.
    let mut leaves: Vec<H> = Vec::new();
    for i in 0..size2 {
        let p = inclusion(&srv, &member, i, size2).await;
        assert!(
            verify_inclusion(i, size2, &p.leaf, &p.proof, &p.root),
            "inclusion {i}/{size2} does not verify"
        );
        assert_eq!(
            p.root,
            hash32(&cp2_json["root"]),
            "root at size2 differs from the signed checkpoint"
        );
        leaves.push(p.leaf);
    }
    // The signed roots and chain values are what the leaves give, computed here.
    assert_eq!(mth(&leaves), hash32(&cp2_json["root"]));
    assert_eq!(mth(&leaves[..size1 as usize]), hash32(&cp1_json["root"]));
    let mut c = [0u8; 32];
    for (i, l) in leaves.iter().enumerate() {
        c = chain(&c, l);
        if i + 1 == size1 as usize {
            assert_eq!(c, hash32(&cp1_json["chain"]), "chain at size1");
        }
    }
    assert_eq!(c, hash32(&cp2_json["chain"]), "chain at size2");

    // Leaf hashes are the hashes of the events the tenant can read.
    let events = audit_all(&srv, &t.id, &t.owner, "").await;
    let mut recomputed = 0;
    for e in &events {
        let i = e["index"].as_u64().unwrap();
        if i < size2 {
            assert_eq!(
                leaf(&canonical_event(e)),
                leaves[i as usize],
                "event {i} does not hash to its leaf: {e}"
            );
            recomputed += 1;
        }
    }
    assert!(
        recomputed as u64 >= size2 - 2,
        "only {recomputed} of {size2} leaves are tenant events"
    );

    // Inclusion proofs for many (index, tree size).
    let mut incl = Vec::new();
    for m in 1..=size2 {
        let picks: BTreeSet<u64> = [0, m - 1, m / 2, m / 3, (m * 7) / 11, m.saturating_sub(2)]
            .into_iter()
            .filter(|&n| n < m)
            .collect();
        for n in picks {
            incl.push(checked_inclusion(&srv, &member, &leaves, n, m).await);
        }
    }
    // And every one of them fails on wrong data.
    let mut rejected = 0;
    for p in &incl {
        let (n, m) = (p.index, p.tree_size);
        assert!(
            !verify_inclusion(n, m, &flip(&p.leaf), &p.proof, &p.root),
            "altered leaf accepted {n}/{m}"
        );
        assert!(
            !verify_inclusion(n, m, &p.leaf, &p.proof, &flip(&p.root)),
            "altered root accepted {n}/{m}"
        );
        if m > 1 && leaves[n as usize] != leaves[((n + 1) % m) as usize] {
            let other = (n + 1) % m;
            assert!(
                !verify_inclusion(other, m, &p.leaf, &p.proof, &p.root),
                "wrong index {other} accepted for {n}/{m}"
            );
            let other_leaf = leaves[other as usize];
            assert!(
                !verify_inclusion(n, m, &other_leaf, &p.proof, &p.root),
                "leaf {other} accepted as {n}/{m}"
            );
        }
        for k in 0..p.proof.len() {
            let mut bad = p.proof.clone();
            bad[k] = flip(&bad[k]);
            assert!(
                !verify_inclusion(n, m, &p.leaf, &bad, &p.root),
                "altered proof element {k} accepted {n}/{m}"
            );
            rejected += 1;
        }
        if let Some((_, shorter)) = p.proof.split_last() {
            assert!(
                !verify_inclusion(n, m, &p.leaf, shorter, &p.root),
                "truncated proof accepted {n}/{m}"
            );
        }
        let mut longer = p.proof.clone();
        longer.push(p.leaf);
        assert!(
            !verify_inclusion(n, m, &p.leaf, &longer, &p.root),
            "extended proof accepted {n}/{m}"
        );
    }
    assert!(rejected > 500, "{rejected}");

    // Consistency proofs: exhaustive for small trees, sampled for large ones, and between
    // the two signed checkpoints.
    let mut pairs: BTreeSet<(u64, u64)> = BTreeSet::new();
    for b in 1..=size2 {
        for a in 1..=b {
            if b <= 12
                || a == 1
                || a == b
                || a == b / 2
                || a == b - 1
                || b == size2
                || b == size1
                || a == size1
                || (a * 13 + b) % 7 == 0
            {
                pairs.insert((a, b));
            }
        }
    }
    let mut cons = Vec::new();
    for (a, b) in pairs {
        let p = consistency(&srv, &member, a, b).await;
        assert_eq!(
            p.from_root,
            mth(&leaves[..a as usize]),
            "from_root {a}->{b}"
        );
        assert_eq!(p.to_root, mth(&leaves[..b as usize]), "to_root {a}->{b}");
        assert!(
            verify_consistency(a, b, &p.from_root, &p.to_root, &p.proof),
            "consistency {a}->{b} does not verify"
        );
        cons.push(p);
    }
    let signed = cons
        .iter()
        .find(|p| (p.from, p.to) == (size1, size2))
        .expect("checkpoint pair");
    assert!(verify_consistency(
        size1,
        size2,
        &hash32(&cp1_json["root"]),
        &hash32(&cp2_json["root"]),
        &signed.proof
    ));
    for p in cons.iter().filter(|p| p.from < p.to) {
        let (a, b) = (p.from, p.to);
        assert!(
            !verify_consistency(a, b, &flip(&p.from_root), &p.to_root, &p.proof),
            "altered old root accepted {a}->{b}"
        );
        assert!(
            !verify_consistency(a, b, &p.from_root, &flip(&p.to_root), &p.proof),
            "altered new root accepted {a}->{b}"
        );
        assert!(
            !verify_consistency(a, b, &p.to_root, &p.from_root, &p.proof),
            "swapped roots accepted {a}->{b}"
        );
        for k in 0..p.proof.len() {
            let mut bad = p.proof.clone();
            bad[k] = flip(&bad[k]);
            assert!(
                !verify_consistency(a, b, &p.from_root, &p.to_root, &bad),
                "altered element {k} accepted {a}->{b}"
            );
        }
        if let Some((_, shorter)) = p.proof.split_last() {
            assert!(
                !verify_consistency(a, b, &p.from_root, &p.to_root, shorter),
                "truncated proof accepted {a}->{b}"
            );
        }
        let mut longer = p.proof.clone();
        longer.push(p.to_root);
        assert!(
            !verify_consistency(a, b, &p.from_root, &p.to_root, &longer),
            "extended proof accepted {a}->{b}"
        );
    }
    // A log rewritten behind the first checkpoint cannot be proven consistent with it.
    let mut rewritten = leaves.clone();
    rewritten[3] = leaf(b"forged event");
    let forged_new_root = mth(&rewritten);
    assert!(!verify_consistency(
        size1,
        size2,
        &hash32(&cp1_json["root"]),
        &forged_new_root,
        &signed.proof
    ));
}

/// A proof is built from the stored tree nodes (one per complete 16-, 256-, … event
/// subtree) plus at most a few blocks of events, no longer from every leaf: proofs around and
/// across the 16- and 256-event boundaries must be the ones the leaves give.
#[tokio::test]
async fn proofs_from_stored_tree_nodes_verify_across_block_boundaries() {
    let srv = crate::start().await;
    let LoggedTenant {
        member,
        size,
        leaves,
    } = logged_tenant(&srv, "Big log", 200).await;
    assert!(size > 3 * 256, "{size}");

    let sizes = [1, 255, 256, 257, 511, 512, 513, 700, size - 1, size];
    for &m in &sizes {
        for n in [0, 1, 255, 256, 257, 511, 512, m / 2, m - 1] {
            if n >= m {
                continue;
            }
            checked_inclusion(&srv, &member, &leaves, n, m).await;
        }
        for &a in sizes.iter().filter(|&&a| a <= m) {
            let p = consistency(&srv, &member, a, m).await;
            assert_eq!(p.from_root, mth(&leaves[..a as usize]), "from_root {a}->{m}");
            assert_eq!(p.to_root, mth(&leaves[..m as usize]), "to_root {a}->{m}");
            assert!(
                verify_consistency(a, m, &p.from_root, &p.to_root, &p.proof),
                "consistency {a}->{m} does not verify"
            );
        }
    }
}

//! The in-memory frontier must always agree with a full recomputation, and its persisted
//! form must refuse anything that is not exactly a frontier.

use ward_audit::{Frontier, Hash, MerkleError, leaf_hash, root};

fn leaves(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(&(i as u64).to_le_bytes()))
        .collect()
}

#[test]
fn frontier_root_equals_full_root_for_every_size() {
    let all = leaves(300);
    let mut frontier = Frontier::new();
    assert_eq!(frontier.root(), root(&[]));
    for (i, leaf) in all.iter().enumerate() {
        frontier.push(*leaf);
        let n = i + 1;
        assert_eq!(frontier.size(), n as u64);
        assert_eq!(frontier.nodes().len(), n.count_ones() as usize, "size {n}");
        assert_eq!(frontier.root(), root(&all[..n]), "size {n}");
    }
}

#[test]
fn frontier_nodes_are_perfect_subtree_roots() {
    // Size 13 = 8 + 4 + 1: the nodes are the roots of leaves 0..8, 8..12 and 12..13.
    let all = leaves(13);
    let frontier = Frontier::from_leaves(&all);
    assert_eq!(
        frontier.nodes(),
        &[root(&all[..8]), root(&all[8..12]), all[12]]
    );
}

#[test]
fn bytes_round_trip() {
    let all = leaves(300);
    for n in [0, 1, 2, 3, 7, 8, 64, 255, 300] {
        let frontier = Frontier::from_leaves(&all[..n]);
        let bytes = frontier.to_bytes();
        assert_eq!(bytes.len(), 9 + 32 * n.count_ones() as usize);
        let back = Frontier::from_bytes(&bytes).unwrap();
        assert_eq!(back, frontier);
        assert_eq!(back.root(), root(&all[..n]));
        // A restored frontier keeps growing exactly like the original.
        let mut grown = back;
        for leaf in &all[n..] {
            grown.push(*leaf);
        }
        assert_eq!(grown.root(), root(&all));
    }
}

#[test]
fn bad_bytes_are_refused() {
    let frontier = Frontier::from_leaves(&leaves(13));
    let good = frontier.to_bytes();
    let refused = |bytes: &[u8]| {
        assert!(
            matches!(
                Frontier::from_bytes(bytes),
                Err(MerkleError::MalformedFrontier(_))
            ),
            "accepted {bytes:?}"
        );
    };

    refused(&[]);
    refused(&good[..5]); // truncated size
    refused(&good[..good.len() - 1]); // truncated node
    refused(&good[..good.len() - 32]); // one node missing
    let mut extra = good.clone();
    extra.extend_from_slice(&[0u8; 32]); // one node too many
    refused(&extra);
    let mut trailing = good.clone();
    trailing.push(0); // stray byte
    refused(&trailing);
    let mut version = good.clone();
    version[0] = 2; // unknown format
    refused(&version);
    let mut size = good.clone();
    size[8] = 15; // 4 set bits, but 3 nodes
    refused(&size);
    size[8] = 12; // 2 set bits, but 3 nodes
    refused(&size);

    // The empty frontier is just the header.
    let empty = Frontier::new().to_bytes();
    assert_eq!(empty, [1, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(Frontier::from_bytes(&empty).unwrap(), Frontier::new());
    // A huge size with the right number of nodes is well-formed (no hidden limits).
    let mut big = vec![1];
    big.extend_from_slice(&(1u64 << 40).to_be_bytes());
    big.extend_from_slice(&[9u8; 32]);
    assert_eq!(Frontier::from_bytes(&big).unwrap().size(), 1 << 40);
}

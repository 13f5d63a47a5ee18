//! Property tests over tree sizes beyond the exhaustive range of `rfc9162.rs`.

use proptest::prelude::*;
use ward_audit::{
    Frontier, Hash, consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency,
    verify_inclusion,
};

fn leaves(n: u64, salt: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("{salt}:{i}").as_bytes()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn inclusion_proofs_verify_and_bind_the_leaf(
        n in 1u64..3000,
        index_seed in any::<u64>(),
        salt in any::<u64>(),
        flip in 0usize..256,
    ) {
        let index = index_seed % n;
        let all = leaves(n, salt);
        let tree_root = root(&all);
        prop_assert_eq!(Frontier::from_leaves(&all).root(), tree_root);
        let proof = inclusion_proof(&all, index, n).unwrap();
        prop_assert!(proof.len() <= 64);
        let leaf = all[index as usize];
        prop_assert!(verify_inclusion(&leaf, index, n, &proof, &tree_root).is_ok());

        let mut altered = leaf;
        altered[flip / 8] ^= 1 << (flip % 8);
        prop_assert!(verify_inclusion(&altered, index, n, &proof, &tree_root).is_err());
        // Also a different real leaf of the same tree.
        if n > 1 {
            let other = all[((index + 1) % n) as usize];
            prop_assert!(verify_inclusion(&other, index, n, &proof, &tree_root).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_bind_the_old_tree(
        n in 1u64..3000,
        old_seed in any::<u64>(),
        changed_seed in any::<u64>(),
        salt in any::<u64>(),
    ) {
        let old_size = 1 + old_seed % n;
        let all = leaves(n, salt);
        let old_root = root(&all[..old_size as usize]);
        let new_root = root(&all);
        let proof = consistency_proof(&all, old_size, n).unwrap();
        prop_assert!(verify_consistency(old_size, n, &old_root, &new_root, &proof).is_ok());

        // Alter one leaf of the old tree: the old root it implies must be rejected.
        let mut altered = all[..old_size as usize].to_vec();
        let changed = (changed_seed % old_size) as usize;
        altered[changed] = leaf_hash(b"altered");
        let altered_root = root(&altered);
        prop_assert!(
            verify_consistency(old_size, n, &altered_root, &new_root, &proof).is_err()
        );
        // And the new tree must not be able to change one of the old leaves either.
        let mut new_altered = all.clone();
        new_altered[changed] = leaf_hash(b"altered");
        let new_altered_root = root(&new_altered);
        prop_assert!(
            verify_consistency(old_size, n, &old_root, &new_altered_root, &proof).is_err()
        );
    }
}

#[test]
fn proofs_over_a_large_log() {
    // The sizes `ward audit verify` and the proof endpoints work with: proofs stay
    // logarithmic and generation is linear (this would time out if it were quadratic).
    let n: u64 = (1 << 17) + 5;
    let all = leaves(n, 7);
    let tree_root = root(&all);
    for index in [0, 1, n / 2, n - 6, n - 1] {
        let proof = inclusion_proof(&all, index, n).unwrap();
        assert!(proof.len() <= 18);
        assert_eq!(proof.len() == 18, index < (1 << 17));
        verify_inclusion(&all[index as usize], index, n, &proof, &tree_root).unwrap();
    }
    let old = (1 << 16) + 3;
    let proof = consistency_proof(&all, old, n).unwrap();
    verify_consistency(old, n, &root(&all[..old as usize]), &tree_root, &proof).unwrap();
}

/// A tree of 2^17 + 1,000 leaves (two complete 65,536-leaf subtrees) and the nodes a
/// writer stores for it, built once for the tests below.
fn stored_tree() -> &'static (
    Vec<Hash>,
    std::collections::HashMap<ward_audit::Subtree, Hash>,
) {
    static TREE: std::sync::OnceLock<(
        Vec<Hash>,
        std::collections::HashMap<ward_audit::Subtree, Hash>,
    )> = std::sync::OnceLock::new();
    TREE.get_or_init(|| {
        let all = leaves((1 << 17) + 1000, 7);
        let mut frontier = Frontier::new();
        let mut nodes = Vec::new();
        for leaf in &all {
            frontier.push_recording(*leaf, &mut nodes);
        }
        let nodes = nodes.into_iter().map(|n| (n.subtree, n.hash)).collect();
        (all, nodes)
    })
}

/// Builds each proof element the way the server does: from stored nodes where the plan's
/// subtrees have a stored row, from leaves below that.
fn from_stored(plan: Vec<std::ops::Range<u64>>) -> Vec<Hash> {
    let (all, nodes) = stored_tree();
    plan.into_iter()
        .map(|range| {
            let roots: Vec<Hash> = ward_audit::cover(range)
                .into_iter()
                .map(|s| match s.stored_row() {
                    Some((height, row)) => root(
                        &row.map(|index| nodes[&ward_audit::Subtree { height, index }])
                            .collect::<Vec<_>>(),
                    ),
                    None => {
                        let r = s.leaves();
                        root(&all[r.start as usize..r.end as usize])
                    }
                })
                .collect();
            ward_audit::fold_cover(&roots)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Proofs assembled from stored subtree roots are exactly the proofs computed from every
    /// leaf, for any index and sizes (across the 256- and 65,536-leaf boundaries).
    #[test]
    fn proofs_from_stored_nodes_equal_proofs_from_leaves(
        a in any::<u64>(),
        b in any::<u64>(),
    ) {
        let (all, _) = stored_tree();
        let n = all.len() as u64;
        let size = 1 + b % n;
        let index = a % size;
        prop_assert_eq!(
            from_stored(ward_audit::inclusion_plan(index, size).unwrap()),
            inclusion_proof(all, index, size).unwrap()
        );
        let old = 1 + a % size;
        prop_assert_eq!(
            from_stored(ward_audit::consistency_plan(old, size).unwrap()),
            consistency_proof(all, old, size).unwrap()
        );
    }
}

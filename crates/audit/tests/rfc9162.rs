//! Differential tests of the crate's Merkle code against a reference written straight from
//! the RFC 9162 §2.1 text.
//!
//! The reference below is deliberately naive and uses nothing from `ward_audit`: recursive
//! MTH with `k` = largest power of two < n, recursive PATH and PROOF/SUBPROOF, hashing with
//! aws-lc directly. Its verifiers rebuild the root by following the recursive definitions
//! (not the RFC's bit-twiddling algorithm the crate uses), so they are an independent oracle.

use aws_lc_rs::digest;
use ward_audit::{
    Frontier, MerkleError, consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency,
    verify_inclusion,
};

type H = [u8; 32];

const MAX_SIZE: usize = 70;

// ---------------------------------------------------------------------------------------
// Reference implementation (RFC 9162 §2.1), independent of the crate.
// ---------------------------------------------------------------------------------------

fn sha256(parts: &[&[u8]]) -> H {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    ctx.finish().as_ref().try_into().unwrap()
}

fn ref_node(left: &H, right: &H) -> H {
    sha256(&[&[0x01], left, right])
}

/// The largest power of two smaller than n (n > 1).
fn ref_k(n: usize) -> usize {
    assert!(n > 1);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]) over raw entries.
fn ref_mth(d: &[Vec<u8>]) -> H {
    match d.len() {
        0 => sha256(&[]),
        1 => sha256(&[&[0x00], &d[0]]),
        n => {
            let k = ref_k(n);
            ref_node(&ref_mth(&d[..k]), &ref_mth(&d[k..]))
        }
    }
}

/// PATH(m, D[n]).
fn ref_path(m: usize, d: &[Vec<u8>]) -> Vec<H> {
    let n = d.len();
    if n == 1 {
        assert_eq!(m, 0);
        return Vec::new();
    }
    let k = ref_k(n);
    if m < k {
        let mut p = ref_path(m, &d[..k]);
        p.push(ref_mth(&d[k..]));
        p
    } else {
        let mut p = ref_path(m - k, &d[k..]);
        p.push(ref_mth(&d[..k]));
        p
    }
}

/// PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
fn ref_proof(m: usize, d: &[Vec<u8>]) -> Vec<H> {
    ref_subproof(m, d, true)
}

fn ref_subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<H> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![ref_mth(d)] };
    }
    let k = ref_k(n);
    if m <= k {
        let mut p = ref_subproof(m, &d[..k], b);
        p.push(ref_mth(&d[k..]));
        p
    } else {
        let mut p = ref_subproof(m - k, &d[k..], false);
        p.push(ref_mth(&d[..k]));
        p
    }
}

/// |PATH(m, D[n])|, by the same recursion without hashing.
fn ref_path_len(m: usize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let k = ref_k(n);
    1 + if m < k {
        ref_path_len(m, k)
    } else {
        ref_path_len(m - k, n - k)
    }
}

/// |SUBPROOF(m, D[n], b)|, by the same recursion without hashing.
fn ref_subproof_len(m: usize, n: usize, b: bool) -> usize {
    if m == n {
        return usize::from(!b);
    }
    let k = ref_k(n);
    1 + if m <= k {
        ref_subproof_len(m, k, b)
    } else {
        ref_subproof_len(m - k, n - k, false)
    }
}

/// Rebuilds the root an audit path implies by following PATH's recursion; `None` if the
/// path has the wrong shape for (m, n).
fn ref_root_from_path(m: usize, n: usize, leaf: &H, proof: &[H]) -> Option<H> {
    if m >= n {
        return None;
    }
    if n == 1 {
        return proof.is_empty().then_some(*leaf);
    }
    let (top, rest) = proof.split_last()?;
    let k = ref_k(n);
    Some(if m < k {
        ref_node(&ref_root_from_path(m, k, leaf, rest)?, top)
    } else {
        ref_node(top, &ref_root_from_path(m - k, n - k, leaf, rest)?)
    })
}

fn ref_verify_inclusion(leaf: &H, m: usize, n: usize, proof: &[H], root: &H) -> bool {
    ref_root_from_path(m, n, leaf, proof).as_ref() == Some(root)
}

/// Rebuilds (old root, new root) a consistency proof implies by following SUBPROOF's
/// recursion; the proof is consumed from its end (the top of the tree).
fn ref_roots_from_proof(
    m: usize,
    n: usize,
    b: bool,
    old_root: &H,
    proof: &mut &[H],
) -> Option<(H, H)> {
    if m == n {
        if b {
            return Some((*old_root, *old_root));
        }
        let (h, rest) = proof.split_last()?;
        *proof = rest;
        return Some((*h, *h));
    }
    let (top, rest) = proof.split_last()?;
    *proof = rest;
    let k = ref_k(n);
    if m <= k {
        let (old, new) = ref_roots_from_proof(m, k, b, old_root, proof)?;
        Some((old, ref_node(&new, top)))
    } else {
        let (old, new) = ref_roots_from_proof(m - k, n - k, false, old_root, proof)?;
        Some((ref_node(top, &old), ref_node(top, &new)))
    }
}

fn ref_verify_consistency(m: usize, n: usize, old_root: &H, new_root: &H, proof: &[H]) -> bool {
    if m == 0 || m > n {
        return false;
    }
    let mut rest = proof;
    match ref_roots_from_proof(m, n, true, old_root, &mut rest) {
        Some((old, new)) => rest.is_empty() && old == *old_root && new == *new_root,
        None => false,
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

fn entries(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("event #{i}").into_bytes()).collect()
}

fn crate_leaves(d: &[Vec<u8>]) -> Vec<H> {
    d.iter().map(|e| leaf_hash(e)).collect()
}

fn flip_each_byte(proof: &[H]) -> impl Iterator<Item = Vec<H>> + '_ {
    (0..proof.len() * 32).map(move |bit| {
        let mut bad = proof.to_vec();
        bad[bit / 32][bit % 32] ^= 0x01;
        bad
    })
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn reference_sanity() {
    // Guards the oracle itself: the textbook 7-leaf example shape and the empty tree.
    let d = entries(7);
    let l: Vec<H> = d.iter().map(|e| sha256(&[&[0], e])).collect();
    let a = ref_node(&l[0], &l[1]);
    let b = ref_node(&l[2], &l[3]);
    let c = ref_node(&l[4], &l[5]);
    let expected = ref_node(&ref_node(&a, &b), &ref_node(&c, &l[6]));
    assert_eq!(ref_mth(&d), expected);
    assert_eq!(ref_path(0, &d), vec![l[1], b, ref_node(&c, &l[6])]);
    assert_eq!(ref_path(6, &d), vec![c, ref_node(&a, &b)]);
    // The RFC's worked examples (§2.1.5), where g = a, h = b, i = c, j = l[6]:
    // PATH for d0 = [b, h, l], for d6 = [i, k]; PROOF(3) = [c, d, g, l], PROOF(4) = [l],
    // PROOF(6) = [i, j, k].
    assert_eq!(ref_proof(3, &d), vec![l[2], l[3], a, ref_node(&c, &l[6])]);
    assert_eq!(ref_proof(4, &d), vec![ref_node(&c, &l[6])]);
    assert_eq!(ref_proof(6, &d), vec![c, l[6], ref_node(&a, &b)]);
    assert_eq!(
        ref_mth(&[]),
        sha256(&[]),
        "empty tree hashes the empty string"
    );
}

#[test]
fn leaf_hashes_match_reference() {
    for e in entries(MAX_SIZE) {
        assert_eq!(leaf_hash(&e), sha256(&[&[0x00], &e]));
    }
    assert_eq!(ward_audit::empty_root(), ref_mth(&[]));
    assert_eq!(root(&[]), ref_mth(&[]));
    assert_eq!(Frontier::new().root(), ref_mth(&[]));
    let (a, b) = ([1u8; 32], [2u8; 32]);
    assert_eq!(ward_audit::node_hash(&a, &b), sha256(&[&[0x01], &a, &b]));
    assert_eq!(ward_audit::chain_hash(&a, &b), sha256(&[&[0x02], &a, &b]));
}

#[test]
fn roots_match_reference() {
    let all = entries(MAX_SIZE);
    let leaves = crate_leaves(&all);
    for n in 1..=MAX_SIZE {
        let expected = ref_mth(&all[..n]);
        assert_eq!(root(&leaves[..n]), expected, "root, size {n}");
        assert_eq!(
            Frontier::from_leaves(&leaves[..n]).root(),
            expected,
            "frontier root, size {n}"
        );
    }
}

#[test]
fn inclusion_proofs_match_reference_and_verify() {
    let all = entries(MAX_SIZE + 1);
    let leaves = crate_leaves(&all);
    for n in 1..=MAX_SIZE {
        let d = &all[..n];
        let tree_root = ref_mth(d);
        for m in 0..n {
            let expected = ref_path(m, d);
            let proof = inclusion_proof(&leaves, m as u64, n as u64).unwrap();
            assert_eq!(proof, expected, "PATH({m}, D[{n}])");
            assert_eq!(ref_path_len(m, n), expected.len());
            let leaf = leaves[m];
            // Crate proof and reference proof (identical, but checked separately so the
            // test still means something if generation ever changes).
            verify_inclusion(&leaf, m as u64, n as u64, &proof, &tree_root).unwrap();
            verify_inclusion(&leaf, m as u64, n as u64, &expected, &tree_root).unwrap();
            assert!(ref_verify_inclusion(&leaf, m, n, &proof, &tree_root));
        }
    }
}

#[test]
fn inclusion_rejects_tampering() {
    let all = entries(MAX_SIZE + 2);
    let leaves = crate_leaves(&all);
    for n in 1..=MAX_SIZE {
        let d = &all[..n];
        let tree_root = ref_mth(d);
        for m in 0..n {
            let proof = ref_path(m, d);
            let (mu, nu) = (m as u64, n as u64);
            let leaf = leaves[m];
            let verify = |leaf: &H, index: u64, size: u64, proof: &[H], root: &H| {
                verify_inclusion(leaf, index, size, proof, root)
            };

            // Wrong leaf: a neighbouring entry and a single flipped bit.
            let other = leaves[(m + 1) % leaves.len()];
            assert!(verify(&other, mu, nu, &proof, &tree_root).is_err());
            let mut flipped = leaf;
            flipped[31] ^= 0x80;
            assert!(verify(&flipped, mu, nu, &proof, &tree_root).is_err());

            // Wrong index: every other index, and the first one past the end.
            for j in (0..=n).filter(|&j| j != m) {
                assert!(
                    verify(&leaf, j as u64, nu, &proof, &tree_root).is_err(),
                    "index {j} accepted for PATH({m}, D[{n}])"
                );
            }
            assert_eq!(
                verify(&leaf, nu, nu, &proof, &tree_root),
                Err(MerkleError::IndexOutOfRange {
                    index: nu,
                    tree_size: nu
                })
            );

            // Wrong size. RFC 9162 cannot reject every wrong size on its own: a path for
            // (m, n) can have exactly the shape of a path for (m, n') (the tree size is
            // authenticated by the signed tree head, not by the path). So: the crate must
            // agree with the structural oracle, and must reject whenever the path length
            // for n' differs.
            for n2 in (m + 1..=MAX_SIZE + 1).filter(|&n2| n2 != n) {
                let crate_ok = verify(&leaf, mu, n2 as u64, &proof, &tree_root).is_ok();
                let ref_ok = ref_verify_inclusion(&leaf, m, n2, &proof, &tree_root);
                assert_eq!(crate_ok, ref_ok, "PATH({m}, D[{n}]) checked as size {n2}");
                if ref_path_len(m, n2) != proof.len() {
                    assert!(!crate_ok, "PATH({m}, D[{n}]) accepted for size {n2}");
                }
            }
            assert!(verify(&leaf, mu, 0, &proof, &tree_root).is_err());

            // Any flipped proof bit.
            for bad in flip_each_byte(&proof) {
                assert!(verify(&leaf, mu, nu, &bad, &tree_root).is_err());
            }
            // Truncated and extended proofs.
            if !proof.is_empty() {
                assert!(verify(&leaf, mu, nu, &proof[..proof.len() - 1], &tree_root).is_err());
                assert!(verify(&leaf, mu, nu, &proof[1..], &tree_root).is_err());
            }
            let mut longer = proof.clone();
            longer.push(leaves[0]);
            assert!(verify(&leaf, mu, nu, &longer, &tree_root).is_err());
            let mut longer_front = vec![leaves[0]];
            longer_front.extend_from_slice(&proof);
            assert!(verify(&leaf, mu, nu, &longer_front, &tree_root).is_err());

            // Wrong root: another size's root, and a flipped bit.
            let other_root = ref_mth(&all[..n + 1]);
            assert!(verify(&leaf, mu, nu, &proof, &other_root).is_err());
            let mut bad_root = tree_root;
            bad_root[0] ^= 1;
            assert_eq!(
                verify(&leaf, mu, nu, &proof, &bad_root),
                Err(MerkleError::RootMismatch)
            );
        }
    }
}

#[test]
fn consistency_proofs_match_reference_and_verify() {
    let all = entries(MAX_SIZE);
    let leaves = crate_leaves(&all);
    for n in 1..=MAX_SIZE {
        let new_root = ref_mth(&all[..n]);
        for m in 1..=n {
            let old_root = ref_mth(&all[..m]);
            let expected = ref_proof(m, &all[..n]);
            let proof = consistency_proof(&leaves, m as u64, n as u64).unwrap();
            assert_eq!(proof, expected, "PROOF({m}, D[{n}])");
            assert_eq!(ref_subproof_len(m, n, true), expected.len());
            if m == n {
                assert!(proof.is_empty());
            }
            verify_consistency(m as u64, n as u64, &old_root, &new_root, &proof).unwrap();
            verify_consistency(m as u64, n as u64, &old_root, &new_root, &expected).unwrap();
            assert!(ref_verify_consistency(m, n, &old_root, &new_root, &proof));
        }
    }
}

#[test]
fn consistency_rejects_tampering() {
    let all = entries(MAX_SIZE + 1);
    let roots: Vec<H> = (0..=MAX_SIZE + 1).map(|n| ref_mth(&all[..n])).collect();
    for n in 1..=MAX_SIZE {
        for m in 1..=n {
            let proof = ref_proof(m, &all[..n]);
            let (mu, nu) = (m as u64, n as u64);
            let (old_root, new_root) = (roots[m], roots[n]);
            let check =
                |m: u64, n: u64, old: &H, new: &H, p: &[H]| verify_consistency(m, n, old, new, p);

            // Wrong roots. (For m == n the proof is empty and only equal roots pass.)
            let mut bad = old_root;
            bad[5] ^= 4;
            assert!(check(mu, nu, &bad, &new_root, &proof).is_err());
            let mut bad = new_root;
            bad[5] ^= 4;
            assert!(check(mu, nu, &old_root, &bad, &proof).is_err());
            assert!(check(mu, nu, &roots[n + 1], &new_root, &proof).is_err());
            assert!(check(mu, nu, &old_root, &roots[n + 1], &proof).is_err());
            if m > 1 {
                // The old root of a different (wrong) old tree content.
                let mut altered = all[..m].to_vec();
                altered[m - 1].push(b'!');
                assert!(check(mu, nu, &ref_mth(&altered), &new_root, &proof).is_err());
            }

            // Wrong sizes: must agree with the structural oracle, and must reject when
            // the proof length differs (see the inclusion test for why not always).
            for m2 in 1..=MAX_SIZE + 1 {
                for n2 in [n, n + 1, n.saturating_sub(1)] {
                    if (m2, n2) == (m, n) || n2 == 0 || m2 > n2 {
                        continue;
                    }
                    let crate_ok =
                        check(m2 as u64, n2 as u64, &old_root, &new_root, &proof).is_ok();
                    let ref_ok = ref_verify_consistency(m2, n2, &old_root, &new_root, &proof);
                    assert_eq!(
                        crate_ok, ref_ok,
                        "PROOF({m}, D[{n}]) checked as ({m2}, {n2})"
                    );
                    if ref_subproof_len(m2, n2, true) != proof.len() {
                        assert!(!crate_ok, "PROOF({m}, D[{n}]) accepted as ({m2}, {n2})");
                    }
                }
            }
            assert!(check(nu + 1, nu, &old_root, &new_root, &proof).is_err());

            // Flipped bits, truncated and extended proofs.
            for bad in flip_each_byte(&proof) {
                assert!(check(mu, nu, &old_root, &new_root, &bad).is_err());
            }
            if !proof.is_empty() {
                assert!(check(mu, nu, &old_root, &new_root, &proof[..proof.len() - 1]).is_err());
                assert!(check(mu, nu, &old_root, &new_root, &proof[1..]).is_err());
            }
            let mut longer = proof.clone();
            longer.push(roots[1]);
            assert!(check(mu, nu, &old_root, &new_root, &longer).is_err());
            let mut longer_front = vec![roots[1]];
            longer_front.extend_from_slice(&proof);
            assert!(check(mu, nu, &old_root, &new_root, &longer_front).is_err());
        }
    }
}

#[test]
fn consistency_edge_cases() {
    let all = entries(8);
    let leaves = crate_leaves(&all);
    let root8 = ref_mth(&all);
    // Every tree extends the empty tree; nothing else claims size 0.
    verify_consistency(0, 8, &ref_mth(&[]), &root8, &[]).unwrap();
    assert!(verify_consistency(0, 8, &root8, &root8, &[]).is_err());
    assert!(verify_consistency(0, 8, &ref_mth(&[]), &root8, &[root8]).is_err());
    // Generation refuses sizes the RFC does not define, and trees larger than the input.
    assert_eq!(
        consistency_proof(&leaves, 0, 8),
        Err(MerkleError::InvalidSizes {
            old_size: 0,
            new_size: 8
        })
    );
    assert!(consistency_proof(&leaves, 5, 4).is_err());
    assert_eq!(
        consistency_proof(&leaves, 4, 9),
        Err(MerkleError::TreeSizeTooLarge {
            tree_size: 9,
            available: 8
        })
    );
    assert!(inclusion_proof(&leaves, 0, 9).is_err());
    assert!(inclusion_proof(&leaves, 8, 8).is_err());
    assert!(inclusion_proof(&[], 0, 0).is_err());
}

#[test]
fn larger_tree_spot_checks() {
    // Beyond the exhaustive range: a size just past a power of two, checked at the edges.
    let n = (1 << 12) + 3;
    let all = entries(n);
    let leaves = crate_leaves(&all);
    let tree_root = ref_mth(&all);
    assert_eq!(root(&leaves), tree_root);
    for m in [0, 1, 2047, 2048, 4095, 4096, n - 1] {
        let proof = inclusion_proof(&leaves, m as u64, n as u64).unwrap();
        assert_eq!(proof, ref_path(m, &all));
        verify_inclusion(&leaves[m], m as u64, n as u64, &proof, &tree_root).unwrap();
    }
    for m in [1, 3, 2048, 2049, 4096, n - 1, n] {
        let proof = consistency_proof(&leaves, m as u64, n as u64).unwrap();
        assert_eq!(proof, ref_proof(m, &all));
        verify_consistency(m as u64, n as u64, &ref_mth(&all[..m]), &tree_root, &proof).unwrap();
    }
}

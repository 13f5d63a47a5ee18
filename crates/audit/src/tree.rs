//! The Merkle tree as it is persisted: roots of the perfect subtrees whose height is a
//! multiple of [`STORED_HEIGHT_STEP`], and proofs planned as lists of such subtrees.
//!
//! Building a proof from the leaf list costs O(n) hashing and O(n) memory: at a hundred
//! million events, seconds and gigabytes. The C2SP tlog-tiles layout avoids that by storing
//! the tree's nodes in tiles of 256 hashes; Ward stores the same kind of nodes as rows, the
//! roots of every complete 16-, 256-, 4,096-… leaf subtree. Tiles 16 wide rather than 256
//! because a proof's cost was hashing the leaves below the lowest stored level, and a range
//! read of a few more rows is cheaper (at 1,000,000 events a proof took 509 µs with 256-wide
//! steps, 197 µs with 16-wide ones, BENCHMARKS.md), for one row per 15 events. The writer
//! learns each root when the leaf that completes it is appended
//! ([`Frontier::push_recording`]), so storing them costs no extra hashing.
//!
//! A proof is then *planned* from the index and the tree sizes alone ([`inclusion_plan`],
//! [`consistency_plan`]): every element of an RFC 9162 proof is the hash of a range of leaves,
//! and every such range is a short run of perfect subtrees ([`cover`]). A perfect subtree of
//! height `h ≥ 4` is the root over at most 8 stored nodes of height `4·⌊h/4⌋`; one below
//! height 4 lies inside one 16-leaf block and is hashed from at most 16 events. So a proof
//! reads O(log n) stored hashes and at most a few blocks of events, whatever the log's size.

use std::ops::Range;

use crate::merkle::{Frontier, Hash, MerkleError, node_hash};

/// Stored node heights are the multiples of this (16 leaves per step).
pub const STORED_HEIGHT_STEP: u8 = 4;

/// A perfect subtree: the leaves `index << height .. (index + 1) << height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subtree {
    /// Height: the subtree holds `2^height` leaves.
    pub height: u8,
    /// Position among the subtrees of that height, from the left.
    pub index: u64,
}

impl Subtree {
    /// The leaves it covers.
    #[must_use]
    pub fn leaves(self) -> Range<u64> {
        let lo = self.index << self.height;
        lo..lo + (1u64 << self.height)
    }

    /// Whether the store keeps its root as a row.
    #[must_use]
    pub fn is_stored(self) -> bool {
        self.height > 0 && self.height.is_multiple_of(STORED_HEIGHT_STEP)
    }

    /// The stored subtrees whose roots, in order, are this subtree's bottom row at the
    /// nearest stored height at or below its own (`None` below the lowest stored height:
    /// hash the leaves).
    #[must_use]
    pub fn stored_row(self) -> Option<(u8, Range<u64>)> {
        let base = self.height - self.height % STORED_HEIGHT_STEP;
        (base > 0).then(|| {
            let shift = self.height - base;
            let first = self.index << shift;
            (base, first..first + (1u64 << shift))
        })
    }
}

/// A stored node as the writer produces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeNode {
    /// Which subtree.
    pub subtree: Subtree,
    /// Its root.
    pub hash: Hash,
}

impl Frontier {
    /// [`Frontier::push`], also recording in `completed` the root of every perfect subtree of
    /// a stored height ([`Subtree::is_stored`]) that this leaf completes.
    ///
    /// # Panics
    /// If the tree already holds `u64::MAX` leaves.
    pub fn push_recording(&mut self, leaf: Hash, completed: &mut Vec<TreeNode>) {
        // At the size limit, `push` refuses the leaf (its documented panic) before any node.
        let Some(new_size) = self.size().checked_add(1) else {
            self.push(leaf);
            return;
        };
        let merges = new_size.trailing_zeros() as u8;
        if merges < STORED_HEIGHT_STEP {
            self.push(leaf);
            return;
        }
        self.push_with(leaf, |height, hash| {
            let subtree = Subtree {
                height,
                index: (new_size >> height) - 1,
            };
            if subtree.is_stored() {
                completed.push(TreeNode { subtree, hash });
            }
        });
    }
}

/// The perfect subtrees that make up `range`, left to right (largest first).
///
/// Every range an RFC 9162 proof names starts at a multiple of a power of two at least as
/// large as the range, so its hash is the roots of these subtrees folded from the right
/// ([`fold_cover`]).
#[must_use]
pub fn cover(range: Range<u64>) -> Vec<Subtree> {
    let mut out = Vec::new();
    let (mut lo, hi) = (range.start, range.end);
    while lo < hi {
        let fits = 63 - (hi - lo).leading_zeros();
        let aligned = if lo == 0 { 63 } else { lo.trailing_zeros() };
        let height = fits.min(aligned) as u8;
        out.push(Subtree {
            height,
            index: lo >> height,
        });
        lo += 1u64 << height;
    }
    out
}

/// The hash of a range from the roots of its [`cover`], in the same order; the empty
/// range (which no proof names) hashes as the empty tree.
#[must_use]
pub fn fold_cover(roots: &[Hash]) -> Hash {
    let Some((last, rest)) = roots.split_last() else {
        return crate::merkle::empty_root();
    };
    rest.iter()
        .rev()
        .fold(*last, |acc, left| node_hash(left, &acc))
}

/// The leaf range of each element of `PATH(index, D[0:tree_size])`, leaf level first.
///
/// # Errors
/// [`MerkleError::IndexOutOfRange`] if `index >= tree_size`.
pub fn inclusion_plan(index: u64, tree_size: u64) -> Result<Vec<Range<u64>>, MerkleError> {
    if index >= tree_size {
        return Err(MerkleError::IndexOutOfRange { index, tree_size });
    }
    let (mut lo, mut hi) = (0, tree_size);
    let mut plan = Vec::with_capacity(64);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            plan.push(lo + k..hi);
            hi = lo + k;
        } else {
            plan.push(lo..lo + k);
            lo += k;
        }
    }
    plan.reverse();
    Ok(plan)
}

/// The leaf range of each element of `PROOF(old_size, D[0:new_size])`, leaf level first.
///
/// # Errors
/// [`MerkleError::InvalidSizes`] unless `0 < old_size <= new_size`.
pub fn consistency_plan(old_size: u64, new_size: u64) -> Result<Vec<Range<u64>>, MerkleError> {
    if old_size == 0 || old_size > new_size {
        return Err(MerkleError::InvalidSizes { old_size, new_size });
    }
    let (mut lo, mut hi) = (0, new_size);
    // SUBPROOF's flag b: whether the subtree under consideration is still the whole old
    // tree, whose root the verifier already knows and so need not be sent.
    let mut whole_old_tree = true;
    let mut plan = Vec::with_capacity(64);
    loop {
        if old_size == hi {
            if !whole_old_tree {
                plan.push(lo..hi);
            }
            break;
        }
        let k = split_point(hi - lo);
        if old_size <= lo + k {
            plan.push(lo + k..hi);
            hi = lo + k;
        } else {
            plan.push(lo..lo + k);
            lo += k;
            whole_old_tree = false;
        }
    }
    plan.reverse();
    Ok(plan)
}

/// The largest power of two strictly smaller than `n` (RFC 9162's `k`); needs `n >= 2`.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, root};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn recorded_nodes_are_the_roots_of_their_leaves() {
        let all = leaves(3 * 65_536 + 700);
        let mut frontier = Frontier::new();
        let mut nodes = Vec::new();
        for leaf in &all {
            frontier.push_recording(*leaf, &mut nodes);
        }
        assert_eq!(frontier, Frontier::from_leaves(&all));
        // Every complete 16-, 256-, 4,096- and 65,536-leaf subtree.
        let n = all.len();
        assert_eq!(nodes.len(), (n >> 4) + (n >> 8) + (n >> 12) + (n >> 16));
        for node in &nodes {
            let r = node.subtree.leaves();
            assert_eq!(node.hash, root(&all[r.start as usize..r.end as usize]));
        }
        assert!(nodes.iter().all(|n| n.subtree.is_stored()));
    }

    #[test]
    fn covers_are_aligned_and_exact() {
        for (lo, hi) in [
            (0, 1),
            (0, 7),
            (8, 13),
            (256, 1000),
            (1 << 20, (1 << 20) + 3),
        ] {
            let parts = cover(lo..hi);
            let mut at = lo;
            for p in &parts {
                assert_eq!(p.leaves().start, at);
                at = p.leaves().end;
            }
            assert_eq!(at, hi);
        }
        assert_eq!(
            Subtree {
                height: 19,
                index: 3
            }
            .stored_row(),
            Some((16, 24..32))
        );
        assert_eq!(
            Subtree {
                height: 7,
                index: 3
            }
            .stored_row(),
            Some((4, 24..32))
        );
        assert_eq!(
            Subtree {
                height: 3,
                index: 3
            }
            .stored_row(),
            None
        );
    }
}

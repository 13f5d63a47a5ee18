//! The Merkle tree of the audit log, hashed exactly as RFC 9162 §2.1 specifies.
//!
//! Following the RFC to the letter (rather than inventing a tree shape) means any third
//! party can check Ward's inclusion and consistency proofs with an off-the-shelf Certificate
//! Transparency verifier; nothing here is Ward-specific except [`chain_hash`].
//!
//! * leaf hash: `SHA-256(0x00 ‖ data)`
//! * node hash: `SHA-256(0x01 ‖ left ‖ right)`
//! * root of the empty tree: `SHA-256("")`
//! * tree shape: `MTH(D[n])` splits at `k`, the largest power of two smaller than `n`.
//!
//! The distinct one-byte prefixes keep a leaf from ever being passed off as an inner node
//! (second-preimage resistance). [`chain_hash`] uses a third prefix, `0x02`, for the same
//! reason: a chain value can never collide with a leaf or a node hash.
//!
//! Appending only ever needs the [`Frontier`]: the roots of the perfect subtrees that cover
//! the leaves so far, at most 64 hashes. The full leaf list is only needed to build proofs.

use aws_lc_rs::digest;
use thiserror::Error;

/// A SHA-256 output: leaf hashes, node hashes, roots and chain values.
pub type Hash = [u8; 32];

/// The chain value "before" index 0, so that the first event's chain is well defined.
pub const CHAIN_GENESIS: Hash = [0u8; 32];

/// Version tag that starts [`Frontier::to_bytes`], so the encoding can evolve without
/// misreading frontiers persisted by an older release.
const FRONTIER_FORMAT_V1: u8 = 1;

/// Events up to this size are hashed from a stack buffer with the one-shot SHA-256, which
/// avoids the heap allocation an incremental aws-lc digest context makes.
const STACK_LEAF_MAX: usize = 1024;

/// Why a Merkle computation, proof or persisted frontier was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MerkleError {
    /// The leaf index does not lie inside the tree it is claimed to belong to.
    #[error("leaf index {index} is outside a tree of size {tree_size}")]
    IndexOutOfRange {
        /// The requested leaf index.
        index: u64,
        /// The size of the tree.
        tree_size: u64,
    },
    /// A proof was requested for a tree larger than the leaves supplied.
    #[error("tree size {tree_size} exceeds the {available} leaves supplied")]
    TreeSizeTooLarge {
        /// The requested tree size.
        tree_size: u64,
        /// How many leaves were supplied.
        available: u64,
    },
    /// A consistency proof needs `0 < old_size <= new_size`.
    #[error("no consistency proof exists from tree size {old_size} to tree size {new_size}")]
    InvalidSizes {
        /// The older (smaller) tree size.
        old_size: u64,
        /// The newer (larger) tree size.
        new_size: u64,
    },
    /// The proof does not have the length the tree sizes require.
    #[error("proof has the wrong number of hashes for the claimed tree sizes")]
    WrongProofLength,
    /// The proof was well formed but the recomputed root is not the one claimed.
    #[error("proof does not lead to the claimed root")]
    RootMismatch,
    /// Persisted frontier bytes are malformed.
    #[error("malformed frontier encoding: {0}")]
    MalformedFrontier(&'static str),
}

/// `SHA-256(0x00 ‖ data)`: the RFC 9162 hash of one log entry.
#[must_use]
pub fn leaf_hash(data: &[u8]) -> Hash {
    if data.len() < STACK_LEAF_MAX {
        let mut buf = [0u8; STACK_LEAF_MAX];
        buf[1..=data.len()].copy_from_slice(data);
        sha256(&buf[..=data.len()])
    } else {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&[0x00]);
        ctx.update(data);
        to_hash(ctx.finish().as_ref())
    }
}

/// Like [`leaf_hash`], but reuses `scratch` for large inputs, so a long-running verifier
/// allocates nothing per event once the buffer has grown to the largest event.
pub(crate) fn leaf_hash_with(scratch: &mut Vec<u8>, data: &[u8]) -> Hash {
    if data.len() < STACK_LEAF_MAX {
        return leaf_hash(data);
    }
    scratch.clear();
    scratch.push(0x00);
    scratch.extend_from_slice(data);
    sha256(scratch)
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the RFC 9162 hash of an inner node.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    prefixed_pair(0x01, left, right)
}

/// `SHA-256("")`: the RFC 9162 root of a tree with no leaves.
#[must_use]
pub fn empty_root() -> Hash {
    sha256(&[])
}

/// `SHA-256(0x02 ‖ prev ‖ leaf)`: one link of the per-event hash chain.
///
/// The Merkle root only says *that* something changed; the chain value stored with every
/// row lets a verifier name the *first* row whose content or position no longer matches.
/// The chain before index 0 is [`CHAIN_GENESIS`].
#[must_use]
pub fn chain_hash(prev: &Hash, leaf: &Hash) -> Hash {
    prefixed_pair(0x02, prev, leaf)
}

fn prefixed_pair(prefix: u8, a: &Hash, b: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = prefix;
    buf[1..33].copy_from_slice(a);
    buf[33..].copy_from_slice(b);
    sha256(&buf)
}

fn sha256(data: &[u8]) -> Hash {
    to_hash(digest::digest(&digest::SHA256, data).as_ref())
}

fn to_hash(bytes: &[u8]) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(bytes);
    out
}

/// The compact range of a tree: the roots of the perfect subtrees that cover leaves
/// `0..size`, largest (leftmost) first.
///
/// There is one root per set bit of `size`, so the frontier never holds more than 64 hashes.
/// That is what lets the writer keep the tree in memory and append in O(1) amortized
/// hashing, and what is persisted with each checkpoint so that a verifier can resume after
/// the leaves before the checkpoint have been pruned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The frontier after appending `leaves` (leaf hashes) to the empty tree.
    #[must_use]
    pub fn from_leaves(leaves: &[Hash]) -> Self {
        let mut frontier = Self::new();
        for leaf in leaves {
            frontier.push(*leaf);
        }
        frontier
    }

    /// Appends one leaf hash.
    ///
    /// Works like incrementing a binary counter: every trailing one bit of the old size is a
    /// perfect subtree of equal height that now merges with the new one.
    ///
    /// # Panics
    /// If the tree already holds `u64::MAX` leaves.
    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_, _| {});
    }

    /// [`Frontier::push`], calling `merged(height, root)` for every perfect subtree of
    /// height one and more that the merges complete, smallest first.
    pub(crate) fn push_with(&mut self, leaf: Hash, mut merged: impl FnMut(u8, Hash)) {
        let mut hash = leaf;
        let mut size = self.size;
        let mut height = 0u8;
        while size & 1 == 1 {
            // The invariant nodes.len() == popcount(size) guarantees a node per set bit.
            let left = self
                .nodes
                .pop()
                .expect("frontier holds one node per set bit");
            hash = node_hash(&left, &hash);
            height += 1;
            merged(height, hash);
            size >>= 1;
        }
        self.nodes.push(hash);
        self.size = self.size.checked_add(1).expect("audit log size overflow");
    }

    /// The number of leaves covered.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect-subtree roots, leftmost (largest) first.
    #[must_use]
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// `MTH(D[0:size])` as RFC 9162 defines it.
    ///
    /// Folding the subtree roots from the right reproduces the RFC's split at the largest
    /// power of two, because the leftmost subtree is exactly that power of two.
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |acc, left| node_hash(left, &acc))
    }

    /// Encodes the frontier for persisting next to a checkpoint.
    ///
    /// Layout: one version byte (`1`), the size as a big-endian `u64`, then the
    /// `popcount(size)` subtree roots, leftmost first, 32 bytes each.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + 32 * self.nodes.len());
        out.push(FRONTIER_FORMAT_V1);
        out.extend_from_slice(&self.size.to_be_bytes());
        for node in &self.nodes {
            out.extend_from_slice(node);
        }
        out
    }

    /// Decodes [`Frontier::to_bytes`].
    ///
    /// The node count is checked against `popcount(size)`, because a frontier with the
    /// wrong shape would silently compute wrong roots from then on.
    ///
    /// # Errors
    /// [`MerkleError::MalformedFrontier`] for an unknown version, a truncated header or a
    /// node count that does not match the size.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MerkleError> {
        let (&version, rest) = bytes
            .split_first()
            .ok_or(MerkleError::MalformedFrontier("empty input"))?;
        if version != FRONTIER_FORMAT_V1 {
            return Err(MerkleError::MalformedFrontier("unknown format version"));
        }
        let (size_bytes, rest) = rest
            .split_first_chunk::<8>()
            .ok_or(MerkleError::MalformedFrontier("truncated size"))?;
        let size = u64::from_be_bytes(*size_bytes);
        let expected = size.count_ones() as usize;
        let (nodes, remainder) = rest.as_chunks::<32>();
        if !remainder.is_empty() || nodes.len() != expected {
            return Err(MerkleError::MalformedFrontier(
                "node count does not match the tree size",
            ));
        }
        Ok(Self {
            size,
            nodes: nodes.to_vec(),
        })
    }
}

/// `MTH(D[n])` of RFC 9162 over leaf hashes, in O(n) hashing and O(log n) memory.
#[must_use]
pub fn root(leaves: &[Hash]) -> Hash {
    Frontier::from_leaves(leaves).root()
}

fn slice_len(leaves: &[Hash]) -> u64 {
    // usize is at most 64 bits on every supported target.
    leaves.len() as u64
}

fn check_available(leaves: &[Hash], tree_size: u64) -> Result<&[Hash], MerkleError> {
    let available = slice_len(leaves);
    if tree_size > available {
        return Err(MerkleError::TreeSizeTooLarge {
            tree_size,
            available,
        });
    }
    // tree_size <= leaves.len(), so it fits in usize.
    Ok(&leaves[..tree_size as usize])
}

/// `PATH(index, D[0:tree_size])` of RFC 9162 §2.1.3.1: the audit path, leaf level first.
///
/// Hashes every leaf range of the [`crate::tree::inclusion_plan`]: O(tree_size) work. The
/// server builds the same proof from stored subtree roots instead.
///
/// # Errors
/// [`MerkleError::TreeSizeTooLarge`] if `leaves` is shorter than `tree_size`;
/// [`MerkleError::IndexOutOfRange`] if `index >= tree_size`.
pub fn inclusion_proof(
    leaves: &[Hash],
    index: u64,
    tree_size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    let d = check_available(leaves, tree_size)?;
    Ok(crate::tree::inclusion_plan(index, tree_size)?
        .into_iter()
        .map(|r| root(&d[r.start as usize..r.end as usize]))
        .collect())
}

/// `PROOF(old_size, D[0:new_size])` of RFC 9162 §2.1.4.1, leaf level first.
///
/// Equal sizes give the empty proof. Like [`inclusion_proof`], total work is
/// O(new_size) hashes.
///
/// # Errors
/// [`MerkleError::InvalidSizes`] unless `0 < old_size <= new_size`;
/// [`MerkleError::TreeSizeTooLarge`] if `leaves` is shorter than `new_size`.
pub fn consistency_proof(
    leaves: &[Hash],
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    if old_size == 0 || old_size > new_size {
        return Err(MerkleError::InvalidSizes { old_size, new_size });
    }
    let d = check_available(leaves, new_size)?;
    Ok(crate::tree::consistency_plan(old_size, new_size)?
        .into_iter()
        .map(|r| root(&d[r.start as usize..r.end as usize]))
        .collect())
}

/// Checks an audit path with the algorithm of RFC 9162 §2.1.3.2.
///
/// # Errors
/// [`MerkleError::IndexOutOfRange`] if `index >= tree_size`;
/// [`MerkleError::WrongProofLength`] if the path is too short or too long for the tree;
/// [`MerkleError::RootMismatch`] if it leads to a different root.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if index >= tree_size {
        return Err(MerkleError::IndexOutOfRange { index, tree_size });
    }
    let mut fn_ = index;
    let mut sn = tree_size - 1;
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(MerkleError::WrongProofLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                // fn_ == sn here, and sn > 0 so fn_ > 0: the loop ends.
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(MerkleError::WrongProofLength);
    }
    if r != *root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Checks a consistency proof with the algorithm of RFC 9162 §2.1.4.2.
///
/// Cases the RFC algorithm leaves out are decided the way Certificate Transparency
/// verifiers do: equal sizes need an empty proof and equal roots; an old size of 0 needs an
/// empty proof and `old_root` equal to [`empty_root`] (every tree extends the empty one).
///
/// # Errors
/// [`MerkleError::InvalidSizes`] if `old_size > new_size`;
/// [`MerkleError::WrongProofLength`] if the proof is too short or too long;
/// [`MerkleError::RootMismatch`] if either recomputed root differs from the claimed one.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::InvalidSizes { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(MerkleError::WrongProofLength);
        }
        let expected_old = if old_size == 0 {
            empty_root()
        } else {
            *new_root
        };
        if *old_root != expected_old {
            return Err(MerkleError::RootMismatch);
        }
        return Ok(());
    }
    // Step 1 of the RFC: a proof for m < n is never empty.
    if proof.is_empty() {
        return Err(MerkleError::WrongProofLength);
    }
    // Step 2: when the old tree is a perfect subtree of the new one, its root is the
    // first path element and the proof omits it.
    let (first, rest): (&Hash, &[Hash]) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        (&proof[0], &proof[1..])
    };
    let mut fn_ = old_size - 1;
    let mut sn = new_size - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = *first;
    let mut sr = *first;
    for c in rest {
        if sn == 0 {
            return Err(MerkleError::WrongProofLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(MerkleError::WrongProofLength);
    }
    if fr != *old_root || sr != *new_root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        use crate::tree::split_point;
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn known_answers() {
        // SHA-256("") and SHA-256(0x00), from any SHA-256 implementation.
        assert_eq!(
            empty_root(),
            hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(
            leaf_hash(b""),
            hex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        );
    }

    #[test]
    fn large_leaves_hash_like_small_ones() {
        // The stack-buffer and streaming paths must agree at the boundary.
        let mut scratch = Vec::new();
        for len in [STACK_LEAF_MAX - 2, STACK_LEAF_MAX - 1, STACK_LEAF_MAX, 5000] {
            let data = vec![0xabu8; len];
            let mut ctx = digest::Context::new(&digest::SHA256);
            ctx.update(&[0]);
            ctx.update(&data);
            let expected = to_hash(ctx.finish().as_ref());
            assert_eq!(leaf_hash(&data), expected, "len {len}");
            assert_eq!(leaf_hash_with(&mut scratch, &data), expected, "len {len}");
        }
    }

    fn hex(s: &str) -> Hash {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}

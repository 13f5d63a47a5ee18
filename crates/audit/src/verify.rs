//! Streaming verification of a stored audit log against its signed checkpoints.
//!
//! `ward audit verify` reads millions of rows in index order and feeds each one here. Two
//! independent mechanisms catch tampering, and they answer different questions:
//!
//! * The **chain** (`chain_hash(prev, leaf)` stored with every row) answers *where*: the
//!   first row whose index, content or position disagrees with what precedes it is named
//!   exactly. But the chain is unkeyed, so an attacker who rewrites every chain value after
//!   an edit would pass this check.
//! * The **signed checkpoints** answer *whether*: the Merkle root and the chain value at a
//!   checkpoint are signed, so a rewritten chain or any change to the events covered shows
//!   up as a mismatch when the verifier reaches that checkpoint.
//!
//! The verifier keeps only the Merkle [`Frontier`] (at most 64 hashes) and the running
//! chain value, and reuses one scratch buffer, so memory is constant and the per-event cost
//! is a few SHA-256 compressions with no allocation.
//!
//! Errors are sticky: after the first failure every further call reports that same
//! failure, because everything after the first bad row is unverifiable anyway and the first
//! bad index is what an operator needs.

use thiserror::Error;

use crate::checkpoint::{Checkpoint, CheckpointError, PublicKey};
use crate::merkle::{CHAIN_GENESIS, Frontier, Hash, chain_hash, leaf_hash_with};
use crate::tree::TreeNode;

/// The first problem found in the log. Each message names the first bad index (or the
/// checkpoint that exposed the problem) in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The row with the expected index is not where it should be.
    #[error(
        "audit event {expected} is missing or out of place: found index {found} where index \
         {expected} was expected (an event was deleted, inserted or renumbered)"
    )]
    Gap {
        /// The index that should have come next; the first bad index.
        expected: u64,
        /// The index actually found there.
        found: u64,
    },
    /// The row's content or position does not match the hash chain.
    #[error(
        "audit event {index} does not match the hash chain: it was edited, moved or replaced, \
         or its stored chain value was altered"
    )]
    ChainMismatch {
        /// The first bad index.
        index: u64,
    },
    /// The recomputed tree or chain differs from a validly signed checkpoint.
    #[error(
        "the audit log does not match its signed checkpoint at tree size {tree_size}: an event \
         with an index below {tree_size} was altered and the hash chain rewritten to hide it"
    )]
    CheckpointMismatch {
        /// The size of the checkpoint that exposed the tampering.
        tree_size: u64,
    },
    /// A checkpoint's signature does not verify under the trusted key.
    #[error(
        "the checkpoint for tree size {tree_size} has an invalid signature: it was forged or \
         altered, or signed by a different key"
    )]
    BadSignature {
        /// The tree size the checkpoint claims.
        tree_size: u64,
    },
    /// A checkpoint's fields cannot be decoded, so it cannot have been signed by Ward.
    #[error("the checkpoint for tree size {tree_size} is malformed: {reason}")]
    MalformedCheckpoint {
        /// The tree size the checkpoint claims.
        tree_size: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The log ends before the end of a signed checkpoint: events were cut off.
    #[error(
        "the audit log ends after {log_size} events but a signed checkpoint covers \
         {checkpoint_size}: events from index {log_size} on were deleted"
    )]
    Truncated {
        /// The size the checkpoint vouches for.
        checkpoint_size: u64,
        /// How many events the log actually has; the first missing index.
        log_size: u64,
    },
    /// A checkpoint was checked after the verifier had already passed its size; this is a
    /// bug in the caller, which must check each checkpoint when `size() == tree_size`.
    #[error(
        "checkpoint for tree size {tree_size} was checked after {size} events; it must be \
         checked after exactly {tree_size}"
    )]
    NotAtCheckpoint {
        /// The checkpoint's tree size.
        tree_size: u64,
        /// The verifier's size when it was checked.
        size: u64,
    },
    /// [`Verifier::resume`] was given a frontier of a different size than the start index.
    #[error(
        "cannot resume verification at index {start_index} from a frontier of {frontier_size} \
         events"
    )]
    InconsistentResume {
        /// The index verification was to resume at.
        start_index: u64,
        /// The size of the frontier supplied.
        frontier_size: u64,
    },
}

impl VerifyError {
    /// The first index known to be bad, when the failure pins one down.
    #[must_use]
    pub fn first_bad_index(&self) -> Option<u64> {
        match self {
            Self::Gap { expected, .. } => Some(*expected),
            Self::ChainMismatch { index } => Some(*index),
            Self::Truncated { log_size, .. } => Some(*log_size),
            _ => None,
        }
    }
}

/// Recomputes the tree and chain of a log fed to it row by row, in index order.
#[derive(Debug, Clone)]
pub struct Verifier {
    frontier: Frontier,
    chain: Hash,
    next: u64,
    failed: Option<VerifyError>,
    /// Reused for hashing events too large for the stack buffer.
    scratch: Vec<u8>,
    /// The stored-height tree nodes completed since [`Verifier::take_nodes`], for checking
    /// the nodes the store serves proofs from.
    nodes: Vec<TreeNode>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    /// A verifier expecting index 0 of an unpruned log.
    #[must_use]
    pub fn new() -> Self {
        Self {
            frontier: Frontier::new(),
            chain: CHAIN_GENESIS,
            next: 0,
            failed: None,
            scratch: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// A verifier that continues at `start_index` after the events before it were pruned,
    /// from the frontier and chain value persisted with the checkpoint at that size.
    ///
    /// The frontier and chain are taken on trust here; call [`Verifier::check_checkpoint`]
    /// with that checkpoint right away (or use [`Verifier::resume_from_checkpoint`]) to tie
    /// them to the signature. A frontier whose size is not `start_index` makes every call
    /// fail with [`VerifyError::InconsistentResume`].
    #[must_use]
    pub fn resume(start_index: u64, frontier: Frontier, chain: Hash) -> Self {
        let failed = (frontier.size() != start_index).then(|| VerifyError::InconsistentResume {
            start_index,
            frontier_size: frontier.size(),
        });
        Self {
            frontier,
            chain,
            next: start_index,
            failed,
            scratch: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// [`Verifier::resume`] at a signed checkpoint, checking the persisted frontier against
    /// the checkpoint's signed root before trusting it.
    ///
    /// # Errors
    /// Whatever [`Verifier::check_checkpoint`] reports, or
    /// [`VerifyError::InconsistentResume`] if the frontier is for a different size.
    pub fn resume_from_checkpoint(
        checkpoint: &Checkpoint,
        key: &PublicKey,
        frontier: Frontier,
    ) -> Result<Self, VerifyError> {
        let chain = decoded(checkpoint, checkpoint.chain_hash())?;
        let verifier = Self::resume(checkpoint.tree_size, frontier, chain);
        verifier.check_checkpoint(checkpoint, key)?;
        Ok(verifier)
    }

    /// Feeds the next stored row: its index, its canonical event bytes and the chain value
    /// stored with it.
    ///
    /// # Errors
    /// [`VerifyError::Gap`] if `index` is not the next expected one,
    /// [`VerifyError::ChainMismatch`] if the recomputed chain value differs from
    /// `stored_chain`, or the first error already found.
    pub fn feed(
        &mut self,
        index: u64,
        event_bytes: &[u8],
        stored_chain: &Hash,
    ) -> Result<(), VerifyError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if index != self.next {
            return Err(self.fail(VerifyError::Gap {
                expected: self.next,
                found: index,
            }));
        }
        let leaf = leaf_hash_with(&mut self.scratch, event_bytes);
        let chain = chain_hash(&self.chain, &leaf);
        if chain != *stored_chain {
            return Err(self.fail(VerifyError::ChainMismatch { index }));
        }
        self.chain = chain;
        self.frontier.push_recording(leaf, &mut self.nodes);
        self.next += 1;
        Ok(())
    }

    /// The tree nodes of stored heights ([`crate::tree`]) that the events fed since the last
    /// call completed, recomputed from those events: what the stored nodes must equal.
    pub fn take_nodes(&mut self) -> Vec<TreeNode> {
        std::mem::take(&mut self.nodes)
    }

    /// Checks a checkpoint once exactly `cp.tree_size` events have been fed: the signature
    /// must verify under `key`, and the recomputed root and chain must equal the signed ones.
    ///
    /// The signature is checked first, so an unsigned "checkpoint" cannot make the verifier
    /// claim the log was truncated.
    ///
    /// # Errors
    /// [`VerifyError::BadSignature`], [`VerifyError::MalformedCheckpoint`],
    /// [`VerifyError::Truncated`] (fewer events than the checkpoint covers),
    /// [`VerifyError::NotAtCheckpoint`] (more), [`VerifyError::CheckpointMismatch`], or the
    /// first error already found.
    pub fn check_checkpoint(&self, cp: &Checkpoint, key: &PublicKey) -> Result<(), VerifyError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match cp.verify(key) {
            Ok(()) => {}
            Err(CheckpointError::BadSignature { tree_size }) => {
                return Err(VerifyError::BadSignature { tree_size });
            }
            Err(other) => return Err(malformed(cp, &other)),
        }
        let size = self.size();
        if size < cp.tree_size {
            return Err(VerifyError::Truncated {
                checkpoint_size: cp.tree_size,
                log_size: size,
            });
        }
        if size > cp.tree_size {
            return Err(VerifyError::NotAtCheckpoint {
                tree_size: cp.tree_size,
                size,
            });
        }
        let root = decoded(cp, cp.root_hash())?;
        let chain = decoded(cp, cp.chain_hash())?;
        if root != self.frontier.root() || chain != self.chain {
            return Err(VerifyError::CheckpointMismatch {
                tree_size: cp.tree_size,
            });
        }
        Ok(())
    }

    /// Call after the last row: reports the first error found, or
    /// [`VerifyError::Truncated`] if the log is shorter than the largest checkpoint known
    /// (`latest_checkpoint_size`), since deleting the newest rows leaves no gap to notice.
    ///
    /// # Errors
    /// As described.
    pub fn finish(&self, latest_checkpoint_size: Option<u64>) -> Result<(), VerifyError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match latest_checkpoint_size {
            Some(checkpoint_size) if checkpoint_size > self.size() => Err(VerifyError::Truncated {
                checkpoint_size,
                log_size: self.size(),
            }),
            _ => Ok(()),
        }
    }

    /// Number of events verified so far (including any pruned ones before a resume); the
    /// next index expected.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.next
    }

    /// Merkle root of the events verified so far.
    #[must_use]
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Chain value after the last event verified.
    #[must_use]
    pub fn chain(&self) -> Hash {
        self.chain
    }

    /// The frontier of the events verified so far.
    #[must_use]
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// The first error found, if any.
    #[must_use]
    pub fn first_error(&self) -> Option<&VerifyError> {
        self.failed.as_ref()
    }

    fn fail(&mut self, err: VerifyError) -> VerifyError {
        self.failed = Some(err.clone());
        err
    }
}

fn malformed(cp: &Checkpoint, err: &CheckpointError) -> VerifyError {
    VerifyError::MalformedCheckpoint {
        tree_size: cp.tree_size,
        reason: err.to_string(),
    }
}

fn decoded(cp: &Checkpoint, value: Result<Hash, CheckpointError>) -> Result<Hash, VerifyError> {
    value.map_err(|e| malformed(cp, &e))
}

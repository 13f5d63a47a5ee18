//! Proofs from the stored Merkle tree: O(log n) stored nodes and at most a few 16-event
//! blocks per proof, whatever the log's size (see [`ward_audit::tree`]).
//!
//! A node the store lacks (a log pruned before nodes were stored, a writer that could not
//! store one) is computed from the level below, down to the events; only where those events
//! were pruned too does a proof fail, with the same `pruned` error as before nodes existed.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

use ward_audit::{
    Hash, STORED_HEIGHT_STEP, Subtree, consistency_plan, cover, fold_cover, inclusion_plan, root,
};
use ward_store::{AuditHead, Store};

use crate::{Result, VaultError};

type Boxed<'s, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 's>>;

/// Events per block: the leaves below the lowest stored height (16).
const BLOCK: u64 = 1 << STORED_HEIGHT_STEP;

/// An RFC 9162 inclusion proof with what it is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The event's leaf hash.
    pub leaf: Hash,
    /// The root of the tree at the proof's size.
    pub root: Hash,
    /// The audit path, leaf level first.
    pub proof: Vec<Hash>,
}

/// An RFC 9162 consistency proof with the two roots it links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The root at the older size.
    pub from_root: Hash,
    /// The root at the newer size.
    pub to_root: Hash,
    /// The proof, leaf level first.
    pub proof: Vec<Hash>,
}

/// The inclusion proof of event `index` in the tree of `tree_size` events, built from the
/// stored tree (unaudited: the caller audits the request).
///
/// # Errors
/// `invalid_range` unless `index < tree_size <=` the log's size; `pruned` when the proof
/// needs events retention removed.
pub async fn inclusion_from_store(
    store: &dyn Store,
    index: u64,
    tree_size: u64,
) -> Result<InclusionProof> {
    let head = store.audit_head().await?;
    if tree_size == 0 || tree_size > head.size || index >= tree_size {
        return Err(out_of_range("index < tree_size", head.size, "tree_size"));
    }
    let plan = inclusion_plan(index, tree_size).map_err(bad_plan)?;
    let mut tree = StoredTree::new(store, head.size);
    let mut wanted = plan.clone();
    wanted.push(0..tree_size);
    tree.prefetch(&wanted, Some(index), &head).await?;
    Ok(InclusionProof {
        proof: tree.ranges(&plan).await?,
        leaf: tree.leaf(index).await?,
        root: tree.root(&head, tree_size).await?,
    })
}

/// The consistency proof between tree sizes `from` and `to`, built from the stored tree
/// (unaudited: the caller audits the request).
///
/// # Errors
/// `invalid_range` unless `0 < from <= to <=` the log's size; `pruned` when the proof needs
/// events retention removed.
pub async fn consistency_from_store(
    store: &dyn Store,
    from: u64,
    to: u64,
) -> Result<ConsistencyProof> {
    let head = store.audit_head().await?;
    if from == 0 || from > to || to > head.size {
        return Err(out_of_range("0 < from <= to", head.size, "from"));
    }
    let plan = consistency_plan(from, to).map_err(bad_plan)?;
    let mut tree = StoredTree::new(store, head.size);
    let mut wanted = plan.clone();
    wanted.extend([0..from, 0..to]);
    tree.prefetch(&wanted, None, &head).await?;
    Ok(ConsistencyProof {
        proof: tree.ranges(&plan).await?,
        from_root: tree.root(&head, from).await?,
        to_root: tree.root(&head, to).await?,
    })
}

/// The error of proof sizes outside the log: `need` (`… <= size`) does not hold.
fn out_of_range(need: &str, size: u64, field: &str) -> VaultError {
    VaultError::invalid(
        "invalid_range",
        format!("need {need} <= {size} (the current log size)"),
        Some(field),
    )
}

/// The error of a plan the checked sizes should never refuse.
fn bad_plan(e: ward_audit::MerkleError) -> VaultError {
    VaultError::invalid("invalid_range", e.to_string(), None)
}

/// The error of a proof that needs events audit retention removed.
fn pruned() -> VaultError {
    VaultError::invalid(
        "pruned",
        "part of that range was pruned by audit retention",
        None,
    )
}

/// One proof's view of the stored tree, caching what it read.
struct StoredTree<'a> {
    store: &'a dyn Store,
    /// Events in the log: the newest block is read only up to here.
    size: u64,
    known: HashMap<Subtree, Hash>,
    blocks: HashMap<u64, Vec<Hash>>,
}

impl<'a> StoredTree<'a> {
    /// A view of the log as it is at `size` events.
    fn new(store: &'a dyn Store, size: u64) -> Self {
        Self {
            store,
            size,
            known: HashMap::new(),
            blocks: HashMap::new(),
        }
    }

    /// Reads what hashing `ranges` (and the leaf `leaf`) will need: the stored nodes in one
    /// store call and each block of events below them in one call of its own, all at once,
    /// so that a proof waits for about one read however many it makes (on PostgreSQL, one
    /// round trip rather than five). A range that is the whole log (`head.size` events) is
    /// the head's root and needs nothing.
    async fn prefetch(
        &mut self,
        ranges: &[Range<u64>],
        leaf: Option<u64>,
        head: &AuditHead,
    ) -> Result<()> {
        let parts: Vec<Subtree> = ranges
            .iter()
            .filter(|r| !(r.start == 0 && r.end == head.size))
            .flat_map(|r| cover(r.clone()))
            .collect();
        let spans: Vec<_> = parts.iter().filter_map(|s| s.stored_row()).collect();
        let mut blocks: Vec<u64> = parts
            .iter()
            .filter(|s| s.stored_row().is_none())
            .map(|s| s.leaves().start / BLOCK)
            .chain(leaf.map(|i| i / BLOCK))
            .collect();
        blocks.sort_unstable();
        blocks.dedup();
        let (store, size) = (self.store, self.size);
        let (nodes, read) = tokio::try_join!(
            async {
                if spans.is_empty() {
                    Ok(Vec::new())
                } else {
                    store
                        .audit_tree_nodes(spans)
                        .await
                        .map_err(VaultError::from)
                }
            },
            futures::future::try_join_all(blocks.into_iter().map(|b| read_block(store, size, b)))
        )?;
        for node in nodes {
            self.known.insert(node.subtree, node.hash);
        }
        self.blocks.extend(read);
        Ok(())
    }

    /// The hash of each leaf range (a proof plan's elements, or `0..n` for a root), reading
    /// in one store call the stored nodes they need that [`Self::prefetch`] did not.
    async fn ranges(&mut self, ranges: &[Range<u64>]) -> Result<Vec<Hash>> {
        let covers: Vec<Vec<Subtree>> = ranges.iter().map(|r| cover(r.clone())).collect();
        let spans = covers
            .iter()
            .flatten()
            .filter_map(|s| s.stored_row())
            .filter(|(height, row)| {
                row.clone().any(|index| {
                    !self.known.contains_key(&Subtree {
                        height: *height,
                        index,
                    })
                })
            })
            .collect();
        self.fetch(spans).await?;
        let mut out = Vec::with_capacity(covers.len());
        for parts in covers {
            let mut roots = Vec::with_capacity(parts.len());
            for part in parts {
                roots.push(self.subtree(part).await?);
            }
            out.push(fold_cover(&roots));
        }
        Ok(out)
    }

    /// The leaf hash of event `index`.
    async fn leaf(&mut self, index: u64) -> Result<Hash> {
        self.subtree(Subtree { height: 0, index }).await
    }

    /// `MTH(D[0:size])`: the head's root, or one computed from the stored tree.
    async fn root(&mut self, head: &AuditHead, size: u64) -> Result<Hash> {
        if size == head.size {
            return Ok(head.root);
        }
        Ok(self.ranges(std::slice::from_ref(&(0..size))).await?[0])
    }

    async fn fetch(&mut self, spans: Vec<(u8, Range<u64>)>) -> Result<()> {
        if !spans.is_empty() {
            for node in self.store.audit_tree_nodes(spans).await? {
                self.known.insert(node.subtree, node.hash);
            }
        }
        Ok(())
    }

    /// Any perfect subtree: from its stored row, or from the leaves of its block.
    fn subtree(&mut self, s: Subtree) -> Boxed<'_, Hash> {
        Box::pin(async move {
            if let Some(hash) = self.known.get(&s) {
                return Ok(*hash);
            }
            let hash = match s.stored_row() {
                Some((height, row)) => {
                    let mut roots = Vec::with_capacity(row.end.saturating_sub(row.start) as usize);
                    for index in row {
                        roots.push(self.stored(Subtree { height, index }).await?);
                    }
                    root(&roots)
                }
                None => {
                    let leaves = s.leaves();
                    let block = leaves.start / BLOCK;
                    let offset = block * BLOCK;
                    let hashes = self.block(block).await?;
                    let part = hashes
                        .get((leaves.start - offset) as usize..(leaves.end - offset) as usize)
                        .ok_or_else(pruned)?;
                    root(part)
                }
            };
            self.known.insert(s, hash);
            Ok(hash)
        })
    }

    /// A node of a stored height, computed from the level below when the store lacks it.
    fn stored(&mut self, s: Subtree) -> Boxed<'_, Hash> {
        Box::pin(async move {
            if let Some(hash) = self.known.get(&s) {
                return Ok(*hash);
            }
            let hash = if s.height == STORED_HEIGHT_STEP {
                let hashes = self.block(s.index).await?;
                if hashes.len() as u64 != BLOCK {
                    return Err(pruned());
                }
                root(hashes)
            } else {
                let height = s.height - STORED_HEIGHT_STEP;
                let first = s.index << STORED_HEIGHT_STEP;
                let row = first..first + BLOCK;
                self.fetch(vec![(height, row.clone())]).await?;
                let mut roots = Vec::with_capacity(BLOCK as usize);
                for index in row {
                    roots.push(self.stored(Subtree { height, index }).await?);
                }
                root(&roots)
            };
            self.known.insert(s, hash);
            Ok(hash)
        })
    }

    /// The leaf hashes of block `block` (fewer for the newest, partial one).
    async fn block(&mut self, block: u64) -> Result<&[Hash]> {
        if !self.blocks.contains_key(&block) {
            let (_, hashes) = read_block(self.store, self.size, block).await?;
            self.blocks.insert(block, hashes);
        }
        Ok(&self.blocks[&block])
    }
}

/// The leaf hashes of block `block` of a log of `size` events, all of them or `pruned`.
async fn read_block(store: &dyn Store, size: u64, block: u64) -> Result<(u64, Vec<Hash>)> {
    let start = block * BLOCK;
    let end = (start + BLOCK).min(size);
    let hashes = store.audit_leaves(start..end).await?;
    if hashes.len() as u64 != end.saturating_sub(start) {
        return Err(pruned());
    }
    Ok((block, hashes))
}

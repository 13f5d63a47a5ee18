//! Rebuilding the audit log's tail while a dump is imported.
//!
//! The importing store must append its next event at the right index with the right chain
//! value, so it cannot take the dump's `audit_head` row on trust: it recomputes the tail from
//! the stored log (starting at the checkpoint the log was pruned to, or at the genesis) and
//! refuses the dump if the two disagree.

use std::collections::HashMap;

use ward_audit::{Frontier, Hash, TreeNode, chain_hash};

use super::format::Value;
use super::tables::Table;
use crate::{Result, StoreError};

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Snapshot(msg.into())
}

/// The tail computed from a dump's checkpoints and events, fed in dump order.
#[derive(Default)]
pub(crate) struct AuditRebuild {
    /// Each checkpoint's tree state: where a pruned log resumes.
    checkpoints: HashMap<u64, (Frontier, Hash)>,
    newest_checkpoint: Option<u64>,
    tail: Option<(Frontier, Hash)>,
    /// The dump's `audit_head` row: size, chain, frontier.
    head: Option<(i64, Vec<u8>, Vec<u8>)>,
    /// The tree nodes the events complete: the importing store stores them, since a dump
    /// carries events, not derived hashes.
    nodes: Vec<TreeNode>,
}

/// What an import rebuilt of the audit log: its tail and tree nodes.
pub(crate) struct RebuiltAudit {
    pub(crate) frontier: Frontier,
    pub(crate) chain: Hash,
    pub(crate) nodes: Vec<TreeNode>,
}

impl AuditRebuild {
    /// A checkpoint row (they come before the events).
    fn checkpoint(&mut self, tree_size: i64, checkpoint: &str, frontier: &[u8]) -> Result<()> {
        let size = u64::try_from(tree_size)
            .map_err(|_| invalid(format!("audit checkpoint with negative size {tree_size}")))?;
        let frontier = Frontier::from_bytes(frontier)
            .map_err(|e| invalid(format!("audit checkpoint {size}: frontier: {e}")))?;
        let chain = serde_json::from_str::<ward_audit::Checkpoint>(checkpoint)
            .map_err(|e| e.to_string())
            .and_then(|cp| cp.chain_hash().map_err(|e| e.to_string()))
            .map_err(|e| invalid(format!("audit checkpoint {size}: {e}")))?;
        if frontier.size() != size {
            return Err(invalid(format!(
                "audit checkpoint {size} has a frontier of size {}",
                frontier.size()
            )));
        }
        self.checkpoints.insert(size, (frontier, chain));
        self.newest_checkpoint = self.newest_checkpoint.max(Some(size));
        Ok(())
    }

    /// The next event row, in index order.
    fn event(&mut self, idx: i64, event: &[u8]) -> Result<()> {
        let idx = u64::try_from(idx).map_err(|_| invalid(format!("audit event index {idx}")))?;
        let (frontier, chain) = match &mut self.tail {
            Some(tail) => tail,
            None => {
                let start = if idx == 0 {
                    (Frontier::new(), [0; 32])
                } else {
                    self.checkpoints.get(&idx).cloned().ok_or_else(|| {
                        invalid(format!(
                            "the audit log starts at {idx} but no checkpoint covers the \
                             pruned prefix"
                        ))
                    })?
                };
                self.tail.insert(start)
            }
        };
        if idx != frontier.size() {
            return Err(invalid(format!(
                "audit event {idx} follows event {} (the log must be gap-free)",
                frontier.size().wrapping_sub(1)
            )));
        }
        let leaf = crate::audit_codec::stored_leaf(event);
        frontier.push_recording(leaf, &mut self.nodes);
        *chain = chain_hash(chain, &leaf);
        Ok(())
    }

    /// Feeds one row of a dump: checkpoints and events go to the rebuild, the head row is
    /// kept for [`Self::finish`]; rows of other tables are ignored.
    pub(crate) fn feed(&mut self, table: &Table, values: &[Value<'_>]) -> Result<()> {
        match (table.name, values) {
            (
                "audit_checkpoints",
                [Value::Int(size), Value::Text(cp), Value::Bytes(frontier), _],
            ) => self.checkpoint(*size, cp, frontier),
            ("audit_events", [Value::Int(idx), _, _, _, _, _, _, Value::Bytes(event), _]) => {
                self.event(*idx, event)
            }
            (
                "audit_head",
                [
                    Value::Int(size),
                    Value::Bytes(chain),
                    Value::Bytes(frontier),
                ],
            ) => {
                if self
                    .head
                    .replace((*size, chain.to_vec(), frontier.to_vec()))
                    .is_some()
                {
                    return Err(invalid("the dump has two audit head rows"));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The rebuilt tail, once checked against the dump's `audit_head` row.
    pub(crate) fn finish(self) -> Result<RebuiltAudit> {
        let (size, chain, frontier) = self
            .head
            .ok_or_else(|| invalid("the dump has no audit head row"))?;
        let (rebuilt, rebuilt_chain) = match (self.tail, self.newest_checkpoint) {
            (Some(tail), _) => tail,
            // Every event pruned: the tree ends at the newest checkpoint.
            (None, Some(newest)) => self.checkpoints.get(&newest).cloned().unwrap_or_default(),
            (None, None) => (Frontier::new(), [0; 32]),
        };
        if u64::try_from(size).ok() != Some(rebuilt.size())
            || chain != rebuilt_chain
            || frontier != rebuilt.to_bytes()
        {
            return Err(invalid(format!(
                "the dump's audit head (size {size}) does not match its audit log (size {})",
                rebuilt.size()
            )));
        }
        Ok(RebuiltAudit {
            frontier: rebuilt,
            chain: rebuilt_chain,
            nodes: self.nodes,
        })
    }
}

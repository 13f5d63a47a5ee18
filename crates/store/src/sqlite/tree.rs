//! The stored Merkle tree (`audit_tree`, see [`ward_audit::tree`]): the writer stores each
//! node in the group commit that completes it, proofs read nodes and at most a few blocks of
//! events, and a log written before the table existed gets its nodes once, at open.

use std::ops::Range;

use ward_audit::{STORED_HEIGHT_STEP, Subtree, TreeNode};

use super::audit_bundles::sql_index;
use super::*;

/// Stores nodes; a node stored again (a replay after another process's append) is
/// overwritten with the value this log computes.
pub(super) fn insert_nodes(conn: &Connection, nodes: &[TreeNode]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR REPLACE INTO audit_tree (height, idx, hash) VALUES (?1, ?2, ?3)",
    )?;
    for node in nodes {
        stmt.execute(params![
            node.subtree.height,
            node.subtree.index as i64,
            node.hash.as_slice()
        ])?;
    }
    Ok(())
}

/// The stored nodes of each span, those present.
pub(super) fn nodes(c: &Connection, spans: &[(u8, Range<u64>)]) -> Result<Vec<TreeNode>> {
    let mut stmt = c.prepare_cached(
        "SELECT idx, hash FROM audit_tree WHERE height = ?1 AND idx >= ?2 AND idx < ?3 \
         ORDER BY idx",
    )?;
    let mut out = Vec::new();
    for (height, range) in spans {
        let mut rows = stmt.query(params![
            height,
            sql_index(range.start),
            sql_index(range.end)
        ])?;
        while let Some(row) = rows.next()? {
            out.push(TreeNode {
                subtree: Subtree {
                    height: *height,
                    index: row.get::<_, i64>(0)? as u64,
                },
                hash: hash_at(row, 1)?,
            });
        }
    }
    Ok(out)
}

/// Leaf hashes of the stored events in `range`.
pub(super) fn leaves(c: &Connection, range: Range<u64>) -> Result<Vec<Hash>> {
    let len = range.end.saturating_sub(range.start);
    super::read::audit::in_snapshot(c, |c| {
        let mut out = Vec::new();
        super::read::audit::each_event(c, range.start, len, |idx, event, _, _| {
            // The next `len` events stored, which run past the range where it was pruned.
            if idx < range.end {
                out.push(leaf_hash(event));
            }
            Ok(())
        })?;
        Ok(out)
    })
}

/// Stores the nodes of a log whose newest complete 16-event block has none: a log written
/// before `audit_tree` existed (hashed once, from the oldest point the log can be replayed
/// from), or one whose writer could not store them.
pub(super) fn backfill(conn: &Connection, size: u64) -> Result<()> {
    let blocks = size >> STORED_HEIGHT_STEP;
    let newest: Option<i64> = conn.query_row(
        "SELECT MAX(idx) FROM audit_tree WHERE height = ?1",
        [STORED_HEIGHT_STEP],
        |r| r.get(0),
    )?;
    if newest.map_or(0, |i| i as u64 + 1) >= blocks {
        return Ok(());
    }
    tracing::info!(
        events = size,
        "storing the audit log's Merkle tree nodes (once, after an upgrade)"
    );
    exec(conn, "BEGIN IMMEDIATE")?;
    let replayed = AuditState::rebuild_flushing(conn, Replay::FromOldest, |nodes| {
        insert_nodes(conn, nodes)?;
        nodes.clear();
        Ok(())
    });
    match replayed {
        Ok(_) => exec(conn, "COMMIT")?,
        Err(e) => {
            let _ = exec(conn, "ROLLBACK");
            // A log that cannot be replayed is for `ward audit verify` to name; the store
            // still opens, and proofs compute nodes from the events they need.
            tracing::warn!(error = %e, "cannot replay the audit log to store its tree nodes");
        }
    }
    Ok(())
}

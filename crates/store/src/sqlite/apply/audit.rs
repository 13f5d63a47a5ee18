//! The audit log: appending an event (its hash chain is kept by the writer), pruning, checkpoints.

use super::*;

/// Applies one audit op; `apply` routes only those here.
pub(super) fn apply(
    conn: &Connection,
    audit: &mut AuditState,
    committed: &mut Committed,
    op: &Op,
    events: &mut std::slice::Iter<'_, Encoded>,
) -> Result<()> {
    match op {
        Op::Audit(_) => {
            let row = PendingAudit::append(next_event(events)?, audit);
            run(conn, AUDIT_INSERT, &row.params()[..])?;
            committed.audit_indices.push(row.idx as u64);
        }
        Op::PruneAudit { before } => {
            run(
                conn,
                "DELETE FROM audit_events WHERE idx < ?1",
                [*before as i64],
            )?;
            crate::sqlite::audit_bundles::prune(conn, *before)?;
            // Postings of segments now wholly pruned; a partly pruned segment keeps its row,
            // whose pruned events a read no longer finds.
            run(
                conn,
                "DELETE FROM audit_subject_postings WHERE seg < ?1",
                [(*before >> crate::sqlite::subject_postings::SEGMENT_BITS) as i64],
            )?;
        }
        Op::SaveCheckpoint(cp) => {
            run(
                conn,
                "INSERT OR REPLACE INTO audit_checkpoints (tree_size, checkpoint, frontier, \
                 created_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    cp.tree_size as i64,
                    cp.checkpoint,
                    cp.frontier,
                    to_micros(cp.created_at),
                ],
            )?;
        }
        _ => return Err(misrouted("audit")),
    }
    Ok(())
}

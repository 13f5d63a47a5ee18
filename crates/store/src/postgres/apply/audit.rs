//! The audit log outside of appends (those are staged by the writer): pruning, checkpoints.

use super::*;

/// Applies one audit op; `apply` routes only those here.
pub(super) async fn apply(conn: &mut PgConnection, op: Op) -> Result<()> {
    match op {
        Op::PruneAudit { before } => {
            // The tail in `audit_head` is untouched: pruning removes leaves, not the tree.
            sqlx::query("DELETE FROM audit_events WHERE idx < $1")
                .bind(i64::try_from(before).unwrap_or(i64::MAX))
                .execute(&mut *conn)
                .await?;
        }
        Op::SaveCheckpoint(cp) => {
            sqlx::query(
                "INSERT INTO audit_checkpoints (tree_size, checkpoint, frontier, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO UPDATE SET \
                 checkpoint = EXCLUDED.checkpoint, frontier = EXCLUDED.frontier, \
                 created_at = EXCLUDED.created_at",
            )
            .bind(cp.tree_size as i64)
            .bind(&cp.checkpoint)
            .bind(&cp.frontier)
            .bind(to_micros(cp.created_at))
            .execute(&mut *conn)
            .await?;
        }
        _ => return Err(misrouted("audit")),
    }
    Ok(())
}

//! The stored Merkle tree (`audit_tree`, see [`ward_audit::tree`]): the writer stores each
//! node in the statement that appends the event completing it, proofs read nodes and at most
//! a few blocks of events, and a log written before the table existed gets its nodes once,
//! when a server first opens it.

use std::ops::Range;

use ward_audit::{STORED_HEIGHT_STEP, Subtree, TreeNode};

use super::*;

/// Events a backfill hashes per query.
const BACKFILL_PAGE: i64 = 10_000;

fn bound(i: u64) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

/// The columns of `nodes` as the arrays an `UNNEST` insert binds.
pub(super) fn node_arrays(nodes: &[TreeNode]) -> (Vec<i16>, Vec<i64>, Vec<&[u8]>) {
    (
        nodes.iter().map(|n| i16::from(n.subtree.height)).collect(),
        nodes.iter().map(|n| bound(n.subtree.index)).collect(),
        nodes.iter().map(|n| n.hash.as_slice()).collect(),
    )
}

/// Stores nodes; a node stored again is overwritten with the value this log computes.
pub(super) async fn insert_nodes(conn: &mut PgConnection, nodes: &[TreeNode]) -> Result<()> {
    if nodes.is_empty() {
        return Ok(());
    }
    let (heights, indices, hashes) = node_arrays(nodes);
    sqlx::query(
        "INSERT INTO audit_tree (height, idx, hash) \
         SELECT * FROM UNNEST($1::SMALLINT[], $2::BIGINT[], $3::BYTEA[]) \
         ON CONFLICT (height, idx) DO UPDATE SET hash = excluded.hash",
    )
    .bind(heights)
    .bind(indices)
    .bind(hashes)
    .execute(conn)
    .await?;
    Ok(())
}

/// The stored nodes of each span, those present, in one query.
///
/// One index range scan per span, forced: as a plain join PostgreSQL hashes the spans and
/// scans the whole table (40 ms at 66,000 nodes, against 0.2 ms), and a `LATERAL` subquery
/// is flattened into that same join unless `OFFSET 0` keeps it apart.
pub(super) async fn nodes(pool: &PgPool, spans: &[(u8, Range<u64>)]) -> Result<Vec<TreeNode>> {
    if spans.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT s.height, t.idx, t.hash FROM UNNEST($1::SMALLINT[], $2::BIGINT[], $3::BIGINT[]) \
         AS s(height, lo, hi) CROSS JOIN LATERAL (SELECT idx, hash FROM audit_tree \
         WHERE height = s.height AND idx >= s.lo AND idx < s.hi OFFSET 0) t",
    )
    .bind(spans.iter().map(|(h, _)| i16::from(*h)).collect::<Vec<_>>())
    .bind(
        spans
            .iter()
            .map(|(_, r)| bound(r.start))
            .collect::<Vec<_>>(),
    )
    .bind(spans.iter().map(|(_, r)| bound(r.end)).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let height: i16 = row.try_get(0)?;
            Ok(TreeNode {
                subtree: Subtree {
                    height: u8::try_from(height)
                        .map_err(|_| StoreError::Corrupt(format!("audit_tree height {height}")))?,
                    index: u64_at(row, 1)?,
                },
                hash: hash_at(row, 2)?,
            })
        })
        .collect()
}

/// Leaf hashes of the stored events in `range`.
pub(super) async fn leaves(pool: &PgPool, range: Range<u64>) -> Result<Vec<Hash>> {
    let rows =
        sqlx::query("SELECT event FROM audit_events WHERE idx >= $1 AND idx < $2 ORDER BY idx")
            .bind(bound(range.start))
            .bind(bound(range.end))
            .fetch_all(pool)
            .await?;
    rows.iter()
        .map(|row| Ok(crate::audit_codec::stored_leaf(row.try_get::<&[u8], _>(0)?)))
        .collect()
}

/// Stores the nodes of a log whose newest complete 16-event block has none (a log written
/// before `audit_tree` existed), hashing it once from the genesis or, for a pruned log, from
/// the oldest checkpoint at or after its first event. Runs under the migration lock; writers
/// of other servers store the nodes of what they append meanwhile themselves.
pub(super) async fn backfill(conn: &mut PgConnection) -> Result<()> {
    let size: i64 = sqlx::query_scalar("SELECT size FROM audit_head WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?
        .unwrap_or(0);
    let blocks = size >> STORED_HEIGHT_STEP;
    let newest: Option<i64> =
        sqlx::query_scalar("SELECT MAX(idx) FROM audit_tree WHERE height = $1")
            .bind(i16::from(STORED_HEIGHT_STEP))
            .fetch_one(&mut *conn)
            .await?;
    if newest.map_or(0, |i| i + 1) >= blocks {
        return Ok(());
    }
    let first: Option<i64> = sqlx::query_scalar("SELECT MIN(idx) FROM audit_events")
        .fetch_one(&mut *conn)
        .await?;
    let Some(first) = first else {
        return Ok(());
    };
    let mut frontier = Frontier::new();
    if first > 0 {
        let resume: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT frontier FROM audit_checkpoints WHERE tree_size >= $1 AND tree_size <= $2 \
             ORDER BY tree_size LIMIT 1",
        )
        .bind(first)
        .bind(size)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(resume) = resume else {
            tracing::warn!(
                first,
                "no checkpoint covers the pruned audit log's start: its tree nodes are left \
                 unstored and proofs compute them from the events"
            );
            return Ok(());
        };
        frontier = Frontier::from_bytes(&resume)
            .map_err(|e| StoreError::Corrupt(format!("checkpoint frontier: {e}")))?;
    }
    tracing::info!(
        events = size,
        "storing the audit log's Merkle tree nodes (once, after an upgrade)"
    );
    let mut nodes = Vec::new();
    while (frontier.size() as i64) < size {
        let rows = sqlx::query(
            "SELECT event FROM audit_events WHERE idx >= $1 AND idx < $2 ORDER BY idx LIMIT $3",
        )
        .bind(frontier.size() as i64)
        .bind(size)
        .bind(BACKFILL_PAGE)
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            // A log with a gap is for `ward audit verify` to name; the store still opens.
            tracing::warn!(
                at = frontier.size(),
                "the audit log has a gap: its later tree nodes are left unstored"
            );
            return Ok(());
        }
        for row in &rows {
            frontier.push_recording(
                crate::audit_codec::stored_leaf(row.try_get::<&[u8], _>(0)?),
                &mut nodes,
            );
        }
        insert_nodes(conn, &nodes).await?;
        nodes.clear();
    }
    Ok(())
}

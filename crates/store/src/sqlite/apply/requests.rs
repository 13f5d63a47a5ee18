//! Data-subject requests: recording one, its progress, and sealing its text once it is answered.

use super::*;

/// Applies one request op; `apply` routes only those here.
pub(super) fn apply(conn: &Connection, op: &Op) -> Result<()> {
    match op {
        Op::InsertRequest(r) => {
            run(
                conn,
                "INSERT INTO requests (tenant, id, kind, subject, status, verified_by, detail, \
                 created_at, due_at, closed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    r.tenant,
                    r.id,
                    r.kind,
                    r.subject,
                    r.status,
                    r.verified_by,
                    r.detail,
                    to_micros(r.created_at),
                    to_micros(r.due_at),
                    r.closed_at.map(to_micros),
                ],
            )?;
        }
        Op::UpdateRequest {
            tenant,
            id,
            status,
            detail,
            closed_at,
        } => run_one(
            conn,
            "request",
            "UPDATE requests SET status = ?1, detail = ?2, closed_at = ?3 \
             WHERE tenant = ?4 AND id = ?5",
            params![status, detail, closed_at.map(to_micros), tenant, id],
        )?,
        Op::SealRequestText {
            tenant,
            id,
            old_verified_by,
            old_detail,
            verified_by,
            detail,
        } => {
            conn.prepare_cached(
                "UPDATE requests SET verified_by = ?1, detail = ?2 \
                 WHERE tenant = ?3 AND id = ?4 AND verified_by = ?5 AND detail = ?6",
            )?
            .execute(params![
                verified_by,
                detail,
                tenant,
                id,
                old_verified_by,
                old_detail
            ])?;
        }
        _ => return Err(misrouted("requests")),
    }
    Ok(())
}

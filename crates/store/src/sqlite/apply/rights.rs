//! Data-subject requests, legal holds and the records a hold keeps.

use super::*;

/// Applies one rights op; `apply` routes only those here.
pub(super) fn apply(conn: &Connection, op: &Op) -> Result<()> {
    match op {
        Op::InsertHold(h) => {
            run(
                conn,
                "INSERT INTO holds (tenant, id, subject, key_version, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    h.tenant,
                    h.id,
                    h.subject,
                    h.key_version,
                    to_micros(h.created_at)
                ],
            )?;
            if let Some(key) = &h.wrapped_key {
                assert_tenant_key(conn, h.tenant, h.key_version)?;
                run(
                    conn,
                    "INSERT INTO keys.hold_keys (tenant, hold, wrapped_key, key_version) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![h.tenant, h.id, key, h.key_version],
                )?;
            }
        }
        Op::InsertHeldRecord(h) => {
            run(
                conn,
                "INSERT INTO held_records (tenant, hold, id, collection, ciphertext, key_version, \
                 created_at, hold_until, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    h.tenant,
                    h.hold,
                    h.id,
                    h.collection,
                    h.ciphertext,
                    h.key_version,
                    to_micros(h.created_at),
                    to_micros(h.hold_until),
                    h.reason,
                ],
            )?;
        }
        Op::DeleteHeldRecord { tenant, id } => {
            run(
                conn,
                "DELETE FROM held_records WHERE tenant = ?1 AND id = ?2",
                params![tenant, id],
            )?;
        }
        Op::ShredHold { tenant, id } => {
            run(
                conn,
                "DELETE FROM keys.hold_keys WHERE tenant = ?1 AND hold = ?2",
                params![tenant, id],
            )?;
        }
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
        _ => return Err(misrouted("rights")),
    }
    Ok(())
}

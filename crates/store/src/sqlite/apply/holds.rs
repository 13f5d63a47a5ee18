//! Legal holds, the records a hold keeps, and shredding a hold's key when it ends.

use super::*;

/// Applies one hold op; `apply` routes only those here.
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
        _ => return Err(misrouted("holds")),
    }
    Ok(())
}

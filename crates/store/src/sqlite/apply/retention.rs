//! What retention does to stored records: anonymizing one at its expiry, and moving the expiries of
//! a collection when its retention changes.

use super::records::delete_index;
use super::*;

/// Applies one retention op; `apply` routes only those here.
pub(super) fn apply(conn: &Connection, op: &Op) -> Result<()> {
    match op {
        Op::AnonymizeRecord { record: r, at } => {
            run_one(
                conn,
                "record",
                "DELETE FROM records WHERE tenant = ?1 AND subject = ?2 AND id = ?3",
                params![r.tenant, r.subject, r.id],
            )?;
            delete_index(conn, r.tenant, r.subject, r.id)?;
            run(
                conn,
                "INSERT INTO anonymized_records (tenant, id, collection, ciphertext, key_version, \
                 created_at, anonymized_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    r.tenant,
                    r.id,
                    r.collection,
                    r.ciphertext,
                    r.key_version,
                    to_micros(r.created_at),
                    to_micros(*at),
                ],
            )?;
        }
        Op::ShiftExpiry {
            tenant,
            collection,
            by_micros,
        } => {
            run(
                conn,
                "UPDATE records SET expires_at = expires_at - ?1 \
                 WHERE tenant = ?2 AND collection = ?3 AND expires_at IS NOT NULL",
                params![by_micros, tenant, collection],
            )?;
        }
        _ => return Err(misrouted("retention")),
    }
    Ok(())
}

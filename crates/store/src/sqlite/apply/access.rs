//! Who may act for a tenant: API keys, invitations, and the rule that a tenant keeps an owner.

use super::*;

/// Applies one access op; `apply` routes only those here.
pub(super) fn apply(conn: &Connection, op: &Op) -> Result<()> {
    match op {
        Op::InsertApiKey(k) => {
            run(
                conn,
                "INSERT INTO api_keys (id, tenant, token_hash, name, role, purposes, created_at, \
                 revoked_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    k.id,
                    k.tenant,
                    k.token_hash,
                    k.name,
                    k.role,
                    k.purposes,
                    to_micros(k.created_at),
                    k.revoked_at.map(to_micros),
                    k.expires_at.map(to_micros),
                ],
            )
            .map_err(unique_to_conflict("api key"))?;
        }
        Op::RevokeApiKey { tenant, id, at } => run_one(
            conn,
            "api key",
            "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND tenant IS ?3 \
             AND revoked_at IS NULL",
            params![to_micros(*at), id, tenant],
        )?,
        Op::InsertInvitation(inv) => {
            run(
                conn,
                "DELETE FROM invitations WHERE tenant = ?1 AND used_at IS NULL \
                 AND role IS NULL AND ?2 IS NULL",
                params![inv.tenant, inv.role],
            )?;
            run(
                conn,
                "INSERT INTO invitations (id, tenant, token_hash, created_at, expires_at, \
                 used_at, role, purposes, membership_expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    inv.id,
                    inv.tenant,
                    inv.token_hash,
                    to_micros(inv.created_at),
                    to_micros(inv.expires_at),
                    inv.used_at.map(to_micros),
                    inv.role,
                    inv.purposes,
                    inv.membership_expires_at.map(to_micros),
                ],
            )
            .map_err(unique_to_conflict("invitation"))?;
        }
        Op::ClaimInvitation { tenant, id, at } => run_one(
            conn,
            "invitation",
            "UPDATE invitations SET used_at = ?1 WHERE id = ?2 AND tenant = ?3 \
             AND used_at IS NULL AND expires_at > ?1",
            params![to_micros(*at), id, tenant],
        )?,
        Op::AssertOwnerRemains { tenant } => {
            // The writer thread is the only writer, so the count cannot change meanwhile.
            let owners: i64 = conn
                .prepare_cached(
                    "SELECT (SELECT count(*) FROM api_keys WHERE tenant = ?1 AND role = 'owner' \
                     AND revoked_at IS NULL AND expires_at IS NULL) + (SELECT count(*) FROM memberships \
                     WHERE tenant = ?1 AND role = 'owner' AND expires_at IS NULL)",
                )?
                .query_row([tenant], |r| r.get(0))?;
            if owners == 0 {
                return Err(StoreError::Conflict(Conflict::LastOwner));
            }
        }
        _ => return Err(misrouted("access")),
    }
    Ok(())
}

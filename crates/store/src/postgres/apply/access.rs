//! Who may act for a tenant: API keys, invitations, and the rule that a tenant keeps an owner.

use super::*;

/// Applies one access op; `apply` routes only those here.
pub(super) async fn apply(conn: &mut PgConnection, op: Op) -> Result<()> {
    match op {
        Op::InsertApiKey(k) => {
            sqlx::query(
                "INSERT INTO api_keys (id, tenant, token_hash, name, role, purposes, created_at, \
                 revoked_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(k.id.as_bytes().as_slice())
            .bind(k.tenant.as_ref().map(|t| t.as_bytes().as_slice()))
            .bind(k.token_hash.as_slice())
            .bind(&k.name)
            .bind(&k.role)
            .bind(&k.purposes)
            .bind(to_micros(k.created_at))
            .bind(k.revoked_at.map(to_micros))
            .bind(k.expires_at.map(to_micros))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("api key"))?;
        }
        Op::RevokeApiKey { tenant, id, at } => {
            let done = sqlx::query(
                "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 \
                 AND tenant IS NOT DISTINCT FROM $3 AND revoked_at IS NULL",
            )
            .bind(to_micros(at))
            .bind(id.as_bytes().as_slice())
            .bind(tenant.as_ref().map(|t| t.as_bytes().as_slice()))
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("api key"));
            }
        }
        Op::InsertInvitation(inv) => {
            if inv.role.is_none() {
                sqlx::query(
                    "DELETE FROM invitations WHERE tenant = $1 AND used_at IS NULL \
                     AND role IS NULL",
                )
                .bind(inv.tenant.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
            }
            sqlx::query(
                "INSERT INTO invitations (id, tenant, token_hash, created_at, expires_at, \
                 used_at, role, purposes, membership_expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(inv.id.as_bytes().as_slice())
            .bind(inv.tenant.as_bytes().as_slice())
            .bind(inv.token_hash.as_slice())
            .bind(to_micros(inv.created_at))
            .bind(to_micros(inv.expires_at))
            .bind(inv.used_at.map(to_micros))
            .bind(inv.role.clone())
            .bind(inv.purposes.clone())
            .bind(inv.membership_expires_at.map(to_micros))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("invitation"))?;
        }
        Op::ClaimInvitation { tenant, id, at } => {
            // A concurrent claim waits for this row lock and then finds `used_at` set.
            let done = sqlx::query(
                "UPDATE invitations SET used_at = $1 WHERE id = $2 AND tenant = $3 \
                 AND used_at IS NULL AND expires_at > $1",
            )
            .bind(to_micros(at))
            .bind(id.as_bytes().as_slice())
            .bind(tenant.as_bytes().as_slice())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("invitation"));
            }
        }
        Op::AssertOwnerRemains { tenant } => {
            // The tenant row lock serializes revocations of one tenant; the count, a new
            // statement, then sees every revocation committed before the lock was granted.
            sqlx::query("SELECT id FROM tenants WHERE id = $1 FOR NO KEY UPDATE")
                .bind(tenant.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
            let owners: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM api_keys WHERE tenant = $1 AND role = 'owner' \
                 AND revoked_at IS NULL AND expires_at IS NULL) + (SELECT count(*) FROM memberships \
                 WHERE tenant = $1 AND role = 'owner' AND expires_at IS NULL)",
            )
            .bind(tenant.as_bytes().as_slice())
            .fetch_one(&mut *conn)
            .await?;
            if owners == 0 {
                return Err(StoreError::Conflict(Conflict::LastOwner));
            }
        }
        _ => return Err(misrouted("access")),
    }
    Ok(())
}

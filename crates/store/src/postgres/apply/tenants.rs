//! Tenants: creating one, changing its status or settings, and destroying it with everything it
//! holds.

use super::*;

/// Applies one tenant op; `apply` routes only those here.
pub(super) async fn apply(conn: &mut PgConnection, op: Op) -> Result<()> {
    match op {
        Op::InsertTenant(t) => {
            sqlx::query(
                "INSERT INTO tenants (id, name, status, region, root_key_version, key_version, \
                 settings, created_at, status_changed_at, destroy_after) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(t.id.as_bytes().as_slice())
            .bind(&t.name)
            .bind(t.status.as_str())
            .bind(&t.region)
            .bind(i64::from(t.root_key_version))
            .bind(i64::from(t.key_version))
            .bind(&t.settings)
            .bind(to_micros(t.created_at))
            .bind(to_micros(t.status_changed_at))
            .bind(t.destroy_after.map(to_micros))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("tenant"))?;
            if let Some(key) = &t.wrapped_key {
                sqlx::query("INSERT INTO tenant_keys (tenant, wrapped_key) VALUES ($1, $2)")
                    .bind(t.id.as_bytes().as_slice())
                    .bind(key)
                    .execute(&mut *conn)
                    .await
                    .map_err(unique_to_conflict("tenant"))?;
            }
        }
        Op::SetTenantStatus {
            id,
            status,
            at,
            destroy_after,
        } => {
            let done = sqlx::query(
                "UPDATE tenants SET status = $1, status_changed_at = $2, destroy_after = $3 \
                 WHERE id = $4",
            )
            .bind(status.as_str())
            .bind(to_micros(at))
            .bind(destroy_after.map(to_micros))
            .bind(id.as_bytes().as_slice())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("tenant"));
            }
        }
        Op::PatchTenantSettings {
            id,
            path,
            value,
            expect,
        } => {
            // The batch holds the tenant row's update lock (`tenant_locks`), so nothing
            // changes it between this read and the write.
            let current: String = sqlx::query_scalar("SELECT settings FROM tenants WHERE id = $1")
                .bind(id.as_bytes().as_slice())
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("tenant"))?;
            let settings =
                crate::settings_patch::patched(&current, &path, &value, expect.as_ref())?;
            sqlx::query("UPDATE tenants SET settings = $1 WHERE id = $2")
                .bind(&settings)
                .bind(id.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
        }
        Op::DestroyTenant { id, at } => {
            let t = id.as_bytes().as_slice();
            for sql in [
                "DELETE FROM subject_keys WHERE tenant = $1",
                "DELETE FROM retired_subject_keys WHERE tenant = $1",
                "DELETE FROM key_jobs WHERE tenant = $1",
                "DELETE FROM hold_keys WHERE tenant = $1",
                "DELETE FROM tenant_keys WHERE tenant = $1",
                "DELETE FROM blind_index WHERE tenant = $1",
                "DELETE FROM records WHERE tenant = $1",
                "DELETE FROM anonymized_records WHERE tenant = $1",
                "DELETE FROM held_records WHERE tenant = $1",
                "DELETE FROM holds WHERE tenant = $1",
                "DELETE FROM requests WHERE tenant = $1",
                "DELETE FROM subjects WHERE tenant = $1",
                "DELETE FROM invitations WHERE tenant = $1",
                "DELETE FROM memberships WHERE tenant = $1",
            ] {
                sqlx::query(sql).bind(t).execute(&mut *conn).await?;
            }
            sqlx::query(
                "UPDATE api_keys SET revoked_at = $1 WHERE tenant = $2 AND revoked_at IS NULL",
            )
            .bind(to_micros(at))
            .bind(t)
            .execute(&mut *conn)
            .await?;
            let done = sqlx::query(
                "UPDATE tenants SET status = 'destroyed', \
                 status_changed_at = $1, destroy_after = NULL, settings = '{}' WHERE id = $2",
            )
            .bind(to_micros(at))
            .bind(t)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("tenant"));
            }
        }
        _ => return Err(misrouted("tenants")),
    }
    Ok(())
}

//! Tenants: creating one, changing its status or settings, and destroying it with everything it
//! holds.

use super::*;

/// Applies one tenant op; `apply` routes only those here.
pub(super) fn apply(conn: &Connection, op: &Op) -> Result<()> {
    match op {
        Op::InsertTenant(t) => {
            run(
                conn,
                "INSERT INTO tenants (id, name, status, region, root_key_version, \
                 key_version, settings, created_at, status_changed_at, destroy_after) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    t.id,
                    t.name,
                    t.status.as_str(),
                    t.region,
                    t.root_key_version,
                    t.key_version,
                    t.settings,
                    to_micros(t.created_at),
                    to_micros(t.status_changed_at),
                    t.destroy_after.map(to_micros),
                ],
            )
            .map_err(unique_to_conflict("tenant"))?;
            if let Some(key) = &t.wrapped_key {
                run(
                    conn,
                    "INSERT INTO keys.tenant_keys (tenant, wrapped_key, root_key_version, \
                     key_version) VALUES (?1, ?2, ?3, ?4)",
                    params![t.id, key, t.root_key_version, t.key_version],
                )
                .map_err(unique_to_conflict("tenant"))?;
            }
        }
        Op::SetTenantStatus {
            id,
            status,
            at,
            destroy_after,
        } => run_one(
            conn,
            "tenant",
            "UPDATE tenants SET status = ?1, status_changed_at = ?2, destroy_after = ?3 \
             WHERE id = ?4",
            params![
                status.as_str(),
                to_micros(*at),
                destroy_after.map(to_micros),
                id
            ],
        )?,
        Op::PatchTenantSettings {
            id,
            path,
            value,
            expect,
        } => {
            let current: String = conn
                .query_row(
                    "SELECT settings FROM tenants WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or(StoreError::NotFound("tenant"))?;
            let settings = crate::settings_patch::patched(&current, path, value, expect.as_ref())?;
            run_one(
                conn,
                "tenant",
                "UPDATE tenants SET settings = ?1 WHERE id = ?2",
                params![settings, id],
            )?;
        }
        Op::DestroyTenant { id, at } => {
            for sql in [
                "DELETE FROM keys.subject_keys WHERE tenant = ?1",
                "DELETE FROM keys.retired_subject_keys WHERE tenant = ?1",
                "DELETE FROM key_jobs WHERE tenant = ?1",
                "DELETE FROM keys.hold_keys WHERE tenant = ?1",
                "DELETE FROM keys.tenant_keys WHERE tenant = ?1",
                "DELETE FROM blind_index WHERE tenant = ?1",
                "DELETE FROM records WHERE tenant = ?1",
                "DELETE FROM anonymized_records WHERE tenant = ?1",
                "DELETE FROM held_records WHERE tenant = ?1",
                "DELETE FROM holds WHERE tenant = ?1",
                "DELETE FROM requests WHERE tenant = ?1",
                "DELETE FROM subjects WHERE tenant = ?1",
                "DELETE FROM invitations WHERE tenant = ?1",
                "DELETE FROM memberships WHERE tenant = ?1",
            ] {
                run(conn, sql, [id])?;
            }
            run(
                conn,
                "UPDATE api_keys SET revoked_at = ?1 WHERE tenant = ?2 AND revoked_at IS NULL",
                params![to_micros(*at), id],
            )?;
            run_one(
                conn,
                "tenant",
                "UPDATE tenants SET status = 'destroyed', status_changed_at = ?1, \
                 destroy_after = NULL, settings = '{}' WHERE id = ?2",
                params![to_micros(*at), id],
            )?;
        }
        _ => return Err(misrouted("tenants")),
    }
    Ok(())
}

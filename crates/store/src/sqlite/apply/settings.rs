//! A tenant's settings, and what a change of them does to rows already stored (a shorter retention moves expiries).

use super::*;

/// Applies one settings op; `apply` routes only those here.
pub(super) fn apply(conn: &Connection, op: &Op) -> Result<()> {
    match op {
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
        _ => return Err(misrouted("settings")),
    }
    Ok(())
}

//! Key rotation: rewrapping tenant keys, rotating subject keys, re-encrypting records and
//! destroying retired keys.

use super::*;

/// Applies one key rotation op; `apply` routes only those here.
pub(super) fn apply(conn: &Connection, committed: &mut Committed, op: &Op) -> Result<()> {
    match op {
        Op::RewrapTenant {
            id,
            wrapped_key,
            root_key_version,
            key_version,
            expected_key_version,
        } => {
            let moved = run(
                conn,
                "UPDATE tenants SET root_key_version = ?1, key_version = ?2 \
                 WHERE id = ?3 AND key_version = ?4",
                params![root_key_version, key_version, id, expected_key_version],
            )?;
            if moved == 0 {
                return Err(StoreError::Conflict(Conflict::TenantKeyChanged));
            }
            run_one(
                conn,
                "tenant",
                "UPDATE keys.tenant_keys SET wrapped_key = ?1, root_key_version = ?3, \
                 key_version = ?4 WHERE tenant = ?2",
                params![wrapped_key, id, root_key_version, key_version],
            )?;
        }
        Op::RewrapTenantKeys {
            tenant,
            key_version,
            rewrap,
        } => committed.keys_rewrapped = rewrap_tenant_keys(conn, *tenant, *key_version, rewrap)?,
        Op::RotateSubjectKeys {
            tenant,
            tenant_key_version,
            keys,
        } => rotate_subject_keys(conn, *tenant, *tenant_key_version, keys)?,
        Op::ReencryptRecords { tenant, records } => {
            let mut stmt = conn.prepare_cached(
                "UPDATE records SET ciphertext = ?1, key_version = ?2 \
                 WHERE tenant = ?3 AND subject = ?4 AND id = ?5 AND revision = ?6",
            )?;
            for r in records {
                stmt.execute(params![
                    r.ciphertext,
                    r.key_version,
                    tenant,
                    r.subject,
                    r.id,
                    r.revision
                ])?;
            }
        }
        Op::DestroyRetiredKeys { tenant, subjects } => {
            // Only versions no record is sealed under any more: the records were committed
            // (data file) before this runs (key store).
            let mut stmt = conn.prepare_cached(
                "DELETE FROM keys.retired_subject_keys AS rk \
                 WHERE rk.tenant = ?1 AND rk.subject = ?2 AND NOT EXISTS \
                 (SELECT 1 FROM records r WHERE r.tenant = ?1 AND r.subject = ?2 \
                  AND r.key_version = rk.version)",
            )?;
            for s in subjects {
                stmt.execute(params![tenant, s])?;
            }
        }
        _ => return Err(misrouted("keys")),
    }
    Ok(())
}

/// Tenant key rotation inside the rotating commit: every key not yet under `key_version` is
/// rewrapped. The writer thread is the only writer, so nothing can slip in meanwhile.
pub(super) fn rewrap_tenant_keys(
    conn: &Connection,
    tenant: Uuid,
    key_version: u32,
    rewrap: &Rewrapper,
) -> Result<KeysRewrapped> {
    // Each table's keys: (owner id, subject key version, wrapped key, tenant key version).
    let rewrap_table = |select: &str,
                        owner: fn(Uuid) -> KeyOwner,
                        update: &str,
                        mirror: Option<&str>|
     -> Result<u64> {
        let stale: Vec<(Uuid, u32, Vec<u8>, u32)> = conn
            .prepare_cached(select)?
            .query_map(params![tenant, key_version], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (id, version, wrapped, old) in &stale {
            let key = rewrap.rewrap(WrappedKey {
                owner: owner(*id),
                key_version: *old,
                wrapped,
            })?;
            run(conn, update, params![key, tenant, id, version, key_version])?;
            if let Some(mirror) = mirror {
                run(conn, mirror, params![key_version, tenant, id])?;
            }
        }
        Ok(stale.len() as u64)
    };
    Ok(KeysRewrapped {
        subjects: rewrap_table(
            "SELECT subject, version, wrapped_key, key_version FROM keys.subject_keys \
             WHERE tenant = ?1 AND key_version <> ?2",
            KeyOwner::Subject,
            "UPDATE keys.subject_keys SET wrapped_key = ?1, key_version = ?5 \
             WHERE tenant = ?2 AND subject = ?3 AND version = ?4",
            Some("UPDATE subjects SET key_version = ?1 WHERE tenant = ?2 AND id = ?3"),
        )?,
        retired_subject_keys: rewrap_table(
            "SELECT subject, version, wrapped_key, key_version FROM keys.retired_subject_keys \
             WHERE tenant = ?1 AND key_version <> ?2",
            KeyOwner::RetiredSubjectKey,
            "UPDATE keys.retired_subject_keys SET wrapped_key = ?1, key_version = ?5 \
             WHERE tenant = ?2 AND subject = ?3 AND version = ?4",
            None,
        )?,
        holds: rewrap_table(
            // Hold keys have no version of their own; 0 keeps the statement shapes alike.
            "SELECT hold, 0, wrapped_key, key_version FROM keys.hold_keys \
             WHERE tenant = ?1 AND key_version <> ?2",
            KeyOwner::Hold,
            "UPDATE keys.hold_keys SET wrapped_key = ?1, key_version = ?5 \
             WHERE tenant = ?2 AND hold = ?3 AND ?4 = 0",
            Some("UPDATE holds SET key_version = ?1 WHERE tenant = ?2 AND id = ?3"),
        )?,
    })
}

pub(super) fn rotate_subject_keys(
    conn: &Connection,
    tenant: Uuid,
    tenant_key_version: u32,
    keys: &[crate::SubjectKeyChange],
) -> Result<()> {
    assert_tenant_key(conn, tenant, tenant_key_version)?;
    for k in keys {
        let retired = run(
            conn,
            "INSERT INTO keys.retired_subject_keys (tenant, subject, version, wrapped_key, \
             key_version) SELECT tenant, subject, version, wrapped_key, key_version \
             FROM keys.subject_keys WHERE tenant = ?1 AND subject = ?2 AND version = ?3",
            params![tenant, k.subject, k.expected_version],
        )
        .map_err(unique_to_conflict("retired subject key"))?;
        if retired == 0 {
            return Err(StoreError::Conflict(Conflict::SubjectKeyRotated));
        }
        run(
            conn,
            "UPDATE keys.subject_keys SET wrapped_key = ?1, key_version = ?2, version = ?3 \
             WHERE tenant = ?4 AND subject = ?5",
            params![
                k.wrapped_key,
                tenant_key_version,
                i64::from(k.expected_version) + 1,
                tenant,
                k.subject
            ],
        )?;
    }
    Ok(())
}

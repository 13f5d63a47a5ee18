//! Key rotation: rewrapping tenant keys, rotating subject keys, re-encrypting records and
//! destroying retired keys. Key rows are locked after tenant rows and before the audit head.

use super::*;

/// Applies one key rotation op; `apply` routes only those here.
pub(super) async fn apply(conn: &mut PgConnection, op: Op) -> Result<()> {
    match op {
        Op::RewrapTenant {
            id,
            wrapped_key,
            root_key_version,
            key_version,
            expected_key_version,
        } => {
            let moved = sqlx::query("UPDATE tenants SET root_key_version = $1, key_version = $2 WHERE id = $3 AND key_version = $4")
                .bind(i64::from(root_key_version))
                .bind(i64::from(key_version))
                .bind(id.as_bytes().as_slice())
                .bind(i64::from(expected_key_version))
                .execute(&mut *conn)
                .await?;
            if moved.rows_affected() == 0 {
                return Err(StoreError::Conflict(Conflict::TenantKeyChanged));
            }
            let done = sqlx::query("UPDATE tenant_keys SET wrapped_key = $1 WHERE tenant = $2")
                .bind(&wrapped_key)
                .bind(id.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("tenant"));
            }
        }
        Op::RotateSubjectKeys {
            tenant,
            tenant_key_version,
            keys,
        } => rotate_subject_keys(conn, tenant, tenant_key_version, &keys).await?,
        Op::ReencryptRecords { tenant, records } => {
            // One statement for the whole list: the rows travel as arrays.
            let subjects: Vec<Vec<u8>> = records
                .iter()
                .map(|r| r.subject.as_bytes().to_vec())
                .collect();
            let ids: Vec<Vec<u8>> = records.iter().map(|r| r.id.as_bytes().to_vec()).collect();
            let revisions: Vec<i64> = records.iter().map(|r| r.revision).collect();
            let versions: Vec<i64> = records.iter().map(|r| i64::from(r.key_version)).collect();
            let ciphertexts: Vec<Vec<u8>> = records.into_iter().map(|r| r.ciphertext).collect();
            sqlx::query(
                "UPDATE records r SET ciphertext = v.ciphertext, key_version = v.key_version \
                 FROM UNNEST($2::bytea[], $3::bytea[], $4::bigint[], $5::bytea[], $6::bigint[]) \
                 AS v(subject, id, revision, ciphertext, key_version) \
                 WHERE r.tenant = $1 AND r.subject = v.subject AND r.id = v.id \
                 AND r.revision = v.revision",
            )
            .bind(tenant.as_bytes().as_slice())
            .bind(subjects)
            .bind(ids)
            .bind(revisions)
            .bind(ciphertexts)
            .bind(versions)
            .execute(&mut *conn)
            .await?;
        }
        Op::DestroyRetiredKeys { tenant, subjects } => {
            let t = tenant.as_bytes().as_slice();
            for s in &subjects {
                sqlx::query(
                    "DELETE FROM retired_subject_keys rk \
                     WHERE rk.tenant = $1 AND rk.subject = $2 AND NOT EXISTS \
                     (SELECT 1 FROM records r WHERE r.tenant = $1 AND r.subject = $2 \
                      AND r.key_version = rk.version)",
                )
                .bind(t)
                .bind(s.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
            }
        }
        _ => return Err(misrouted("keys")),
    }
    Ok(())
}

/// Tenant key rotation inside the rotating commit (after `RewrapTenant` locked the tenant
/// row, so no key can be added under the old version until this commits): every key not yet
/// under `key_version` is rewrapped, a table at a time in one statement.
pub(in crate::postgres) async fn rewrap_tenant_keys(
    conn: &mut PgConnection,
    tenant: Uuid,
    key_version: u32,
    rewrap: &Rewrapper,
) -> Result<KeysRewrapped> {
    let t = tenant.as_bytes().as_slice();
    let v = i64::from(key_version);
    let subjects = rewrap_owned_keys(
        conn,
        tenant,
        v,
        KeyOwner::Subject,
        rewrap,
        [
            "SELECT s.id, sk.version, sk.wrapped_key, s.key_version FROM subjects s \
             JOIN subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id \
             WHERE s.tenant = $1 AND s.key_version <> $2",
            "UPDATE subject_keys sk SET wrapped_key = v.wrapped_key \
             FROM UNNEST($2::bytea[], $3::bytea[]) AS v(subject, wrapped_key) \
             WHERE sk.tenant = $1 AND sk.subject = v.subject",
            "UPDATE subjects SET key_version = $2 WHERE tenant = $1 AND id = ANY($3)",
        ],
    )
    .await?;
    let retired = rewrapped_keys(
        conn,
        "SELECT subject, version, wrapped_key, key_version FROM retired_subject_keys \
         WHERE tenant = $1 AND key_version <> $2",
        tenant,
        v,
        KeyOwner::RetiredSubjectKey,
        rewrap,
    )
    .await?;
    sqlx::query(
        "UPDATE retired_subject_keys r SET wrapped_key = v.wrapped_key, key_version = $2 \
         FROM UNNEST($3::bytea[], $4::bigint[], $5::bytea[]) AS v(subject, version, wrapped_key) \
         WHERE r.tenant = $1 AND r.subject = v.subject AND r.version = v.version",
    )
    .bind(t)
    .bind(v)
    .bind(&retired.ids)
    .bind(&retired.versions)
    .bind(&retired.keys)
    .execute(&mut *conn)
    .await?;
    let holds = rewrap_owned_keys(
        conn,
        tenant,
        v,
        KeyOwner::Hold,
        rewrap,
        [
            "SELECT h.id, 0::bigint, hk.wrapped_key, h.key_version FROM holds h \
             JOIN hold_keys hk ON hk.tenant = h.tenant AND hk.hold = h.id \
             WHERE h.tenant = $1 AND h.key_version <> $2",
            "UPDATE hold_keys hk SET wrapped_key = v.wrapped_key \
             FROM UNNEST($2::bytea[], $3::bytea[]) AS v(hold, wrapped_key) \
             WHERE hk.tenant = $1 AND hk.hold = v.hold",
            "UPDATE holds SET key_version = $2 WHERE tenant = $1 AND id = ANY($3)",
        ],
    )
    .await?;
    Ok(KeysRewrapped {
        subjects: subjects as u64,
        retired_subject_keys: retired.ids.len() as u64,
        holds: holds as u64,
    })
}

/// Rewraps the keys of owners that record their tenant key version themselves (subjects,
/// holds): `[select, update_keys, update_owners]` find the stale keys, store the rewrapped
/// ones from `UNNEST($2 ids, $3 keys)`, and move the owners (`$3` ids) to version `$2`.
/// Returns how many were rewrapped.
pub(in crate::postgres) async fn rewrap_owned_keys(
    conn: &mut PgConnection,
    tenant: Uuid,
    key_version: i64,
    owner: fn(Uuid) -> KeyOwner,
    rewrap: &Rewrapper,
    [select, update_keys, update_owners]: [&'static str; 3],
) -> Result<usize> {
    let t = tenant.as_bytes().as_slice();
    let stale = rewrapped_keys(conn, select, tenant, key_version, owner, rewrap).await?;
    sqlx::query(update_keys)
        .bind(t)
        .bind(&stale.ids)
        .bind(&stale.keys)
        .execute(&mut *conn)
        .await?;
    sqlx::query(update_owners)
        .bind(t)
        .bind(key_version)
        .bind(&stale.ids)
        .execute(&mut *conn)
        .await?;
    Ok(stale.ids.len())
}

/// One table's keys, rewrapped, as columns for `UNNEST`.
pub(in crate::postgres) struct RewrappedKeys {
    ids: Vec<Vec<u8>>,
    versions: Vec<i64>,
    keys: Vec<Vec<u8>>,
}

/// Runs `select` (owner id, subject key version, wrapped key, tenant key version) and
/// rewraps every key it finds.
pub(in crate::postgres) async fn rewrapped_keys(
    conn: &mut PgConnection,
    select: &'static str,
    tenant: Uuid,
    key_version: i64,
    owner: fn(Uuid) -> KeyOwner,
    rewrap: &Rewrapper,
) -> Result<RewrappedKeys> {
    let rows = sqlx::query(select)
        .bind(tenant.as_bytes().as_slice())
        .bind(key_version)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = RewrappedKeys {
        ids: Vec::with_capacity(rows.len()),
        versions: Vec::with_capacity(rows.len()),
        keys: Vec::with_capacity(rows.len()),
    };
    for r in &rows {
        let id = uuid_at(r, 0)?;
        let wrapped: Vec<u8> = r.try_get(2)?;
        out.keys.push(rewrap.rewrap(WrappedKey {
            owner: owner(id),
            key_version: u32_at(r, 3)?,
            wrapped: &wrapped,
        })?);
        out.ids.push(id.as_bytes().to_vec());
        out.versions.push(r.try_get(1)?);
    }
    Ok(out)
}

pub(in crate::postgres) async fn rotate_subject_keys(
    conn: &mut PgConnection,
    tenant: Uuid,
    tenant_key_version: u32,
    keys: &[crate::SubjectKeyChange],
) -> Result<()> {
    let t = tenant.as_bytes().as_slice();
    assert_tenant_key(conn, tenant, tenant_key_version).await?;
    for k in keys {
        let s = k.subject.as_bytes().as_slice();
        let retired = sqlx::query(
            "INSERT INTO retired_subject_keys (tenant, subject, version, wrapped_key, key_version) \
             SELECT sk.tenant, sk.subject, sk.version, sk.wrapped_key, s.key_version \
             FROM subject_keys sk JOIN subjects s ON s.tenant = sk.tenant AND s.id = sk.subject \
             WHERE sk.tenant = $1 AND sk.subject = $2 AND sk.version = $3",
        )
        .bind(t)
        .bind(s)
        .bind(i64::from(k.expected_version))
        .execute(&mut *conn)
        .await
        .map_err(unique_to_conflict("retired subject key"))?;
        if retired.rows_affected() == 0 {
            return Err(StoreError::Conflict(Conflict::SubjectKeyRotated));
        }
        sqlx::query(
            "UPDATE subject_keys SET wrapped_key = $1, version = $2 WHERE tenant = $3 AND subject = $4",
        )
        .bind(&k.wrapped_key)
        .bind(i64::from(k.expected_version) + 1)
        .bind(t)
        .bind(s)
        .execute(&mut *conn)
        .await?;
        sqlx::query("UPDATE subjects SET key_version = $1 WHERE tenant = $2 AND id = $3")
            .bind(i64::from(tenant_key_version))
            .bind(t)
            .bind(s)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

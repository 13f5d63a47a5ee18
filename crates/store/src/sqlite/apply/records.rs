//! Records and their blind index: a record and its index entries are written and removed together.

use super::*;

/// Applies one record op; `apply` routes only those here.
pub(super) fn apply(conn: &Connection, op: &Op) -> Result<()> {
    match op {
        Op::InsertRecord { record: r, index } => {
            assert_tenant_active(conn, r.tenant)?;
            assert_subject_key(conn, r.tenant, r.subject, r.key_version)?;
            run(
                conn,
                "INSERT INTO records (tenant, subject, id, collection, ciphertext, key_version, \
                 revision, created_at, updated_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    r.tenant,
                    r.subject,
                    r.id,
                    r.collection,
                    r.ciphertext,
                    r.key_version,
                    r.revision,
                    to_micros(r.created_at),
                    to_micros(r.updated_at),
                    r.expires_at.map(to_micros),
                ],
            )
            .map_err(unique_to_conflict("subject"))?;
            insert_index(conn, r, index)?;
        }
        Op::UpdateRecord {
            record: r,
            expected_revision,
            index,
        } => {
            assert_subject_key(conn, r.tenant, r.subject, r.key_version)?;
            let done = run(
                conn,
                "UPDATE records SET ciphertext = ?1, key_version = ?2, revision = ?3, \
                 updated_at = ?4, expires_at = ?5 \
                 WHERE tenant = ?6 AND subject = ?7 AND id = ?8 AND revision = ?9",
                params![
                    r.ciphertext,
                    r.key_version,
                    r.revision,
                    to_micros(r.updated_at),
                    r.expires_at.map(to_micros),
                    r.tenant,
                    r.subject,
                    r.id,
                    expected_revision,
                ],
            )?;
            if done == 0 {
                return Err(StoreError::Conflict(Conflict::Stale));
            }
            delete_index(conn, r.tenant, r.subject, r.id)?;
            insert_index(conn, r, index)?;
        }
        Op::DeleteRecords { records } => {
            // One cached statement per row: with no per-statement overhead this is as fast as
            // a set-based delete, and needs no statement per list length.
            let mut index = conn.prepare_cached(
                "DELETE FROM blind_index WHERE tenant = ?1 AND subject = ?2 AND record = ?3",
            )?;
            let mut rows = conn.prepare_cached(
                "DELETE FROM records WHERE tenant = ?1 AND subject = ?2 AND id = ?3",
            )?;
            for (t, s, r) in records {
                index.execute(params![t, s, r])?;
                rows.execute(params![t, s, r])?;
            }
        }
        Op::DeleteRecord {
            tenant,
            subject,
            id,
        } => {
            run_one(
                conn,
                "record",
                "DELETE FROM records WHERE tenant = ?1 AND subject = ?2 AND id = ?3",
                params![tenant, subject, id],
            )?;
            delete_index(conn, *tenant, *subject, *id)?;
        }
        _ => return Err(misrouted("records")),
    }
    Ok(())
}

pub(super) fn insert_index(
    conn: &Connection,
    r: &RecordRow,
    index: &[crate::IndexEntry],
) -> Result<()> {
    if index.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO blind_index (tenant, collection, field, hash, subject, record) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for entry in index {
        stmt.execute(params![
            r.tenant,
            r.collection,
            entry.field,
            entry.hash,
            r.subject,
            r.id
        ])?;
    }
    Ok(())
}

pub(super) fn delete_index(conn: &Connection, tenant: Uuid, subject: Uuid, id: Uuid) -> Result<()> {
    run(
        conn,
        "DELETE FROM blind_index WHERE tenant = ?1 AND subject = ?2 AND record = ?3",
        params![tenant, subject, id],
    )?;
    Ok(())
}

// ---- reading --------------------------------------------------------------------------------

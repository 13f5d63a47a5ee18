//! Data subjects: creating one, its restrictions and hold, erasing it, and the ledger that
//! remembers an erasure.

use super::*;

/// Applies one subject op; `apply` routes only those here.
pub(super) fn apply(conn: &Connection, op: &Op) -> Result<()> {
    match op {
        Op::InsertSubject(s) => {
            run(
                conn,
                "INSERT INTO subjects (tenant, id, external_ref, key_version, \
                 restrictions, hold_until, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    s.tenant,
                    s.id,
                    s.external_ref,
                    s.key_version,
                    s.restrictions,
                    s.hold_until.map(to_micros),
                    to_micros(s.created_at),
                ],
            )
            .map_err(unique_to_conflict("subject with this external_ref"))?;
            assert_tenant_key(conn, s.tenant, s.key_version)?;
            if let Some(key) = &s.wrapped_key {
                run(
                    conn,
                    "INSERT INTO keys.subject_keys (tenant, subject, wrapped_key, key_version, \
                     version) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![s.tenant, s.id, key, s.key_version, s.record_key_version],
                )
                .map_err(unique_to_conflict("subject"))?;
            }
        }
        Op::SetRestrictions {
            tenant,
            subject,
            restrictions,
        } => run_one(
            conn,
            "subject",
            "UPDATE subjects SET restrictions = ?1 WHERE tenant = ?2 AND id = ?3",
            params![restrictions, tenant, subject],
        )?,
        Op::SetSubjectHold {
            tenant,
            subject,
            hold_until,
        } => run_one(
            conn,
            "subject",
            "UPDATE subjects SET hold_until = ?1 WHERE tenant = ?2 AND id = ?3 AND EXISTS \
             (SELECT 1 FROM keys.subject_keys k WHERE k.tenant = ?2 AND k.subject = ?3)",
            params![hold_until.map(to_micros), tenant, subject],
        )?,
        Op::EraseSubject { tenant, subject } => {
            // The key first: once it is gone, whatever else survives is undecryptable.
            for sql in [
                "DELETE FROM keys.subject_keys WHERE tenant = ?1 AND subject = ?2",
                "DELETE FROM keys.retired_subject_keys WHERE tenant = ?1 AND subject = ?2",
                "DELETE FROM blind_index WHERE tenant = ?1 AND subject = ?2",
                "DELETE FROM records WHERE tenant = ?1 AND subject = ?2",
            ] {
                run(conn, sql, params![tenant, subject])?;
            }
            run_one(
                conn,
                "subject",
                "UPDATE subjects SET external_ref = NULL, restrictions = '[]', \
                 hold_until = NULL WHERE tenant = ?1 AND id = ?2",
                params![tenant, subject],
            )?;
        }
        Op::InsertLedger(l) => {
            run(
                conn,
                "INSERT INTO erasure_ledger (id, tenant, subject, requested_by, erased_at, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    l.id,
                    l.tenant,
                    l.subject,
                    l.requested_by,
                    to_micros(l.erased_at),
                    l.detail,
                ],
            )?;
        }
        _ => return Err(misrouted("subjects")),
    }
    Ok(())
}

//! Key jobs: the leased, resumable background work a rotation is carried out by.

use super::*;

/// Applies one key job op; `apply` routes only those here.
pub(super) fn apply(conn: &Connection, op: &Op) -> Result<()> {
    match op {
        Op::InsertKeyJob(j) => {
            run(
                conn,
                "INSERT INTO key_jobs (id, tenant, status, cursor, subjects_done, records_done, \
                 records_total, started_at, updated_at, finished_at, lease_owner, lease_until, \
                 error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    j.id,
                    j.tenant,
                    j.status,
                    j.cursor,
                    j.subjects_done as i64,
                    j.records_done as i64,
                    j.records_total as i64,
                    to_micros(j.started_at),
                    to_micros(j.updated_at),
                    j.finished_at.map(to_micros),
                    j.lease_owner,
                    j.lease_until.map(to_micros),
                    j.error,
                ],
            )
            .map_err(unique_to_conflict("key job"))?;
        }
        Op::AdvanceKeyJob {
            id,
            owner,
            cursor,
            subjects,
            records,
            at,
            lease_until,
        } => {
            let done = run(
                conn,
                "UPDATE key_jobs SET cursor = COALESCE(?1, cursor), \
                 subjects_done = subjects_done + ?2, records_done = records_done + ?3, \
                 updated_at = ?4, lease_owner = ?5, lease_until = ?6 \
                 WHERE id = ?7 AND status = 'running' \
                 AND (lease_owner IS NULL OR lease_owner = ?5 OR lease_until < ?4)",
                params![
                    cursor,
                    *subjects as i64,
                    *records as i64,
                    to_micros(*at),
                    owner,
                    to_micros(*lease_until),
                    id,
                ],
            )?;
            if done == 0 {
                return Err(StoreError::Conflict(Conflict::KeyJobHeld));
            }
        }
        Op::FinishKeyJob {
            id,
            status,
            at,
            error,
        } => {
            let done = run(
                conn,
                "UPDATE key_jobs SET status = ?1, finished_at = ?2, updated_at = ?2, error = ?3, \
                 lease_owner = NULL, lease_until = NULL WHERE id = ?4 AND status = 'running'",
                params![status, to_micros(*at), error, id],
            )?;
            if done == 0 {
                return Err(StoreError::Conflict(Conflict::KeyJobNotRunning));
            }
        }
        _ => return Err(misrouted("key_jobs")),
    }
    Ok(())
}

//! Key jobs: the leased, resumable background work a rotation is carried out by.

use super::*;

/// Applies one key job op; `apply` routes only those here.
pub(super) async fn apply(conn: &mut PgConnection, op: Op) -> Result<()> {
    match op {
        Op::InsertKeyJob(j) => {
            sqlx::query(
                "INSERT INTO key_jobs (id, tenant, status, cursor, subjects_done, records_done, \
                 records_total, started_at, updated_at, finished_at, lease_owner, lease_until, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(j.id.as_bytes().as_slice())
            .bind(j.tenant.as_bytes().as_slice())
            .bind(&j.status)
            .bind(j.cursor.map(|c| c.as_bytes().to_vec()))
            .bind(j.subjects_done as i64)
            .bind(j.records_done as i64)
            .bind(j.records_total as i64)
            .bind(to_micros(j.started_at))
            .bind(to_micros(j.updated_at))
            .bind(j.finished_at.map(to_micros))
            .bind(&j.lease_owner)
            .bind(j.lease_until.map(to_micros))
            .bind(&j.error)
            .execute(&mut *conn)
            .await
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
            let done = sqlx::query(
                "UPDATE key_jobs SET cursor = COALESCE($1, cursor), \
                 subjects_done = subjects_done + $2, records_done = records_done + $3, \
                 updated_at = $4, lease_owner = $5, lease_until = $6 \
                 WHERE id = $7 AND status = 'running' \
                 AND (lease_owner IS NULL OR lease_owner = $5 OR lease_until < $4)",
            )
            .bind(cursor.map(|c| c.as_bytes().to_vec()))
            .bind(subjects as i64)
            .bind(records as i64)
            .bind(to_micros(at))
            .bind(&owner)
            .bind(to_micros(lease_until))
            .bind(id.as_bytes().as_slice())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(Conflict::KeyJobHeld));
            }
        }
        Op::FinishKeyJob {
            id,
            status,
            at,
            error,
        } => {
            let done = sqlx::query(
                "UPDATE key_jobs SET status = $1, finished_at = $2, updated_at = $2, error = $3, \
                 lease_owner = NULL, lease_until = NULL WHERE id = $4 AND status = 'running'",
            )
            .bind(&status)
            .bind(to_micros(at))
            .bind(&error)
            .bind(id.as_bytes().as_slice())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(Conflict::KeyJobNotRunning));
            }
        }
        _ => return Err(misrouted("key_jobs")),
    }
    Ok(())
}

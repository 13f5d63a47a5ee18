//! Data-subject requests: recording one, its progress, and sealing its text once it is answered.

use super::*;

/// Applies one request op; `apply` routes only those here.
pub(super) async fn apply(conn: &mut PgConnection, op: Op) -> Result<()> {
    match op {
        Op::InsertRequest(r) => {
            sqlx::query(
                "INSERT INTO requests (tenant, id, kind, subject, status, verified_by, detail, \
                 created_at, due_at, closed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(r.tenant.as_bytes().as_slice())
            .bind(r.id.as_bytes().as_slice())
            .bind(&r.kind)
            .bind(r.subject.as_bytes().as_slice())
            .bind(&r.status)
            .bind(&r.verified_by)
            .bind(&r.detail)
            .bind(to_micros(r.created_at))
            .bind(to_micros(r.due_at))
            .bind(r.closed_at.map(to_micros))
            .execute(&mut *conn)
            .await?;
        }
        Op::UpdateRequest {
            tenant,
            id,
            status,
            detail,
            closed_at,
        } => {
            let done = sqlx::query(
                "UPDATE requests SET status = $1, detail = $2, closed_at = $3 \
                 WHERE tenant = $4 AND id = $5",
            )
            .bind(&status)
            .bind(&detail)
            .bind(closed_at.map(to_micros))
            .bind(tenant.as_bytes().as_slice())
            .bind(id.as_bytes().as_slice())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("request"));
            }
        }
        Op::SealRequestText {
            tenant,
            id,
            old_verified_by,
            old_detail,
            verified_by,
            detail,
        } => {
            sqlx::query(
                "UPDATE requests SET verified_by = $1, detail = $2 \
                 WHERE tenant = $3 AND id = $4 AND verified_by = $5 AND detail = $6",
            )
            .bind(&verified_by)
            .bind(&detail)
            .bind(tenant.as_bytes().as_slice())
            .bind(id.as_bytes().as_slice())
            .bind(&old_verified_by)
            .bind(&old_detail)
            .execute(&mut *conn)
            .await?;
        }
        _ => return Err(misrouted("requests")),
    }
    Ok(())
}

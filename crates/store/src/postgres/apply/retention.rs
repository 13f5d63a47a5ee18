//! What retention does to stored records: anonymizing one at its expiry, and moving the expiries
//! of a collection when its retention changes.

use super::*;

/// Applies one retention op; `apply` routes only those here.
pub(super) async fn apply(conn: &mut PgConnection, op: Op) -> Result<()> {
    match op {
        Op::AnonymizeRecord { record: r, at } => {
            let done =
                sqlx::query("DELETE FROM records WHERE tenant = $1 AND subject = $2 AND id = $3")
                    .bind(r.tenant.as_bytes().as_slice())
                    .bind(r.subject.as_bytes().as_slice())
                    .bind(r.id.as_bytes().as_slice())
                    .execute(&mut *conn)
                    .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("record"));
            }
            delete_index(conn, r.tenant, r.subject, r.id).await?;
            sqlx::query(
                "INSERT INTO anonymized_records (tenant, id, collection, ciphertext, key_version, \
                 created_at, anonymized_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(r.tenant.as_bytes().as_slice())
            .bind(r.id.as_bytes().as_slice())
            .bind(&r.collection)
            .bind(&r.ciphertext)
            .bind(i64::from(r.key_version))
            .bind(to_micros(r.created_at))
            .bind(to_micros(at))
            .execute(&mut *conn)
            .await?;
        }
        Op::ShiftExpiry {
            tenant,
            collection,
            by_micros,
        } => {
            sqlx::query(
                "UPDATE records SET expires_at = expires_at - $1 \
                 WHERE tenant = $2 AND collection = $3 AND expires_at IS NOT NULL",
            )
            .bind(by_micros)
            .bind(tenant.as_bytes().as_slice())
            .bind(&collection)
            .execute(&mut *conn)
            .await?;
        }
        _ => return Err(misrouted("retention")),
    }
    Ok(())
}

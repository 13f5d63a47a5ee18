//! Legal holds, the records a hold keeps, and shredding a hold's key when it ends.

use super::*;

/// Applies one hold op; `apply` routes only those here.
pub(super) async fn apply(conn: &mut PgConnection, op: Op) -> Result<()> {
    match op {
        Op::InsertHold(h) => {
            sqlx::query(
                "INSERT INTO holds (tenant, id, subject, key_version, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(h.tenant.as_bytes().as_slice())
            .bind(h.id.as_bytes().as_slice())
            .bind(h.subject.as_bytes().as_slice())
            .bind(i64::from(h.key_version))
            .bind(to_micros(h.created_at))
            .execute(&mut *conn)
            .await?;
            if let Some(key) = &h.wrapped_key {
                assert_tenant_key(conn, h.tenant, h.key_version).await?;
                sqlx::query(
                    "INSERT INTO hold_keys (tenant, hold, wrapped_key) VALUES ($1, $2, $3)",
                )
                .bind(h.tenant.as_bytes().as_slice())
                .bind(h.id.as_bytes().as_slice())
                .bind(key)
                .execute(&mut *conn)
                .await?;
            }
        }
        Op::InsertHeldRecord(h) => {
            sqlx::query(
                "INSERT INTO held_records (tenant, hold, id, collection, ciphertext, key_version, \
                 created_at, hold_until, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(h.tenant.as_bytes().as_slice())
            .bind(h.hold.as_bytes().as_slice())
            .bind(h.id.as_bytes().as_slice())
            .bind(&h.collection)
            .bind(&h.ciphertext)
            .bind(i64::from(h.key_version))
            .bind(to_micros(h.created_at))
            .bind(to_micros(h.hold_until))
            .bind(&h.reason)
            .execute(&mut *conn)
            .await?;
        }
        Op::DeleteHeldRecord { tenant, id } => {
            sqlx::query("DELETE FROM held_records WHERE tenant = $1 AND id = $2")
                .bind(tenant.as_bytes().as_slice())
                .bind(id.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
        }
        Op::ShredHold { tenant, id } => {
            sqlx::query("DELETE FROM hold_keys WHERE tenant = $1 AND hold = $2")
                .bind(tenant.as_bytes().as_slice())
                .bind(id.as_bytes().as_slice())
                .execute(&mut *conn)
                .await?;
        }
        _ => return Err(misrouted("holds")),
    }
    Ok(())
}

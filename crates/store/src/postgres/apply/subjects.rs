//! Data subjects: creating one, its restrictions and hold, erasing it, and the ledger that
//! remembers an erasure.

use super::*;

/// Applies one subject op; `apply` routes only those here.
pub(super) async fn apply(conn: &mut PgConnection, op: Op) -> Result<()> {
    match op {
        Op::InsertSubject(s) => {
            sqlx::query(
                "INSERT INTO subjects (tenant, id, external_ref, key_version, restrictions, \
                 hold_until, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(s.tenant.as_bytes().as_slice())
            .bind(s.id.as_bytes().as_slice())
            .bind(&s.external_ref)
            .bind(i64::from(s.key_version))
            .bind(&s.restrictions)
            .bind(s.hold_until.map(to_micros))
            .bind(to_micros(s.created_at))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("subject with this external_ref"))?;
            assert_tenant_key(conn, s.tenant, s.key_version).await?;
            if let Some(key) = &s.wrapped_key {
                sqlx::query(
                    "INSERT INTO subject_keys (tenant, subject, wrapped_key, version) VALUES ($1, $2, $3, $4)",
                )
                .bind(s.tenant.as_bytes().as_slice())
                .bind(s.id.as_bytes().as_slice())
                .bind(key)
                .bind(i64::from(s.record_key_version))
                .execute(&mut *conn)
                .await
                .map_err(unique_to_conflict("subject"))?;
            }
        }
        Op::SetRestrictions {
            tenant,
            subject,
            restrictions,
        } => {
            let done =
                sqlx::query("UPDATE subjects SET restrictions = $1 WHERE tenant = $2 AND id = $3")
                    .bind(&restrictions)
                    .bind(tenant.as_bytes().as_slice())
                    .bind(subject.as_bytes().as_slice())
                    .execute(&mut *conn)
                    .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("subject"));
            }
        }
        Op::SetSubjectHold {
            tenant,
            subject,
            hold_until,
        } => {
            let done = sqlx::query(
                "UPDATE subjects SET hold_until = $1 \
                 WHERE tenant = $2 AND id = $3 AND EXISTS \
                 (SELECT 1 FROM subject_keys k WHERE k.tenant = $2 AND k.subject = $3)",
            )
            .bind(hold_until.map(to_micros))
            .bind(tenant.as_bytes().as_slice())
            .bind(subject.as_bytes().as_slice())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("subject"));
            }
        }
        Op::EraseSubject { tenant, subject } => {
            let t = tenant.as_bytes().as_slice();
            let s = subject.as_bytes().as_slice();
            // The key first: once it is gone, whatever else survives is undecryptable.
            for sql in [
                "DELETE FROM subject_keys WHERE tenant = $1 AND subject = $2",
                "DELETE FROM retired_subject_keys WHERE tenant = $1 AND subject = $2",
            ] {
                sqlx::query(sql).bind(t).bind(s).execute(&mut *conn).await?;
            }
            sqlx::query("DELETE FROM blind_index WHERE tenant = $1 AND subject = $2")
                .bind(t)
                .bind(s)
                .execute(&mut *conn)
                .await?;
            sqlx::query("DELETE FROM records WHERE tenant = $1 AND subject = $2")
                .bind(t)
                .bind(s)
                .execute(&mut *conn)
                .await?;
            let done = sqlx::query(
                "UPDATE subjects SET external_ref = NULL, restrictions = '[]', hold_until = NULL \
                 WHERE tenant = $1 AND id = $2",
            )
            .bind(t)
            .bind(s)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("subject"));
            }
        }
        Op::InsertLedger(l) => {
            sqlx::query(
                "INSERT INTO erasure_ledger (id, tenant, subject, requested_by, erased_at, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(l.id.as_bytes().as_slice())
            .bind(l.tenant.as_bytes().as_slice())
            .bind(l.subject.as_bytes().as_slice())
            .bind(&l.requested_by)
            .bind(to_micros(l.erased_at))
            .bind(&l.detail)
            .execute(&mut *conn)
            .await?;
        }
        _ => return Err(misrouted("subjects")),
    }
    Ok(())
}

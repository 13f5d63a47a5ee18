//! Records and their blind index, applied one request at a time (the set-based pass for single
//! record writes is in `batch`): a record and its index entries are written and removed together.

use super::*;

/// Applies one record op; `apply` routes only those here.
pub(super) async fn apply(conn: &mut PgConnection, op: Op) -> Result<()> {
    match op {
        Op::InsertRecord { record: r, index } => {
            assert_tenant_active(conn, r.tenant).await?;
            assert_subject_key(conn, r.tenant, r.subject, r.key_version).await?;
            sqlx::query(
                "INSERT INTO records (tenant, subject, id, collection, ciphertext, key_version, \
                 revision, created_at, updated_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(r.tenant.as_bytes().as_slice())
            .bind(r.subject.as_bytes().as_slice())
            .bind(r.id.as_bytes().as_slice())
            .bind(&r.collection)
            .bind(&r.ciphertext)
            .bind(i64::from(r.key_version))
            .bind(r.revision)
            .bind(to_micros(r.created_at))
            .bind(to_micros(r.updated_at))
            .bind(r.expires_at.map(to_micros))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("subject"))?;
            insert_index(conn, &r, &index).await?;
        }
        Op::UpdateRecord {
            record: r,
            expected_revision,
            index,
        } => {
            assert_subject_key(conn, r.tenant, r.subject, r.key_version).await?;
            let done = sqlx::query(
                "UPDATE records SET ciphertext = $1, key_version = $2, revision = $3, \
                 updated_at = $4, expires_at = $5 \
                 WHERE tenant = $6 AND subject = $7 AND id = $8 AND revision = $9",
            )
            .bind(&r.ciphertext)
            .bind(i64::from(r.key_version))
            .bind(r.revision)
            .bind(to_micros(r.updated_at))
            .bind(r.expires_at.map(to_micros))
            .bind(r.tenant.as_bytes().as_slice())
            .bind(r.subject.as_bytes().as_slice())
            .bind(r.id.as_bytes().as_slice())
            .bind(expected_revision)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(Conflict::Stale));
            }
            delete_index(conn, r.tenant, r.subject, r.id).await?;
            insert_index(conn, &r, &index).await?;
        }
        Op::DeleteRecords { records } => {
            for chunk in records.chunks(300) {
                for (table, id_col) in [("blind_index", "record"), ("records", "id")] {
                    let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!(
                        "DELETE FROM {table} WHERE (tenant, subject, {id_col}) IN ("
                    ));
                    let mut list = b.separated(", ");
                    for (t, s, r) in chunk {
                        list.push("(");
                        list.push_bind_unseparated(t.as_bytes().to_vec());
                        list.push_unseparated(", ");
                        list.push_bind_unseparated(s.as_bytes().to_vec());
                        list.push_unseparated(", ");
                        list.push_bind_unseparated(r.as_bytes().to_vec());
                        list.push_unseparated(")");
                    }
                    b.push(")");
                    b.build().execute(&mut *conn).await?;
                }
            }
        }
        Op::DeleteRecord {
            tenant,
            subject,
            id,
        } => {
            let done =
                sqlx::query("DELETE FROM records WHERE tenant = $1 AND subject = $2 AND id = $3")
                    .bind(tenant.as_bytes().as_slice())
                    .bind(subject.as_bytes().as_slice())
                    .bind(id.as_bytes().as_slice())
                    .execute(&mut *conn)
                    .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("record"));
            }
            delete_index(conn, tenant, subject, id).await?;
        }
        _ => return Err(misrouted("records")),
    }
    Ok(())
}

/// Inserts a record's blind-index entries in one statement.
pub(in crate::postgres) async fn insert_index(
    conn: &mut PgConnection,
    r: &RecordRow,
    index: &[IndexEntry],
) -> Result<()> {
    if index.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO blind_index (tenant, collection, field, hash, subject, record) \
         SELECT $1, $2, e.field, e.hash, $3, $4 FROM UNNEST($5::TEXT[], $6::BYTEA[]) AS e(field, hash) \
         ON CONFLICT DO NOTHING",
    )
    .bind(r.tenant.as_bytes().as_slice())
    .bind(&r.collection)
    .bind(r.subject.as_bytes().as_slice())
    .bind(r.id.as_bytes().as_slice())
    .bind(index.iter().map(|e| e.field.as_str()).collect::<Vec<_>>())
    .bind(index.iter().map(|e| e.hash.as_slice()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(in crate::postgres) async fn delete_index(
    conn: &mut PgConnection,
    tenant: Uuid,
    subject: Uuid,
    id: Uuid,
) -> Result<()> {
    sqlx::query("DELETE FROM blind_index WHERE tenant = $1 AND subject = $2 AND record = $3")
        .bind(tenant.as_bytes().as_slice())
        .bind(subject.as_bytes().as_slice())
        .bind(id.as_bytes().as_slice())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// ---- decoding -------------------------------------------------------------------------------

//! Reads of the audit log: pages of it, its checkpoints, and the filtered queries that walk
//! it by subject through the chunked subject index.

use super::*;
use crate::sql;

pub(in crate::sqlite) fn audit_page(c: &Connection, from: u64, limit: u32) -> Result<AuditPage> {
    let mut page = AuditPage::with_capacity(limit.min(100_000) as usize, 400);
    each_audit_row(c, from, limit, |row| {
        let text = |i| row.get_ref(i).and_then(|v| Ok(v.as_str()?));
        page.push(
            row.get::<_, i64>(0)? as u64,
            blob_at(row, 1)?,
            hash_at(row, 2)?,
            row.get(3)?,
            opt_uuid_at(row, 4)?,
            opt_uuid_at(row, 5)?,
            [text(6)?, text(7)?, text(8)?],
        );
        Ok(())
    })?;
    Ok(page)
}

pub(in crate::sqlite) fn checkpoints(c: &Connection) -> Result<Vec<CheckpointRow>> {
    all(c, sql::CHECKPOINTS, [], |r| checkpoint_from(r))
}

/// Calls `f` with up to `limit` audit rows from index `from` on, in log order.
pub(in crate::sqlite) fn each_audit_row(
    c: &Connection,
    from: u64,
    limit: u32,
    mut f: impl FnMut(&Row<'_>) -> Result<()>,
) -> Result<()> {
    let mut stmt = c.prepare_cached(concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_events WHERE idx >= ?1 ORDER BY idx LIMIT ?2"
    ))?;
    let mut rows = stmt.query(params![from as i64, i64::from(limit)])?;
    while let Some(row) = rows.next()? {
        f(row)?;
    }
    Ok(())
}

/// Bits of the log index that the subject index groups by (see migration 0005).
pub(in crate::sqlite) const SUBJECT_CHUNK_BITS: u32 = 10;

/// Chunks of the log one statement of a subject's walk covers: one seek each, inside one
/// statement, since a statement per chunk costs several times the seek.
pub(in crate::sqlite) const CHUNKS_PER_STEP: i64 = 64;

pub(in crate::sqlite) fn audit_query(conn: &Connection, q: &AuditQuery) -> Result<Vec<AuditRow>> {
    let mut sql = String::new();
    let mut values = Vec::new();
    if q.subject.is_some() {
        // The index's own expression, named explicitly: a plan that walked the tenant's
        // index instead would read the tenant's whole log. The chunk range is bound for each
        // step of the walk below.
        sql.push_str(concat!(
            "WITH RECURSIVE chunks(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM chunks \
             WHERE n < ?) SELECT ",
            audit_columns!(),
            " FROM audit_events INDEXED BY audit_events_subject_chunk WHERE tenant = ?"
        ));
        sql.push_str(&format!(" AND (idx >> {SUBJECT_CHUNK_BITS}) IN chunks"));
        values.extend([Value::Null, Value::Null]);
    } else {
        sql.push_str(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events WHERE tenant = ?"
        ));
    }
    values.push(Value::from(q.tenant));
    let mut filter = |column: &str, value: Option<Value>| {
        if let Some(v) = value {
            sql.push_str(&format!(" AND {column} ?"));
            values.push(v);
        }
    };
    filter("at >=", q.since.map(|t| to_micros(t).into()));
    filter("at <", q.until.map(|t| to_micros(t).into()));
    filter("actor =", q.actor.clone().map(Into::into));
    filter("subject =", q.subject.map(Into::into));
    filter("action =", q.action.clone().map(Into::into));
    filter("outcome =", q.outcome.clone().map(Into::into));
    filter(
        "idx >",
        q.after.map(|a| i64::try_from(a).unwrap_or(i64::MAX).into()),
    );
    sql.push_str(" ORDER BY idx LIMIT ?");
    values.push(i64::from(q.limit).into());
    if q.subject.is_none() {
        return all(conn, &sql, params_from_iter(values), |r| audit_row_from(r));
    }
    // A subject's events: the chunks from the cursor's to the newest, a step at a time,
    // until the page is full.
    let bounds: (Option<i64>, Option<i64>) = conn
        // Two subqueries: SQLite answers a lone MIN or MAX from the end of the primary key, but
        // scans the whole table for both in one select.
        .prepare_cached(
            "SELECT (SELECT MIN(idx) FROM audit_events), (SELECT MAX(idx) FROM audit_events)",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (Some(first), Some(last)) = bounds else {
        return Ok(Vec::new());
    };
    let from = q.after.map_or(first, |a| {
        i64::try_from(a)
            .unwrap_or(i64::MAX)
            .saturating_add(1)
            .max(first)
    });
    let (mut chunk, newest) = (from >> SUBJECT_CHUNK_BITS, last >> SUBJECT_CHUNK_BITS);
    let mut out = Vec::new();
    while chunk <= newest {
        let wanted = i64::from(q.limit) - out.len() as i64;
        if wanted <= 0 {
            break;
        }
        let to = (chunk + CHUNKS_PER_STEP - 1).min(newest);
        values[0] = chunk.into();
        values[1] = to.into();
        if let Some(limit) = values.last_mut() {
            *limit = wanted.into();
        }
        out.extend(all(conn, &sql, params_from_iter(values.iter()), |r| {
            audit_row_from(r)
        })?);
        chunk = to + 1;
    }
    Ok(out)
}

pub(in crate::sqlite) fn last_system_event(
    c: &Connection,
    action: String,
) -> Result<Option<AuditRow>> {
    let rows = all(
        c,
        concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events INDEXED BY audit_events_tenant \
             WHERE tenant IS NULL AND action = ?1 ORDER BY idx DESC LIMIT 1"
        ),
        [action],
        |r| audit_row_from(r),
    )?;
    Ok(rows.into_iter().next())
}

/// The first event in log order at or after `at`: a walk of the primary key that reads only
/// the events before it (the ones a prune is about to delete).
pub(in crate::sqlite) fn audit_index_at(
    c: &Connection,
    at: time::OffsetDateTime,
) -> Result<Option<u64>> {
    let v: Option<i64> = c
        .prepare_cached("SELECT idx FROM audit_events WHERE at >= ?1 ORDER BY idx LIMIT 1")?
        .query_row([to_micros(at)], |r| r.get(0))
        .optional()?;
    Ok(v.map(|v| v as u64))
}

pub(in crate::sqlite) fn audit_rows(
    c: &Connection,
    from: u64,
    limit: u32,
) -> Result<Vec<AuditRow>> {
    let mut out = Vec::with_capacity(limit.min(100_000) as usize);
    each_audit_row(c, from, limit, |row| {
        out.push(audit_row_from(row)?);
        Ok(())
    })?;
    Ok(out)
}

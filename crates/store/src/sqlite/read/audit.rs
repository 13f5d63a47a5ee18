//! Reads of the audit log: pages of it, its checkpoints, and the filtered queries that find
//! a subject's events through the sealed segments' postings and the chunked subject index.

use super::*;
use crate::sql;
use crate::sqlite::subject_postings;

pub(in crate::sqlite) fn audit_page(c: &Connection, from: u64, limit: u32) -> Result<AuditPage> {
    let mut page = AuditPage::with_capacity(limit.min(100_000) as usize, 400);
    each_audit_row(c, from, limit, |row| {
        let text = |i| row.get_ref(i).and_then(|v| Ok(v.as_str()?));
        page.push(
            row.get::<_, i64>(0)? as u64,
            &crate::audit_codec::unpack(blob_at(row, 1)?),
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

/// The query's conditions on an event's time, actor, action and outcome, as SQL (` AND …`)
/// and the values it binds, in order.
fn conditions(q: &AuditQuery) -> (String, Vec<Value>) {
    let (mut sql, mut values) = (String::new(), Vec::new());
    let mut filter = |column: &str, value: Option<Value>| {
        if let Some(v) = value {
            sql.push_str(&format!(" AND {column} ?"));
            values.push(v);
        }
    };
    filter("at >=", q.since.map(|t| to_micros(t).into()));
    filter("at <", q.until.map(|t| to_micros(t).into()));
    filter("actor =", q.actor.clone().map(Into::into));
    filter("action =", q.action.clone().map(Into::into));
    filter("outcome =", q.outcome.clone().map(Into::into));
    (sql, values)
}

/// The first index after the query's cursor.
fn start(q: &AuditQuery) -> u64 {
    q.after.map_or(0, |a| a.saturating_add(1))
}

pub(in crate::sqlite) fn audit_query(conn: &Connection, q: &AuditQuery) -> Result<Vec<AuditRow>> {
    if let Some(subject) = q.subject {
        return subject_query(conn, q, subject);
    }
    let (conditions, filters) = conditions(q);
    let sql = format!(
        concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events WHERE tenant = ?{} AND idx >= ? ORDER BY idx LIMIT ?"
        ),
        conditions
    );
    let mut values = vec![Value::from(q.tenant)];
    values.extend(filters);
    values.push(index_value(start(q)));
    values.push(i64::from(q.limit).into());
    all(conn, &sql, params_from_iter(values), |r| audit_row_from(r))
}

/// An index as SQLite stores it (past `i64::MAX` means "after every event").
fn index_value(i: u64) -> Value {
    i64::try_from(i).unwrap_or(i64::MAX).into()
}

/// A subject's events: through the sealed segments' postings, then the chunk index for the
/// rest of the log (see `subject_postings`).
///
/// The postings name the events' indices; their rows are read a page's worth at a time by
/// one statement, not one statement per index: the rows are scattered over the whole log, so
/// each costs a seek either way, but one statement pays the statement's own work (cache
/// lookup, binding, reset) once instead of a hundred times.
fn subject_query(conn: &Connection, q: &AuditQuery, subject: Uuid) -> Result<Vec<AuditRow>> {
    let (conditions, filters) = conditions(q);
    let limit = q.limit as usize;
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    // NOT INDEXED: each event is found by the primary key (one descent), in log order. Left to
    // itself the planner takes the tenant index (`tenant = ? AND idx = ?`): two descents per
    // event, then a sort.
    let sql = format!(
        concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events NOT INDEXED WHERE idx IN (SELECT value FROM json_each(?)) \
             AND tenant = ? AND subject = ?{} ORDER BY idx"
        ),
        conditions
    );
    let mut values = vec![Value::Null, q.tenant.into(), subject.into()];
    values.extend(filters.iter().cloned());
    let mut wanted = Vec::new();
    // Reads the rows of the indices gathered so far (those the filters keep), in log order.
    let mut fetch = |wanted: &mut Vec<u64>, out: &mut Vec<AuditRow>| -> Result<()> {
        let list: Vec<String> = wanted.iter().map(u64::to_string).collect();
        values[0] = Value::Text(format!("[{}]", list.join(",")));
        wanted.clear();
        out.extend(all(conn, &sql, params_from_iter(values.iter()), |r| {
            audit_row_from(r)
        })?);
        Ok(())
    };
    let sealed_end = subject_postings::walk(conn, (q.tenant, subject), start(q), |idx| {
        wanted.push(idx);
        // Never more indices than the page still needs, so that a fetch cannot overfill it
        // (the postings give indices in log order; the filters may keep fewer).
        if wanted.len() >= limit - out.len() {
            fetch(&mut wanted, &mut out)?;
        }
        Ok(out.len() < limit)
    })?;
    if !wanted.is_empty() {
        fetch(&mut wanted, &mut out)?;
    }
    if out.len() < limit {
        let from = start(q).max(sealed_end);
        out.extend(chunk_walk(
            conn,
            q,
            subject,
            from,
            &conditions,
            filters,
            limit - out.len(),
        )?);
    }
    Ok(out)
}

/// Up to `wanted` of a subject's events from index `from` on, through the chunk index: the
/// chunks from the cursor's to the newest, a step at a time, until the page is full.
fn chunk_walk(
    conn: &Connection,
    q: &AuditQuery,
    subject: Uuid,
    from: u64,
    conditions: &str,
    filters: Vec<Value>,
    wanted: usize,
) -> Result<Vec<AuditRow>> {
    // The index's own expression, named explicitly: a plan that walked the tenant's index
    // instead would read the tenant's whole log. The chunk range is bound for each step.
    let sql = format!(
        concat!(
            "WITH RECURSIVE chunks(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM chunks \
             WHERE n < ?) SELECT ",
            audit_columns!(),
            " FROM audit_events INDEXED BY audit_events_subject_chunk WHERE tenant = ? \
             AND (idx >> {}) IN chunks AND subject = ?{} AND idx >= ? ORDER BY idx LIMIT ?"
        ),
        SUBJECT_CHUNK_BITS, conditions
    );
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
    let from = i64::try_from(from).unwrap_or(i64::MAX).max(first);
    let mut values = vec![Value::Null, Value::Null, q.tenant.into(), subject.into()];
    values.extend(filters);
    values.push(from.into());
    values.push(Value::Null);
    let (mut chunk, newest) = (from >> SUBJECT_CHUNK_BITS, last >> SUBJECT_CHUNK_BITS);
    let mut out = Vec::new();
    while chunk <= newest && out.len() < wanted {
        let to = (chunk + CHUNKS_PER_STEP - 1).min(newest);
        values[0] = chunk.into();
        values[1] = to.into();
        if let Some(limit) = values.last_mut() {
            *limit = ((wanted - out.len()) as i64).into();
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

//! Reads of the audit log: pages of it, its checkpoints, and the filtered queries that find
//! a subject's events through the sealed segments' postings and the chunked subject index.
//!
//! The log is stored in two parts (see `audit_bundles`): the sealed history in bundles, then
//! the newest events as rows. Every read here reads the bundles' part first.

use std::borrow::Cow;

use super::*;
use crate::AuditColumns;
use crate::audit_columns::Columns;
use crate::decode::u64_at;
use crate::sql;
use crate::sqlite::audit_bundles::{self, sql_index};
use crate::sqlite::subject_postings;

/// Runs `f` in one read transaction, unless the connection is in one already: a read of the
/// log that takes more than one statement (the bundles, then the rows) must not see the
/// writer move rows into bundles between them.
pub(in crate::sqlite) fn in_snapshot<T>(
    c: &Connection,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    if !c.is_autocommit() {
        return f(c);
    }
    exec(c, "BEGIN")?;
    let out = f(c);
    // A read transaction has nothing to keep: ending it only releases the snapshot.
    let _ = exec(c, "ROLLBACK");
    out
}

pub(in crate::sqlite) fn audit_page(c: &Connection, from: u64, limit: u32) -> Result<AuditPage> {
    in_snapshot(c, |c| page_in(c, from, limit))
}

fn page_in(c: &Connection, from: u64, limit: u32) -> Result<AuditPage> {
    let mut page = AuditPage::with_capacity(limit.min(100_000) as usize, 400);
    each_event(c, from, limit.into(), |idx, event, chain, stored| {
        let parsed;
        let cols = match stored {
            Some(cols) => cols,
            None => {
                parsed = columns_of(event);
                &parsed
            }
        };
        page.push(
            idx,
            event,
            *chain,
            cols.at,
            cols.tenant,
            cols.subject,
            [&cols.actor, &cols.action, &cols.outcome],
        );
        Ok(())
    })?;
    Ok(page)
}

pub(in crate::sqlite) fn checkpoints(c: &Connection) -> Result<Vec<CheckpointRow>> {
    all(c, sql::CHECKPOINTS, [], |r| checkpoint_from(r))
}

/// What a bundled event's filter columns are: what it says, or, for an event that does not
/// read, values no filter matches and verification names as not matching the event.
fn columns_of(event: &[u8]) -> Columns<'_> {
    Columns::of(event).unwrap_or(Columns {
        at: 0,
        tenant: None,
        subject: None,
        actor: Cow::Borrowed(""),
        action: Cow::Borrowed(""),
        outcome: Cow::Borrowed(""),
    })
}

/// An event as the store returns it.
fn row_of(idx: u64, event: &[u8], chain: &Hash, cols: &Columns<'_>) -> AuditRow {
    AuditRow {
        idx,
        event: event.to_vec(),
        chain: *chain,
        columns: AuditColumns {
            at: cols.at,
            tenant: cols.tenant,
            subject: cols.subject,
            actor: cols.actor.to_string(),
            action: cols.action.to_string(),
            outcome: cols.outcome.to_string(),
        },
    }
}

/// Calls `f` with up to `limit` events from index `from` on, in log order: each event's index,
/// canonical bytes, chain value and, for an event stored as a row, its stored filter columns
/// (a bundled event has none: they are what the event says).
pub(in crate::sqlite) fn each_event(
    c: &Connection,
    from: u64,
    limit: u64,
    mut f: impl FnMut(u64, &[u8], &Hash, Option<&Columns<'_>>) -> Result<()>,
) -> Result<()> {
    let mut left = limit;
    if left == 0 {
        return Ok(());
    }
    audit_bundles::each_from(c, from, |bundle| {
        bundle.each(from, |idx, event, chain| {
            f(idx, event, chain, None)?;
            left -= 1;
            Ok(left > 0)
        })
    })?;
    if left == 0 {
        return Ok(());
    }
    let mut stmt = c.prepare_cached(concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_events WHERE idx >= ?1 ORDER BY idx LIMIT ?2"
    ))?;
    let mut rows = stmt.query(params![sql_index(from), sql_index(left)])?;
    while let Some(row) = rows.next()? {
        let text = |i| row.get_ref(i).and_then(|v| Ok(v.as_str()?));
        let cols = Columns {
            at: row.get(3)?,
            tenant: opt_uuid_at(row, 4)?,
            subject: opt_uuid_at(row, 5)?,
            actor: Cow::Borrowed(text(6)?),
            action: Cow::Borrowed(text(7)?),
            outcome: Cow::Borrowed(text(8)?),
        };
        let event = crate::audit_codec::unpack(blob_at(row, 1)?);
        f(u64_at(row, 0)?, &event, &hash_at(row, 2)?, Some(&cols))?;
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

/// Whether a bundled event's columns pass the query's conditions on time, actor, action and
/// outcome (what [`conditions`] asks of a row).
fn matches(q: &AuditQuery, c: &Columns<'_>) -> bool {
    q.since.is_none_or(|t| c.at >= to_micros(t))
        && q.until.is_none_or(|t| c.at < to_micros(t))
        && q.actor.as_deref().is_none_or(|a| c.actor == a)
        && q.action.as_deref().is_none_or(|a| c.action == a)
        && q.outcome.as_deref().is_none_or(|o| c.outcome == o)
}

/// The first index after the query's cursor.
fn start(q: &AuditQuery) -> u64 {
    q.after.map_or(0, |a| a.saturating_add(1))
}

pub(in crate::sqlite) fn audit_query(conn: &Connection, q: &AuditQuery) -> Result<Vec<AuditRow>> {
    in_snapshot(conn, |conn| query_in(conn, q))
}

fn query_in(conn: &Connection, q: &AuditQuery) -> Result<Vec<AuditRow>> {
    if let Some(subject) = q.subject {
        return subject_query(conn, q, subject);
    }
    let (from, limit) = (start(q), q.limit as usize);
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    audit_bundles::each_of_tenant(conn, Some(q.tenant), from, |bundle| {
        bundle.each(from, |idx, event, chain| {
            if let Some(cols) = Columns::of(event)
                && cols.tenant == Some(q.tenant)
                && matches(q, &cols)
            {
                out.push(row_of(idx, event, chain, &cols));
            }
            Ok(out.len() < limit)
        })
    })?;
    if out.len() == limit {
        return Ok(out);
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
    values.push(sql_index(from).into());
    values.push(((limit - out.len()) as i64).into());
    out.extend(all(conn, &sql, params_from_iter(values), |r| {
        audit_row_from(r)
    })?);
    Ok(out)
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
    let bundled_end = audit_bundles::end(conn)?;
    let mut bundle: Option<audit_bundles::Bundle> = None;
    // Reads the events of the indices gathered so far (those the filters keep), in log order:
    // the bundled ones from their bundles, the rest as rows.
    let mut fetch = |wanted: &mut Vec<u64>, out: &mut Vec<AuditRow>| -> Result<()> {
        let split = wanted.partition_point(|&i| i < bundled_end);
        for &idx in &wanted[..split] {
            if !bundle
                .as_ref()
                .is_some_and(|b| b.first() <= idx && idx < b.end())
            {
                bundle = audit_bundles::containing(conn, idx)?;
            }
            if let Some(b) = &bundle {
                b.each(idx, |i, event, chain| {
                    if let Some(cols) = Columns::of(event)
                        && cols.tenant == Some(q.tenant)
                        && cols.subject == Some(subject)
                        && matches(q, &cols)
                    {
                        out.push(row_of(i, event, chain, &cols));
                    }
                    Ok(false)
                })?;
            }
        }
        if split < wanted.len() {
            let list: Vec<String> = wanted[split..].iter().map(u64::to_string).collect();
            values[0] = Value::Text(format!("[{}]", list.join(",")));
            out.extend(all(conn, &sql, params_from_iter(values.iter()), |r| {
                audit_row_from(r)
            })?);
        }
        wanted.clear();
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
    in_snapshot(c, |c| last_system_event_in(c, action))
}

fn last_system_event_in(c: &Connection, action: String) -> Result<Option<AuditRow>> {
    let rows = all(
        c,
        concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events INDEXED BY audit_events_tenant \
             WHERE tenant IS NULL AND action = ?1 ORDER BY idx DESC LIMIT 1"
        ),
        [&action],
        |r| audit_row_from(r),
    )?;
    if let Some(row) = rows.into_iter().next() {
        return Ok(Some(row));
    }
    let mut found = None;
    audit_bundles::each_of_tenant_newest_first(c, None, |bundle| {
        bundle.each(0, |idx, event, chain| {
            if let Some(cols) = Columns::of(event)
                && cols.tenant.is_none()
                && cols.action == action
            {
                found = Some(row_of(idx, event, chain, &cols));
            }
            Ok(true)
        })?;
        Ok(found.is_none())
    })?;
    Ok(found)
}

/// The first event in log order at or after `at`: bundles are skipped by their latest time,
/// then rows are walked in index order, reading only the events before it (the ones a prune
/// is about to delete).
pub(in crate::sqlite) fn audit_index_at(
    c: &Connection,
    at: time::OffsetDateTime,
) -> Result<Option<u64>> {
    in_snapshot(c, |c| index_at_in(c, to_micros(at)))
}

fn index_at_in(c: &Connection, at: i64) -> Result<Option<u64>> {
    let mut found = None;
    audit_bundles::each_reaching(c, at, |bundle| {
        bundle.each(0, |idx, event, _| {
            if Columns::of(event).is_some_and(|cols| cols.at >= at) {
                found = Some(idx);
            }
            Ok(found.is_none())
        })?;
        Ok(found.is_none())
    })?;
    if found.is_some() {
        return Ok(found);
    }
    let v: Option<i64> = c
        .prepare_cached("SELECT idx FROM audit_events WHERE at >= ?1 ORDER BY idx LIMIT 1")?
        .query_row([at], |r| r.get(0))
        .optional()?;
    Ok(v.map(|v| v as u64))
}

pub(in crate::sqlite) fn audit_rows(
    c: &Connection,
    from: u64,
    limit: u32,
) -> Result<Vec<AuditRow>> {
    in_snapshot(c, |c| rows_in(c, from, limit))
}

fn rows_in(c: &Connection, from: u64, limit: u32) -> Result<Vec<AuditRow>> {
    let mut out = Vec::with_capacity(limit.min(100_000) as usize);
    each_event(c, from, limit.into(), |idx, event, chain, stored| {
        out.push(match stored {
            Some(cols) => row_of(idx, event, chain, cols),
            None => row_of(idx, event, chain, &columns_of(event)),
        });
        Ok(())
    })?;
    Ok(out)
}

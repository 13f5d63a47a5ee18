//! Snapshots of a SQLite store: export on a read connection of its own, import and the
//! restore reconciliation on the writer thread.
//!
//! An export is one read transaction over the data file and the attached key store, begun
//! by reading both at once: WAL readers see the database as of that moment while the writer
//! goes on committing. It runs on a blocking thread and hands each full buffer to the async
//! consumer with `blocking_send`, so a slow consumer slows the dump down rather than filling
//! memory. While it runs, the WAL cannot be checkpointed past its snapshot and grows with the
//! writes made meanwhile; it shrinks back at the first checkpoint after the export ends.
//!
//! An import and a reconciliation are exclusive jobs of the writer: they run between group
//! commits, in one transaction, and an import leaves the writer's audit tail at the end of
//! the imported log so the next append continues it.

use std::path::Path;

use bytes::Bytes;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension as _, ToSql, params, params_from_iter};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Access, AuditState, audit_bundles, connect, exec};
use crate::audit_columns::Columns;
use crate::snapshot::format::{Decoder, Encoder, Item, Value, decode_row, uuid_value};
use crate::snapshot::tables::{self, Column, Table, Type};
use crate::snapshot::{AuditRebuild, TableLayout, audit_mark, audit_sections, reconcile, unmarked};
use crate::{
    DumpPiece, Reconciliation, Result, ReusePlan, SnapshotStream, SnapshotSummary, StoreError,
    to_micros,
};

/// The table's name as SQLite knows it (key tables live in the attached key store).
fn physical(table: &str) -> String {
    if tables::in_sqlite_key_store(table) {
        format!("keys.{table}")
    } else {
        table.to_owned()
    }
}

/// How much of each file an export maps (SQLite caps it at its compile-time limit, 2 GiB in
/// the bundled build; beyond that it reads).
const EXPORT_MMAP_BYTES: u64 = 1 << 40;

/// The writer's page cache during an import, in KiB.
const IMPORT_CACHE_KIB: u32 = 256 << 10;

fn consumer_gone() -> StoreError {
    StoreError::Snapshot("the snapshot's consumer went away before the dump was complete".into())
}

// ---- export ---------------------------------------------------------------------------------

/// Dumps `stream` of the store at `path` into `out`, reusing what `reuse` offers and the
/// store still holds. Blocking: run it on a blocking thread.
pub(super) fn export(
    path: &Path,
    stream: SnapshotStream,
    reuse: &ReusePlan,
    out: &mpsc::Sender<DumpPiece>,
) -> Result<SnapshotSummary> {
    let conn = connect(path, Access::Read)?;
    // The dump reads every page once, the records in key order rather than rowid order: a
    // jump to another leaf for most subjects. Mapped, such a jump is a memory access into the
    // OS page cache instead of a read call copying the page into SQLite's own cache (a
    // quarter of the export's time when it was read). Only this connection maps the file,
    // and only while it lives.
    conn.execute_batch(&format!(
        "PRAGMA main.mmap_size = {EXPORT_MMAP_BYTES}; PRAGMA keys.mmap_size = {EXPORT_MMAP_BYTES};"
    ))?;
    exec(&conn, "BEGIN")?;
    // A deferred transaction takes each file's snapshot at its first read: read both now, so
    // the dump is of one moment.
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM main.sqlite_master) + (SELECT COUNT(*) FROM keys.sqlite_master)",
        [],
        |_| Ok(()),
    )?;
    let dumped = dump(&conn, stream, reuse, out);
    let _ = exec(&conn, "ROLLBACK");
    dumped
}

fn send(out: &mpsc::Sender<DumpPiece>, pieces: Vec<DumpPiece>) -> Result<()> {
    for piece in pieces {
        out.blocking_send(piece).map_err(|_| consumer_gone())?;
    }
    Ok(())
}

fn dump(
    conn: &Connection,
    stream: SnapshotStream,
    reuse: &ReusePlan,
    out: &mpsc::Sender<DumpPiece>,
) -> Result<SnapshotSummary> {
    let mut enc = Encoder::digest_beside(stream);
    for table in tables::of(stream) {
        match TableLayout::of(stream, table) {
            TableLayout::Marked => {
                let mark: Option<Vec<u8>> = conn
                    .query_row(
                        "SELECT token FROM dump_marks WHERE name = ?1",
                        [table.name],
                        |r| r.get(0),
                    )
                    .optional()?;
                let mark = mark.map_or_else(unmarked, hex::encode);
                if let Some(planned) = reuse.reusable(table.name, &mark) {
                    send(out, enc.reuse(table.name, planned, Some(table))?)?;
                    continue;
                }
                send(out, enc.begin_section(table.name.to_owned(), mark)?)?;
                enc.begin(table)?;
                rows(conn, &mut enc, table, None, out)?;
                enc.end()?;
                send(out, enc.end_section()?)?;
            }
            TableLayout::AuditLog => {
                enc.begin(table)?;
                let (lowest, highest) = audit_bundles::index_range(conn)?;
                let bundled_end = i64::try_from(audit_bundles::end(conn)?).unwrap_or(i64::MAX);
                if let (Some(lowest), Some(highest)) = (lowest, highest) {
                    for (key, first, last) in audit_sections(lowest, highest) {
                        let chain = audit_bundles::chain_at(conn, last.max(0) as u64)?;
                        let mark = audit_mark(first, last, chain.as_deref());
                        if let Some(planned) = reuse.reusable(&key, &mark) {
                            send(out, enc.reuse(&key, planned, None)?)?;
                            continue;
                        }
                        send(out, enc.begin_section(key, mark)?)?;
                        if first < bundled_end {
                            bundled_rows(conn, &mut enc, first, last.min(bundled_end - 1), out)?;
                        }
                        if last >= bundled_end {
                            let rows_from = first.max(bundled_end);
                            rows(conn, &mut enc, table, Some((rows_from, last)), out)?;
                        }
                        send(out, enc.end_section()?)?;
                    }
                }
                enc.end()?;
            }
            TableLayout::AuditHead => {
                enc.begin(table)?;
                let head = AuditState::load(conn)?.head();
                let size = i64::try_from(head.size)
                    .map_err(|_| StoreError::Corrupt("audit log size exceeds i64".into()))?;
                enc.row(&[
                    Value::Int(size),
                    Value::Bytes(&head.chain),
                    Value::Bytes(&head.frontier),
                ])?;
                enc.end()?;
            }
            TableLayout::Plain => {
                enc.begin(table)?;
                rows(conn, &mut enc, table, None, out)?;
                enc.end()?;
            }
        }
    }
    let (last, summary) = enc.finish()?;
    send(out, vec![DumpPiece::Bytes(last)])?;
    Ok(summary)
}

/// Writes the rows of `table` in key order (of the audit log, those with indices in `range`).
fn rows(
    conn: &Connection,
    enc: &mut Encoder,
    table: &Table,
    range: Option<(i64, i64)>,
    out: &mpsc::Sender<DumpPiece>,
) -> Result<()> {
    let filter = if range.is_some() {
        " WHERE idx BETWEEN ?1 AND ?2"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {} FROM {}{filter} ORDER BY {}",
        table.column_list(""),
        physical(table.name),
        table.key.join(", ")
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = match range {
        Some((first, last)) => stmt.query(params![first, last])?,
        None => stmt.query([])?,
    };
    while let Some(row) = rows.next()? {
        enc.row_with(|i, column| value_of(row.get_ref(i)?, table, column))?;
        if let Some(buf) = enc.take_full()? {
            out.blocking_send(DumpPiece::Bytes(buf))
                .map_err(|_| consumer_gone())?;
        }
    }
    Ok(())
}

/// Writes the bundled events with indices `first..=last` as the rows they were before they
/// were bundled (the dump format has one row per event, whatever the store keeps): the
/// columns as the event says them, the event packed as a row packs it.
fn bundled_rows(
    conn: &Connection,
    enc: &mut Encoder,
    first: i64,
    last: i64,
    out: &mpsc::Sender<DumpPiece>,
) -> Result<()> {
    let (first, last) = (first.max(0) as u64, last.max(0) as u64);
    audit_bundles::each_from(conn, first, |bundle| {
        bundle.each(first, |idx, event, chain| {
            if idx > last {
                return Ok(false);
            }
            let cols = Columns::of(event);
            let (actor, action, outcome) = cols.as_ref().map_or(("", "", ""), |c| {
                (c.actor.as_ref(), c.action.as_ref(), c.outcome.as_ref())
            });
            let uuid = |id: Option<Uuid>| id.map_or(Value::Null, |id| Value::Uuid(*id.as_bytes()));
            let packed = crate::audit_codec::pack(event);
            enc.row(&[
                Value::Int(i64::try_from(idx).unwrap_or(i64::MAX)),
                Value::Int(cols.as_ref().map_or(0, |c| c.at)),
                uuid(cols.as_ref().and_then(|c| c.tenant)),
                uuid(cols.as_ref().and_then(|c| c.subject)),
                Value::Text(actor),
                Value::Text(action),
                Value::Text(outcome),
                Value::Bytes(&packed),
                Value::Bytes(chain),
            ])?;
            if let Some(buf) = enc.take_full()? {
                out.blocking_send(DumpPiece::Bytes(buf))
                    .map_err(|_| consumer_gone())?;
            }
            Ok(true)
        })
    })?;
    Ok(())
}

/// A stored value as the logical value of `column`.
fn value_of<'a>(value: ValueRef<'a>, table: &Table, column: &Column) -> Result<Value<'a>> {
    Ok(match (value, column.ty) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Integer(n), Type::Int | Type::Time) => Value::Int(n),
        (ValueRef::Blob(b), Type::Uuid) => uuid_value(b, table.name, column.name)?,
        (ValueRef::Blob(b), Type::Bytes) => Value::Bytes(b),
        (ValueRef::Text(t), Type::Text) => Value::Text(std::str::from_utf8(t).map_err(|_| {
            StoreError::Corrupt(format!(
                "{}.{} holds text that is not UTF-8",
                table.name, column.name
            ))
        })?),
        (other, _) => {
            return Err(StoreError::Corrupt(format!(
                "{}.{} holds a {:?}, not a {:?}",
                table.name,
                column.name,
                other.data_type(),
                column.ty
            )));
        }
    })
}

// ---- import ---------------------------------------------------------------------------------

/// A logical value bound as a statement parameter.
struct Param<'a>(&'a Value<'a>);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(n) => ValueRef::Integer(*n),
            Value::Uuid(id) => ValueRef::Blob(id),
            Value::Bytes(b) => ValueRef::Blob(b),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
        }))
    }
}

/// Loads a dump into the writer's connection, in one transaction; on success the writer's
/// audit tail is the imported log's.
pub(super) fn import(
    conn: &mut Connection,
    audit: &mut AuditState,
    stream: SnapshotStream,
    input: &mut mpsc::Receiver<Bytes>,
) -> Result<SnapshotSummary> {
    // The import writes every index at once, in key order for the primary keys but at random
    // for the others (the blind index by record, subjects by reference): with the writer's
    // usual 8 MiB cache, their pages would be evicted and written to the WAL again and
    // again. A larger cache for the length of the import keeps them until the commit.
    conn.execute_batch(&format!("PRAGMA cache_size = -{}", IMPORT_CACHE_KIB))?;
    let loaded = exec(conn, "BEGIN IMMEDIATE")
        .map_err(StoreError::from)
        .and_then(|()| load(conn, stream, input))
        .and_then(|done| {
            exec(conn, "COMMIT")?;
            Ok(done)
        });
    if let Err(e) = conn.execute_batch(&format!("PRAGMA cache_size = -{}", super::CACHE_KIB)) {
        tracing::warn!(error = %e, "could not restore the writer's page cache size");
    }
    match loaded {
        Ok((summary, tail)) => {
            if let Some(tail) = tail {
                *audit = tail;
            }
            Ok(summary)
        }
        Err(e) => {
            let _ = exec(conn, "ROLLBACK");
            // Drain the sender so its producer ends instead of waiting on a full channel.
            input.close();
            Err(e)
        }
    }
}

/// Refuses a target that holds any row of `stream`.
fn check_empty(conn: &Connection, stream: SnapshotStream) -> Result<()> {
    for table in tables::of(stream) {
        if table.name == tables::AUDIT_HEAD.name {
            continue;
        }
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", physical(table.name));
        let any: bool = conn.query_row(&sql, [], |r| r.get(0))?;
        if any {
            return Err(StoreError::NotEmpty { table: table.name });
        }
    }
    Ok(())
}

fn load(
    conn: &Connection,
    stream: SnapshotStream,
    input: &mut mpsc::Receiver<Bytes>,
) -> Result<(SnapshotSummary, Option<AuditState>)> {
    check_empty(conn, stream)?;
    let mut decoder = Decoder::new(stream);
    let mut rebuild = AuditRebuild::default();
    let mut insert = None;
    loop {
        while let Some(item) = decoder.next()? {
            match item {
                Item::Table(table) => {
                    insert = (table.name != tables::AUDIT_HEAD.name).then(|| {
                        let marks = (1..=table.columns.len())
                            .map(|i| format!("?{i}"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        format!(
                            "INSERT INTO {} ({}) VALUES ({marks})",
                            physical(table.name),
                            table.column_list("")
                        )
                    });
                }
                Item::Row(table, payload) => {
                    let values = decode_row(table, &payload)?;
                    rebuild.feed(table, &values)?;
                    if let Some(sql) = &insert {
                        conn.prepare_cached(sql)?
                            .execute(params_from_iter(values.iter().map(Param)))?;
                    }
                }
                Item::End | Item::Done => {}
            }
        }
        match input.blocking_recv() {
            Some(chunk) => decoder.feed(&chunk)?,
            None => break,
        }
    }
    let summary = decoder.finish()?;
    for sql in tables::backfills(stream, &summary) {
        conn.execute_batch(sql)?;
    }
    let tail = match stream {
        SnapshotStream::Data => {
            let rebuilt = rebuild.finish()?;
            super::tree::insert_nodes(conn, &rebuilt.nodes)?;
            Some(AuditState {
                frontier: rebuilt.frontier,
                chain: rebuilt.chain,
                nodes: Vec::new(),
            })
        }
        SnapshotStream::Keys => None,
    };
    sync_key_versions(conn)?;
    Ok((summary, tail))
}

/// Copies the versions of the wrapped keys onto the rows they protect, which on SQLite
/// mirror them: after a key snapshot newer than the data snapshot, the key rows are right.
fn sync_key_versions(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "UPDATE tenants SET root_key_version = k.root_key_version, key_version = k.key_version \
         FROM keys.tenant_keys k WHERE k.tenant = tenants.id \
         AND (tenants.root_key_version <> k.root_key_version \
              OR tenants.key_version <> k.key_version); \
         UPDATE subjects SET key_version = k.key_version FROM keys.subject_keys k \
         WHERE k.tenant = subjects.tenant AND k.subject = subjects.id \
         AND subjects.key_version <> k.key_version; \
         UPDATE holds SET key_version = k.key_version FROM keys.hold_keys k \
         WHERE k.tenant = holds.tenant AND k.hold = holds.id AND holds.key_version <> k.key_version;",
    )?;
    Ok(())
}

// ---- reconciliation -------------------------------------------------------------------------

/// Runs the restore reconciliation in one transaction on the writer's connection.
pub(super) fn reconcile_restore(conn: &mut Connection) -> Result<Reconciliation> {
    exec(conn, "BEGIN IMMEDIATE")?;
    match reconcile_in(conn).and_then(|done| {
        exec(conn, "COMMIT")?;
        Ok(done)
    }) {
        Ok(done) => {
            if done != Reconciliation::default() {
                // As after a live erasure: no page image of a destroyed key stays in the WAL.
                if let Err(e) =
                    conn.query_row("PRAGMA keys.wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                {
                    tracing::warn!(error = %e, "key store checkpoint after reconciling failed");
                }
            }
            Ok(done)
        }
        Err(e) => {
            let _ = exec(conn, "ROLLBACK");
            Err(e)
        }
    }
}

fn reconcile_in(conn: &Connection) -> Result<Reconciliation> {
    let mut done = Reconciliation::default();
    let now = to_micros(time::OffsetDateTime::now_utc());
    let tenants: Vec<Uuid> = conn
        .prepare(&reconcile::for_sqlite(reconcile::TENANTS))?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for tenant in tenants {
        let records: i64 = conn.query_row(
            &reconcile::for_sqlite(reconcile::TENANT_RECORDS),
            [tenant],
            |r| r.get(0),
        )?;
        for sql in reconcile::DESTROY_TENANT {
            let sql = reconcile::for_sqlite(sql);
            if sql.contains("?2") {
                conn.execute(&sql, params![tenant, now])?;
            } else {
                conn.execute(&sql, [tenant])?;
            }
        }
        done.destroyed_tenants += 1;
        done.records_removed += records as u64;
    }
    let subjects: Vec<(Uuid, Uuid)> = conn
        .prepare(&reconcile::for_sqlite(reconcile::SUBJECTS))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (tenant, subject) in subjects {
        let records: i64 = conn.query_row(
            &reconcile::for_sqlite(reconcile::SUBJECT_RECORDS),
            params![tenant, subject],
            |r| r.get(0),
        )?;
        for sql in reconcile::ERASE_SUBJECT {
            conn.execute(&reconcile::for_sqlite(sql), params![tenant, subject])?;
        }
        done.erased_subjects += 1;
        done.records_removed += records as u64;
    }
    let held = conn.execute(&reconcile::for_sqlite(reconcile::ORPHAN_HELD_RECORDS), [])?;
    done.records_removed += held as u64;
    for sql in reconcile::ORPHAN_KEYS {
        conn.execute(&reconcile::for_sqlite(sql), [])?;
    }
    Ok(done)
}

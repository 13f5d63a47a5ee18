//! Snapshots of a PostgreSQL store.
//!
//! An export is one `REPEATABLE READ, READ ONLY` transaction: it sees the database as of its
//! first statement while writers go on committing, and it reads each table through a cursor,
//! a few thousand rows per round trip, so memory stays bounded whatever the table's size.
//!
//! An import is one transaction that first locks the stream's tables against writers, then
//! inserts rows in batches through `UNNEST` of one array per column (a batch of thousands of
//! rows per statement, not a round trip per row). The key tables hold no versions on
//! PostgreSQL (the tenants, subjects and holds do): the export joins them in, the import
//! writes them back onto those rows.

use bytes::Bytes;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::snapshot::format::{Decoder, Encoder, Item, Value, decode_row, uuid_value};
use crate::snapshot::tables::{self, Column, Table, Type};
use crate::snapshot::{AuditRebuild, TableLayout, audit_mark, audit_sections, reconcile, unmarked};
use crate::sql;
use crate::{
    DumpPiece, Reconciliation, Result, ReusePlan, SnapshotStream, SnapshotSummary, StoreError,
    to_micros,
};

/// Rows a cursor fetch returns.
const FETCH: usize = 2_000;
/// Rows, and bytes, an import batch holds at most before it is inserted.
const BATCH_ROWS: usize = 5_000;
const BATCH_BYTES: usize = 8 << 20;

fn consumer_gone() -> StoreError {
    StoreError::Snapshot("the snapshot's consumer went away before the dump was complete".into())
}

// ---- export ---------------------------------------------------------------------------------

/// The query that reads `table` in dump order.
fn export_sql(table: &Table) -> String {
    match table.name {
        "tenant_keys" => "SELECT k.tenant, k.wrapped_key, t.root_key_version, t.key_version \
                          FROM tenant_keys k LEFT JOIN tenants t ON t.id = k.tenant \
                          ORDER BY k.tenant"
            .into(),
        "subject_keys" => "SELECT k.tenant, k.subject, k.wrapped_key, k.version, s.key_version \
                           FROM subject_keys k LEFT JOIN subjects s \
                           ON s.tenant = k.tenant AND s.id = k.subject \
                           ORDER BY k.tenant, k.subject"
            .into(),
        "hold_keys" => "SELECT k.tenant, k.hold, k.wrapped_key, h.key_version \
                        FROM hold_keys k LEFT JOIN holds h ON h.tenant = k.tenant AND h.id = k.hold \
                        ORDER BY k.tenant, k.hold"
            .into(),
        "audit_head" => "SELECT size, chain, frontier FROM audit_head WHERE id = 1".into(),
        "support_grants" => format!(
            "SELECT {} FROM support_grants ORDER BY id",
            table
                .column_list("")
                .replace("break_glass", "(CASE WHEN break_glass THEN 1 ELSE 0 END)::BIGINT")
        ),
        name => {
            // Byte order for text, as SQLite sorts it, whatever the database's collation.
            let order = table
                .key
                .iter()
                .map(|k| match table.column(k).map(|c| c.ty) {
                    Some(Type::Text) => format!("{k} COLLATE \"C\""),
                    _ => (*k).to_owned(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("SELECT {} FROM {name} ORDER BY {order}", table.column_list(""))
        }
    }
}

/// Dumps `stream` into `out` from one read-only repeatable-read transaction, reusing what
/// `reuse` offers and the database still holds.
pub(super) async fn export(
    pool: &PgPool,
    stream: SnapshotStream,
    reuse: &ReusePlan,
    out: &mpsc::Sender<DumpPiece>,
) -> Result<SnapshotSummary> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut enc = Encoder::new(stream);
    for table in tables::of(stream) {
        match TableLayout::of(stream, table) {
            TableLayout::Marked => {
                // One token per writer slot (see the migration): the mark is all of them.
                let mark: String = sqlx::query_scalar(
                    "SELECT COALESCE(string_agg(slot::TEXT || '=' || token::TEXT, ',' \
                     ORDER BY slot), '') FROM dump_marks WHERE name = $1",
                )
                .bind(table.name)
                .fetch_one(&mut *tx)
                .await?;
                let mark = if mark.is_empty() { unmarked() } else { mark };
                if let Some(planned) = reuse.reusable(table.name, &mark) {
                    send(out, enc.reuse(table.name, planned, Some(table))?).await?;
                    continue;
                }
                send(out, enc.begin_section(table.name.to_owned(), mark)?).await?;
                enc.begin(table)?;
                rows(&mut tx, &mut enc, table, export_sql(table), out).await?;
                enc.end()?;
                send(out, enc.end_section()?).await?;
            }
            TableLayout::AuditLog => {
                enc.begin(table)?;
                let (lowest, highest): (Option<i64>, Option<i64>) =
                    sqlx::query_as(sql::AUDIT_INDEX_RANGE)
                        .fetch_one(&mut *tx)
                        .await?;
                if let (Some(lowest), Some(highest)) = (lowest, highest) {
                    for (key, first, last) in audit_sections(lowest, highest) {
                        let chain: Option<Vec<u8>> =
                            sqlx::query_scalar("SELECT chain FROM audit_events WHERE idx = $1")
                                .bind(last)
                                .fetch_optional(&mut *tx)
                                .await?;
                        let mark = audit_mark(first, last, chain.as_deref());
                        if let Some(planned) = reuse.reusable(&key, &mark) {
                            send(out, enc.reuse(&key, planned, None)?).await?;
                            continue;
                        }
                        send(out, enc.begin_section(key, mark)?).await?;
                        let sql = format!(
                            "SELECT {} FROM audit_events WHERE idx BETWEEN {first} AND {last} \
                             ORDER BY idx",
                            table.column_list("")
                        );
                        rows(&mut tx, &mut enc, table, sql, out).await?;
                        send(out, enc.end_section()?).await?;
                    }
                }
                enc.end()?;
            }
            TableLayout::AuditHead | TableLayout::Plain => {
                enc.begin(table)?;
                rows(&mut tx, &mut enc, table, export_sql(table), out).await?;
                enc.end()?;
            }
        }
    }
    tx.rollback().await?;
    let (last, summary) = enc.finish()?;
    send(out, vec![DumpPiece::Bytes(last)]).await?;
    Ok(summary)
}

async fn send(out: &mpsc::Sender<DumpPiece>, pieces: Vec<DumpPiece>) -> Result<()> {
    for piece in pieces {
        out.send(piece).await.map_err(|_| consumer_gone())?;
    }
    Ok(())
}

/// Writes the rows `sql` selects, through a cursor, a few thousand per round trip.
async fn rows(
    tx: &mut PgConnection,
    enc: &mut Encoder,
    table: &Table,
    sql: String,
    out: &mpsc::Sender<DumpPiece>,
) -> Result<()> {
    // A cursor per table: the statements differ in their result columns, and a prepared
    // statement cached for one table's shape must not be reused for another's.
    let cursor = format!("snapshot_{}", table.name);
    sqlx::query(AssertSqlSafe(format!(
        "DECLARE {cursor} NO SCROLL CURSOR FOR {sql}"
    )))
    .persistent(false)
    .execute(&mut *tx)
    .await?;
    let fetch = format!("FETCH FORWARD {FETCH} FROM {cursor}");
    loop {
        let rows = sqlx::query(AssertSqlSafe(fetch.clone()))
            .fetch_all(&mut *tx)
            .await?;
        for row in &rows {
            let values = table
                .columns
                .iter()
                .enumerate()
                .map(|(i, column)| value_of(row, i, table, column))
                .collect::<Result<Vec<_>>>()?;
            enc.row(&values)?;
            if let Some(buf) = enc.take_full()? {
                out.send(DumpPiece::Bytes(buf))
                    .await
                    .map_err(|_| consumer_gone())?;
            }
        }
        if rows.len() < FETCH {
            break;
        }
    }
    sqlx::query(AssertSqlSafe(format!("CLOSE {cursor}")))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

fn value_of<'a>(row: &'a PgRow, i: usize, table: &Table, column: &Column) -> Result<Value<'a>> {
    Ok(match column.ty {
        Type::Int | Type::Time => row
            .try_get::<Option<i64>, _>(i)?
            .map_or(Value::Null, Value::Int),
        Type::Uuid => match row.try_get::<Option<&[u8]>, _>(i)? {
            Some(b) => uuid_value(b, table.name, column.name)?,
            None => Value::Null,
        },
        Type::Bytes => row
            .try_get::<Option<&[u8]>, _>(i)?
            .map_or(Value::Null, Value::Bytes),
        Type::Text => row
            .try_get::<Option<&str>, _>(i)?
            .map_or(Value::Null, Value::Text),
    })
}

// ---- import ---------------------------------------------------------------------------------

/// One column of an import batch, bound as one array.
enum Array {
    Ints(Vec<Option<i64>>),
    Bytes(Vec<Option<Vec<u8>>>),
    Texts(Vec<Option<String>>),
}

impl Array {
    fn new(ty: Type) -> Self {
        match ty {
            Type::Int | Type::Time => Self::Ints(Vec::new()),
            Type::Uuid | Type::Bytes => Self::Bytes(Vec::new()),
            Type::Text => Self::Texts(Vec::new()),
        }
    }

    /// Appends `value`; the decoder has checked it fits the column.
    fn push(&mut self, value: &Value<'_>) -> usize {
        match (self, value) {
            (Self::Ints(v), Value::Int(n)) => v.push(Some(*n)),
            (Self::Ints(v), _) => v.push(None),
            (Self::Bytes(v), Value::Uuid(id)) => v.push(Some(id.to_vec())),
            (Self::Bytes(v), Value::Bytes(b)) => {
                v.push(Some(b.to_vec()));
                return b.len();
            }
            (Self::Bytes(v), _) => v.push(None),
            (Self::Texts(v), Value::Text(t)) => {
                v.push(Some((*t).to_owned()));
                return t.len();
            }
            (Self::Texts(v), _) => v.push(None),
        }
        8
    }
}

/// Rows of one table waiting to be inserted.
struct Batch {
    table: &'static Table,
    columns: Vec<Array>,
    rows: usize,
    bytes: usize,
}

impl Batch {
    fn new(table: &'static Table) -> Self {
        Self {
            table,
            columns: table.columns.iter().map(|c| Array::new(c.ty)).collect(),
            rows: 0,
            bytes: 0,
        }
    }

    fn push(&mut self, values: &[Value<'_>]) {
        for (array, value) in self.columns.iter_mut().zip(values) {
            self.bytes += array.push(value);
        }
        self.rows += 1;
    }

    fn full(&self) -> bool {
        self.rows >= BATCH_ROWS || self.bytes >= BATCH_BYTES
    }

    /// The statement inserting a batch: `UNNEST` of one array per column, and for the key
    /// tables the versions written onto the rows the keys protect.
    fn sql(&self) -> String {
        let table = self.table;
        let arrays = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("${}::{}", i + 1, c.ty.pg_array()))
            .collect::<Vec<_>>()
            .join(", ");
        let unnest = format!(
            "WITH k AS (SELECT * FROM UNNEST({arrays}) AS k({}))",
            table.column_list("")
        );
        match table.name {
            "tenant_keys" => format!(
                "{unnest}, ins AS (INSERT INTO tenant_keys (tenant, wrapped_key) \
                 SELECT tenant, wrapped_key FROM k) \
                 UPDATE tenants t SET root_key_version = k.root_key_version, \
                 key_version = k.key_version FROM k WHERE t.id = k.tenant \
                 AND (t.root_key_version, t.key_version) <> (k.root_key_version, k.key_version)"
            ),
            "subject_keys" => format!(
                "{unnest}, ins AS (INSERT INTO subject_keys (tenant, subject, wrapped_key, \
                 version) SELECT tenant, subject, wrapped_key, version FROM k) \
                 UPDATE subjects s SET key_version = k.key_version FROM k \
                 WHERE s.tenant = k.tenant AND s.id = k.subject AND s.key_version <> k.key_version"
            ),
            "hold_keys" => format!(
                "{unnest}, ins AS (INSERT INTO hold_keys (tenant, hold, wrapped_key) \
                 SELECT tenant, hold, wrapped_key FROM k) \
                 UPDATE holds h SET key_version = k.key_version FROM k \
                 WHERE h.tenant = k.tenant AND h.id = k.hold AND h.key_version <> k.key_version"
            ),
            "support_grants" => format!(
                "{unnest} INSERT INTO support_grants ({cols}) SELECT {values} FROM k",
                cols = table.column_list(""),
                values = table
                    .column_list("")
                    .replace("break_glass", "break_glass <> 0")
            ),
            name => format!(
                "{unnest} INSERT INTO {name} ({cols}) SELECT {cols} FROM k",
                cols = table.column_list("")
            ),
        }
    }

    /// Inserts the rows and empties the batch.
    async fn flush(&mut self, conn: &mut PgConnection) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let sql = self.sql();
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for array in std::mem::take(&mut self.columns) {
            query = match array {
                Array::Ints(v) => query.bind(v),
                Array::Bytes(v) => query.bind(v),
                Array::Texts(v) => query.bind(v),
            };
        }
        query.execute(conn).await?;
        *self = Self::new(self.table);
        Ok(())
    }
}

/// Refuses a target that holds any row of `stream`.
async fn check_empty(conn: &mut PgConnection, stream: SnapshotStream) -> Result<()> {
    for table in tables::of(stream) {
        let sql = if table.name == tables::AUDIT_HEAD.name {
            "SELECT EXISTS (SELECT 1 FROM audit_head WHERE size > 0)".to_owned()
        } else {
            format!("SELECT EXISTS (SELECT 1 FROM {})", table.name)
        };
        let any: bool = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&mut *conn)
            .await?;
        if any {
            return Err(StoreError::NotEmpty { table: table.name });
        }
    }
    Ok(())
}

/// Loads a dump in one transaction.
pub(super) async fn import(
    pool: &PgPool,
    stream: SnapshotStream,
    mut input: mpsc::Receiver<Bytes>,
) -> Result<SnapshotSummary> {
    let mut tx = pool.begin().await?;
    // Writers wait until the import commits or rolls back; readers see the empty store.
    let locked = tables::of(stream)
        .iter()
        .map(|t| t.name)
        .chain(match stream {
            SnapshotStream::Data => None,
            // The key import writes the versions onto these.
            SnapshotStream::Keys => Some("tenants, subjects, holds"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::query(AssertSqlSafe(format!(
        "LOCK TABLE {locked} IN EXCLUSIVE MODE"
    )))
    .execute(&mut *tx)
    .await?;
    check_empty(&mut tx, stream).await?;
    let mut decoder = Decoder::new(stream);
    let mut rebuild = AuditRebuild::default();
    let mut batch: Option<Batch> = None;
    loop {
        while let Some(item) = decoder.next()? {
            match item {
                Item::Table(table) => {
                    batch = (table.name != tables::AUDIT_HEAD.name).then(|| Batch::new(table));
                }
                Item::Row(table, payload) => {
                    let values = decode_row(table, &payload)?;
                    rebuild.feed(table, &values)?;
                    if let Some(batch) = &mut batch {
                        batch.push(&values);
                        if batch.full() {
                            batch.flush(&mut tx).await?;
                        }
                    }
                }
                Item::End => {
                    if let Some(batch) = &mut batch {
                        batch.flush(&mut tx).await?;
                    }
                }
                Item::Done => {}
            }
        }
        match input.recv().await {
            Some(chunk) => decoder.feed(&chunk)?,
            None => break,
        }
    }
    let summary = decoder.finish()?;
    for sql in tables::backfills(stream, &summary) {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await?;
    }
    if stream == SnapshotStream::Data {
        let rebuilt = rebuild.finish()?;
        let size = i64::try_from(rebuilt.frontier.size())
            .map_err(|_| StoreError::Corrupt("audit log size exceeds BIGINT".into()))?;
        sqlx::query("UPDATE audit_head SET size = $1, chain = $2, frontier = $3 WHERE id = 1")
            .bind(size)
            .bind(rebuilt.chain.as_slice())
            .bind(rebuilt.frontier.to_bytes())
            .execute(&mut *tx)
            .await?;
        super::tree::insert_nodes(&mut tx, &rebuilt.nodes).await?;
    }
    tx.commit().await?;
    Ok(summary)
}

// ---- reconciliation -------------------------------------------------------------------------

fn uuid_from(bytes: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|_| StoreError::Corrupt("an id is not 16 bytes".into()))
}

/// Runs the restore reconciliation in one transaction.
pub(super) async fn reconcile_restore(pool: &PgPool) -> Result<Reconciliation> {
    let mut tx = pool.begin().await?;
    let mut done = Reconciliation::default();
    let now = to_micros(time::OffsetDateTime::now_utc());
    let tenants: Vec<Vec<u8>> =
        sqlx::query_scalar(AssertSqlSafe(reconcile::for_postgres(reconcile::TENANTS)))
            .fetch_all(&mut *tx)
            .await?;
    for tenant in tenants {
        let tenant = uuid_from(&tenant)?;
        let t = tenant.as_bytes().as_slice();
        let records: i64 = sqlx::query_scalar(AssertSqlSafe(reconcile::for_postgres(
            reconcile::TENANT_RECORDS,
        )))
        .bind(t)
        .fetch_one(&mut *tx)
        .await?;
        for sql in reconcile::DESTROY_TENANT {
            let query = sqlx::query(AssertSqlSafe(reconcile::for_postgres(sql))).bind(t);
            let query = if sql.contains("$2") {
                query.bind(now)
            } else {
                query
            };
            query.execute(&mut *tx).await?;
        }
        done.destroyed_tenants += 1;
        done.records_removed += records as u64;
    }
    let subjects: Vec<(Vec<u8>, Vec<u8>)> =
        sqlx::query_as(AssertSqlSafe(reconcile::for_postgres(reconcile::SUBJECTS)))
            .fetch_all(&mut *tx)
            .await?;
    for (tenant, subject) in subjects {
        let records: i64 = sqlx::query_scalar(AssertSqlSafe(reconcile::for_postgres(
            reconcile::SUBJECT_RECORDS,
        )))
        .bind(&tenant)
        .bind(&subject)
        .fetch_one(&mut *tx)
        .await?;
        for sql in reconcile::ERASE_SUBJECT {
            sqlx::query(AssertSqlSafe(reconcile::for_postgres(sql)))
                .bind(&tenant)
                .bind(&subject)
                .execute(&mut *tx)
                .await?;
        }
        done.erased_subjects += 1;
        done.records_removed += records as u64;
    }
    let held = sqlx::query(AssertSqlSafe(reconcile::for_postgres(
        reconcile::ORPHAN_HELD_RECORDS,
    )))
    .execute(&mut *tx)
    .await?;
    done.records_removed += held.rows_affected();
    for sql in reconcile::ORPHAN_KEYS {
        sqlx::query(AssertSqlSafe(reconcile::for_postgres(sql)))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(done)
}

//! Direct access to a test server's SQLite files, for checks of what is on disk and for
//! tampering with rows behind the server's back. Every call panics with the SQL on failure:
//! these are test assertions, not error handling.

use std::ops::Deref;
use std::path::Path;
use std::time::Duration;

use rusqlite::types::{FromSql, Value, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Params};

/// One connection to an existing SQLite file (never created here), with foreign keys on.
pub struct Db(Connection);

impl Db {
    /// Opens the file at `path` alone (the data file without its key store attached, or the
    /// key store itself).
    pub fn open(path: &Path) -> Self {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        Self(conn)
    }

    /// Opens the data file with the key store attached as `keys`, as the store does.
    pub fn open_store(path: &Path) -> Self {
        Self(
            ward_store::SqliteStore::open_connection(path)
                .unwrap_or_else(|e| panic!("open {}: {e}", path.display())),
        )
    }

    /// The first column of the one row `sql` returns.
    pub fn scalar<T: FromSql>(&self, sql: &str, params: impl Params) -> T {
        self.0
            .query_row(sql, params, |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The first column of the row `sql` returns, if it returns one.
    pub fn optional<T: FromSql>(&self, sql: &str, params: impl Params) -> Option<T> {
        self.0
            .query_row(sql, params, |r| r.get(0))
            .optional()
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The first column of every row `sql` returns.
    pub fn column<T: FromSql>(&self, sql: &str, params: impl Params) -> Vec<T> {
        self.rows(sql, params).iter().map(|r| r.get(0)).collect()
    }

    /// The one row `sql` returns.
    pub fn row(&self, sql: &str, params: impl Params) -> OwnedRow {
        let mut rows = self.rows(sql, params);
        assert_eq!(rows.len(), 1, "{sql}: expected one row");
        rows.remove(0)
    }

    /// Every row `sql` returns, copied out.
    pub fn rows(&self, sql: &str, params: impl Params) -> Vec<OwnedRow> {
        let fail = |e: rusqlite::Error| -> ! { panic!("{sql}: {e}") };
        let mut stmt = self.0.prepare(sql).unwrap_or_else(|e| fail(e));
        let names: Vec<String> = stmt
            .column_names()
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        let width = names.len();
        let mut out = Vec::new();
        let mut rows = stmt.query(params).unwrap_or_else(|e| fail(e));
        while let Some(row) = rows.next().unwrap_or_else(|e| fail(e)) {
            let values = (0..width)
                .map(|i| row.get::<_, Value>(i))
                .collect::<rusqlite::Result<Vec<_>>>()
                .unwrap_or_else(|e| fail(e));
            out.push(OwnedRow {
                names: names.clone(),
                values,
            });
        }
        out
    }

    /// Runs a statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, params: impl Params) -> usize {
        self.0
            .execute(sql, params)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Deref for Db {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.0
    }
}

/// A row copied out of a query.
#[derive(Debug, Clone)]
pub struct OwnedRow {
    names: Vec<String>,
    values: Vec<Value>,
}

/// A column by position or by name.
pub trait Column {
    /// The column's position among `names`.
    fn position(&self, names: &[String]) -> usize;
}

impl Column for usize {
    fn position(&self, _: &[String]) -> usize {
        *self
    }
}

impl Column for &str {
    fn position(&self, names: &[String]) -> usize {
        names
            .iter()
            .position(|n| n == self)
            .unwrap_or_else(|| panic!("no column {self} in {names:?}"))
    }
}

impl OwnedRow {
    /// A column's value.
    pub fn get<T: FromSql>(&self, column: impl Column) -> T {
        let i = column.position(&self.names);
        T::column_result(ValueRef::from(&self.values[i]))
            .unwrap_or_else(|e| panic!("column {}: {e}", self.names[i]))
    }
}

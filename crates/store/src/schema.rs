//! Which migrations a database has, read without applying any: what `ward doctor` reports
//! (a migration missing, or a database a newer Ward has migrated), and the versions a store
//! refuses to open a newer database with.

use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr as _;

use rusqlite::OpenFlags;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::{Result, StoreError};

/// A migration this Ward knows: its version and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Version number (applied in increasing order).
    pub version: i64,
    /// Short description.
    pub description: &'static str,
}

/// The migrations a database has against those this Ward knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Versions recorded as applied in the database.
    pub applied: BTreeSet<i64>,
    /// Every migration this Ward knows, oldest first.
    pub known: Vec<Migration>,
}

impl SchemaStatus {
    /// Migrations this Ward knows that the database lacks (applied at the next start).
    pub fn missing(&self) -> Vec<Migration> {
        self.known
            .iter()
            .filter(|m| !self.applied.contains(&m.version))
            .copied()
            .collect()
    }

    /// The newest version this Ward knows.
    pub fn known_version(&self) -> i64 {
        self.known.last().map_or(0, |m| m.version)
    }

    /// The newest applied version, when it is newer than any this Ward knows: a newer Ward
    /// migrated the database, and this one must not open it.
    pub fn newer(&self) -> Option<i64> {
        self.applied
            .last()
            .copied()
            .filter(|v| *v > self.known_version())
    }

    /// Refuses a database migrated by a newer Ward, naming both versions.
    ///
    /// # Errors
    /// [`StoreError::NewerSchema`].
    pub fn refuse_newer(&self) -> Result<()> {
        match self.newer() {
            Some(found) => Err(StoreError::NewerSchema {
                found,
                known: self.known_version(),
            }),
            None => Ok(()),
        }
    }
}

/// The migrations of the SQLite database at `path`, read on a read-only connection (nothing
/// is created or changed). A database without the migrations table has none applied.
///
/// # Errors
/// The file cannot be opened or read.
pub fn sqlite_schema(path: &Path) -> Result<SchemaStatus> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let has = |table: &str| -> Result<bool> {
        Ok(conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [table],
            |r| r.get(0),
        )?)
    };
    let mut applied = BTreeSet::new();
    for (table, query) in [
        ("_ward_migrations", "SELECT version FROM _ward_migrations"),
        (
            "_sqlx_migrations",
            "SELECT version FROM _sqlx_migrations WHERE success",
        ),
    ] {
        if has(table)? {
            let mut stmt = conn.prepare(query)?;
            for v in stmt.query_map([], |r| r.get::<_, i64>(0))? {
                applied.insert(v?);
            }
        }
    }
    Ok(SchemaStatus {
        applied,
        known: crate::sqlite::known_migrations(),
    })
}

/// The migrations of the PostgreSQL database at `url` (in the schema its `search_path`
/// names), read on one connection without applying any.
///
/// # Errors
/// The database cannot be reached or read.
pub async fn postgres_schema(url: &str) -> Result<SchemaStatus> {
    let mut conn = PgConnection::connect_with(&PgConnectOptions::from_str(url)?).await?;
    let status = postgres_status(&mut conn).await;
    let _ = conn.close().await;
    status
}

pub(crate) async fn postgres_status(conn: &mut PgConnection) -> Result<SchemaStatus> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    let applied = if exists {
        sqlx::query_scalar::<_, i64>("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect()
    } else {
        BTreeSet::new()
    };
    Ok(SchemaStatus {
        applied,
        known: crate::postgres::known_migrations(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(applied: &[i64]) -> SchemaStatus {
        SchemaStatus {
            applied: applied.iter().copied().collect(),
            known: vec![
                Migration {
                    version: 1,
                    description: "init",
                },
                Migration {
                    version: 2,
                    description: "more",
                },
            ],
        }
    }

    #[test]
    fn missing_and_newer_migrations_are_told_apart() {
        assert!(status(&[1, 2]).missing().is_empty());
        assert_eq!(status(&[1, 2]).newer(), None);
        assert_eq!(status(&[1]).missing()[0].version, 2);
        assert_eq!(status(&[1, 2, 3]).newer(), Some(3));
        let refused = status(&[1, 2, 3]).refuse_newer().unwrap_err().to_string();
        assert!(
            refused.contains("schema version 3") && refused.contains("up to 2"),
            "{refused}"
        );
    }
}

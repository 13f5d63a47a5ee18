//! Direct access to the SQLite files of a test server: the data file (`ward.db`) and the key
//! store (`ward.keys.db`), for checks of what is, and is no longer, on disk.

use std::path::Path;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use time::OffsetDateTime;
use ward_testkit::TestServer;

/// One connection to an existing SQLite file (never created here).
pub(crate) async fn open(path: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// The data file.
pub(crate) async fn data_db(srv: &TestServer) -> SqlitePool {
    open(&srv.db_path()).await
}

/// The key store.
pub(crate) async fn keys_db(srv: &TestServer) -> SqlitePool {
    open(&srv.dir.path().join("ward.keys.db")).await
}

/// A UUID as the store keeps it.
pub(crate) fn blob(id: &str) -> Vec<u8> {
    uuid::Uuid::parse_str(id)
        .unwrap_or_else(|e| panic!("{id}: {e}"))
        .as_bytes()
        .to_vec()
}

/// A time as the store keeps it (Unix microseconds).
pub(crate) fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap()
}

/// `SELECT COUNT(*) FROM {table} WHERE {column} = ?` for one UUID.
pub(crate) async fn count(pool: &SqlitePool, table: &str, column: &str, id: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {table} WHERE {column} = ?1"
    )))
    .bind(blob(id))
    .fetch_one(pool)
    .await
    .unwrap_or_else(|e| panic!("count {table}.{column}: {e}"))
}

/// A subject's wrapped key, if the key store still has it.
pub(crate) async fn subject_key(keys: &SqlitePool, tenant: &str, subject: &str) -> Option<Vec<u8>> {
    sqlx::query_scalar("SELECT wrapped_key FROM subject_keys WHERE tenant = ?1 AND subject = ?2")
        .bind(blob(tenant))
        .bind(blob(subject))
        .fetch_optional(keys)
        .await
        .unwrap()
}

/// Files of the data directory that contain `needle`.
pub(crate) fn files_containing(srv: &TestServer, needle: &[u8]) -> Vec<String> {
    srv.data_dir_bytes()
        .into_iter()
        .filter(|(_, bytes)| ward_testkit::contains_bytes(bytes, needle))
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

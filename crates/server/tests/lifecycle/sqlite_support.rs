//! Direct access to the SQLite files of a test server: the data file (`ward.db`) and the key
//! store (`ward.keys.db`), for checks of what is, and is no longer, on disk.

use std::path::Path;

use time::OffsetDateTime;
use ward_testkit::TestServer;
use ward_testkit::sql::Db;

/// One connection to an existing SQLite file (never created here).
pub(crate) fn open(path: &Path) -> Db {
    Db::open(path)
}

/// The data file.
pub(crate) fn data_db(srv: &TestServer) -> Db {
    open(&srv.db_path())
}

/// The key store.
pub(crate) fn keys_db(srv: &TestServer) -> Db {
    open(&srv.dir.path().join("ward.keys.db"))
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
pub(crate) fn count(db: &Db, table: &str, column: &str, id: &str) -> i64 {
    db.scalar(
        &format!("SELECT COUNT(*) FROM {table} WHERE {column} = ?1"),
        [blob(id)],
    )
}

/// A subject's wrapped key, if the key store still has it.
pub(crate) fn subject_key(keys: &Db, tenant: &str, subject: &str) -> Option<Vec<u8>> {
    keys.optional(
        "SELECT wrapped_key FROM subject_keys WHERE tenant = ?1 AND subject = ?2",
        [blob(tenant), blob(subject)],
    )
}

/// Files of the data directory that contain `needle`.
pub(crate) fn files_containing(srv: &TestServer, needle: &[u8]) -> Vec<String> {
    srv.data_dir_bytes()
        .into_iter()
        .filter(|(_, bytes)| ward_testkit::contains_bytes(bytes, needle))
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

//! The master data directory written by a real server, fresh copies of it for each case, the
//! `ward` runner and row-level SQLite edits, shared by every `audit_verify` module because
//! each tampering case starts from the same pristine log and reads the verdict the same way.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use ward_testkit::sql::Db;
use ward_testkit::{TenantFixture, TestServer};

/// A data directory written by a real server, kept as the pristine source of every case.
pub(crate) struct Master {
    pub(crate) dir: TempDir,
    /// Events in the log.
    pub(crate) total: u64,
    /// Size of the first signed checkpoint.
    pub(crate) size1: u64,
    /// Size of the last signed checkpoint.
    pub(crate) size2: u64,
    /// `GET /v1/audit/checkpoint` right after the first checkpoint (what an auditor exports).
    pub(crate) early_checkpoint: Value,
    /// The deployment's checkpoint key, base64, from `GET /v1/audit/public-key`.
    pub(crate) public_key: String,
    /// `GET /v1/audit/checkpoint` at the end (size `size2`).
    pub(crate) last_checkpoint: Value,
}

pub(crate) async fn rounds(srv: &TestServer, t: &TenantFixture, from: usize, n: usize) {
    for i in from..from + n {
        let s = srv.subject(t).await;
        let r = srv
            .contact(
                t,
                &s,
                &format!("Verify Person {i}"),
                &format!("v{i}@example.org"),
            )
            .await;
        let (st, b) = srv.read_for_service(t, &s, &r).await;
        assert_eq!(st, StatusCode::OK, "{b}");
    }
}

pub(crate) async fn checkpoint(srv: &TestServer, token: &str) -> Value {
    let (st, cp) = srv.post("/v1/audit/checkpoint", token, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{cp}");
    cp
}

pub(crate) async fn head_size(srv: &TestServer) -> u64 {
    let pool = Db::open(&srv.db_path());
    let n: i64 = pool.scalar("SELECT COUNT(*) FROM audit_events", []);
    drop(pool);
    u64::try_from(n).unwrap()
}

pub(crate) async fn master() -> Master {
    let srv = TestServer::start().await;
    let t = srv.tenant("Verify Co").await;
    rounds(&srv, &t, 0, 9).await;
    // Operators and auditors sign checkpoints, at most one a minute.
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    let cp1 = checkpoint(&srv, &auditor).await;
    let (st, early) = srv.get("/v1/audit/checkpoint", &t.owner).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(early, cp1);
    rounds(&srv, &t, 9, 3).await;
    srv.clock.advance(time::Duration::seconds(61));
    let cp2 = checkpoint(&srv, &auditor).await;
    let (st, pk) = srv.get("/v1/audit/public-key", &t.owner).await;
    assert_eq!(st, StatusCode::OK);
    let public_key = pk["public_key"].as_str().unwrap().to_owned();
    // A few more events after the last checkpoint: the unsigned tail.
    rounds(&srv, &t, 12, 2).await;
    let total = head_size(&srv).await;
    let size1 = cp1["tree_size"].as_u64().unwrap();
    let size2 = cp2["tree_size"].as_u64().unwrap();
    assert!(
        size1 >= 30 && size2 > size1 && total > size2,
        "{size1} {size2} {total}"
    );

    // Copy the files while the server is idle (every request above has been answered and
    // committed), then stop it; the -shm index is rebuilt from the WAL by the next opener.
    let copy = tempfile::tempdir().unwrap();
    copy_data(srv.dir.path(), copy.path());
    drop(srv);
    tokio::time::sleep(Duration::from_millis(100)).await;
    Master {
        dir: copy,
        total,
        size1,
        size2,
        early_checkpoint: early,
        public_key,
        last_checkpoint: cp2,
    }
}

pub(crate) fn copy_data(from: &Path, to: &Path) {
    // `ward` refuses a data directory others can reach; a temporary directory may be 755.
    let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700);
    std::fs::set_permissions(to, private).unwrap();
    let mut copied = Vec::new();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_file() && !name.ends_with("-shm") {
            // fs::copy keeps the permission bits, so the key files stay 0600.
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
            copied.push(name);
        }
    }
    for needed in ["ward.db", "root.key", "audit-signing.key"] {
        assert!(
            copied.iter().any(|n| n == needed),
            "{needed} not in the data directory: {copied:?}"
        );
    }
}

/// A fresh copy of the master directory, for one tampering case.
pub(crate) fn fresh(m: &Master) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_data(m.dir.path(), dir.path());
    dir
}

pub(crate) fn db(dir: &Path) -> Db {
    Db::open(&dir.join("ward.db"))
}

pub(crate) fn ward(args: &[&str]) -> Output {
    ward_testkit::cli::run_without(
        env!("CARGO_BIN_EXE_ward"),
        args,
        &[
            "WARD_DATA_DIR",
            "WARD_POLICY",
            "WARD_KEY_PROVIDER",
            "WARD_KEY_COMMAND",
            "WARD_CONFIG",
        ],
    )
}

/// What `ward audit verify` answers for a fresh copy of the master data directory after
/// `edit` changed its database, as someone with write access to the file would.
pub(crate) fn verify_tampered(m: &Master, edit: impl FnOnce(&Db)) -> Output {
    let dir = fresh(m);
    let pool = db(dir.path());
    edit(&pool);
    drop(pool);
    verify(dir.path(), &[])
}

pub(crate) fn verify(dir: &Path, extra: &[&str]) -> Output {
    let d = dir.display().to_string();
    let mut args = vec!["audit", "verify", "--data-dir", d.as_str(), "--quiet"];
    args.extend_from_slice(extra);
    ward(&args)
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn first_bad_index(out: &Output) -> Option<u64> {
    let text = stdout(out);
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("first bad index: "))
        .collect();
    assert!(lines.len() <= 1, "more than one first bad index: {text}");
    lines
        .first()
        .map(|n| n.trim().parse().expect("index is a number"))
}

/// Exit code 1, "FAILED", and exactly `index` as the first bad index.
pub(crate) fn assert_fails_at(out: &Output, index: u64) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1: {}",
        stdout(out)
    );
    assert!(
        stdout(out).contains("audit log FAILED verification"),
        "{}",
        stdout(out)
    );
    assert!(!stdout(out).contains("intact"), "{}", stdout(out));
    assert_eq!(first_bad_index(out), Some(index), "{}", stdout(out));
}

/// An event as its canonical bytes (unpacked: an edit rewrites it as JSON, a stored form Ward
/// reads as is) and its chain value.
pub(crate) struct Row {
    pub(crate) event: Vec<u8>,
    pub(crate) chain: Vec<u8>,
}

pub(crate) fn row(pool: &Db, idx: i64) -> Row {
    let (event, chain): (Vec<u8>, Vec<u8>) = {
        let r = pool.row(
            "SELECT event, chain FROM audit_events WHERE idx = ?1",
            [idx],
        );
        (r.get(0), r.get(1))
    };
    Row {
        event: ward_store::audit_codec::unpack(&event).into_owned(),
        chain,
    }
}

/// Checks `ward audit verify` exited with `code` and its report says `says`: each case is
/// told apart by that one line.
#[track_caller]
pub(crate) fn assert_verdict(out: &Output, code: i32, says: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", stdout(out));
    assert!(stdout(out).contains(says), "{}", stdout(out));
}

/// Turns event `target` from allowed to denied (its filter column too), recomputes every
/// chain value and drops the stored tree nodes (the next open stores them again, from the
/// rewritten events), as a thorough attacker with the database would: the chain and node
/// checks then pass and only a signed root can tell.
pub(crate) fn rewrite_history(pool: &Db, target: i64) {
    let rows: Vec<(i64, Vec<u8>)> = pool
        .rows("SELECT idx, event FROM audit_events ORDER BY idx", [])
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut prev = ward_audit::CHAIN_GENESIS;
    for (idx, event) in rows {
        let event = ward_store::audit_codec::unpack(&event).into_owned();
        let event = if idx == target {
            String::from_utf8(event)
                .unwrap()
                .replacen("\"allowed\"", "\"denied\"", 1)
                .into_bytes()
        } else {
            event
        };
        prev = ward_audit::chain_hash(&prev, &ward_audit::leaf_hash(&event));
        set_row(pool, idx, &event, &prev);
    }
    pool.execute(
        "UPDATE audit_events SET outcome = 'denied' WHERE idx = ?1",
        rusqlite::params![target],
    );
    pool.execute("DELETE FROM audit_tree", []);
}

pub(crate) fn set_row(pool: &Db, idx: i64, event: &[u8], chain: &[u8]) {
    let done = pool.execute(
        "UPDATE audit_events SET event = ?1, chain = ?2 WHERE idx = ?3",
        rusqlite::params![event, chain, idx],
    );
    assert_eq!(done, 1);
}

/// Moves every row at or after `from` one index up (two steps, so the primary key never
/// collides midway).
pub(crate) fn shift_up(pool: &Db, from: i64) {
    pool.execute(
        "UPDATE audit_events SET idx = -idx - 1 WHERE idx >= ?1",
        rusqlite::params![from],
    );
    pool.execute("UPDATE audit_events SET idx = -idx WHERE idx < 0", []);
}

pub(crate) fn insert_row(pool: &Db, idx: i64, event: &[u8], chain: &[u8]) {
    pool.execute(
        "INSERT INTO audit_events (idx, at, tenant, subject, actor, action, outcome, event, chain) \
         VALUES (?1, 0, NULL, NULL, 'key:forged', 'record_read', 'allowed', ?2, ?3)",
        rusqlite::params![idx, event, chain],
    );
}

pub(crate) const FORGED_EVENT: &[u8] = br#"{"at":"2026-01-15T09:00:00Z","request_id":"forged","actor":{"id":"key:forged","role":"owner"},"action":"record_read","outcome":"allowed"}"#;

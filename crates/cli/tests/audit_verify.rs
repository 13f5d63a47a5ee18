//! `ward audit verify` on a real data directory: clean logs pass, and every kind of tampering
//! done directly in SQLite (edit, delete, insert, reorder, truncate, rewritten chain, forged
//! checkpoint) fails with exit code 1 naming the first bad index. Also `--checkpoint`,
//! `ward policy check` and usage errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use ward_testkit::sql::Db;
use ward_testkit::{TenantFixture, TestServer};

/// A data directory written by a real server, kept as the pristine source of every case.
struct Master {
    dir: TempDir,
    /// Events in the log.
    total: u64,
    /// Size of the first signed checkpoint.
    size1: u64,
    /// Size of the last signed checkpoint.
    size2: u64,
    /// `GET /v1/audit/checkpoint` right after the first checkpoint (what an auditor exports).
    early_checkpoint: Value,
    /// The deployment's checkpoint key, base64, from `GET /v1/audit/public-key`.
    public_key: String,
    /// `GET /v1/audit/checkpoint` at the end (size `size2`).
    last_checkpoint: Value,
}

async fn rounds(srv: &TestServer, t: &TenantFixture, from: usize, n: usize) {
    for i in from..from + n {
        let s = srv.subject(t).await;
        let r = srv.record(t, &s, "contact", json!({ "name": format!("Verify Person {i}"), "email": format!("v{i}@example.org") })).await;
        let (st, b) = srv
            .get(
                &format!(
                    "/v1/tenants/{}/subjects/{s}/records/{r}?purpose=essential.service",
                    t.id
                ),
                &t.owner,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
    }
}

async fn checkpoint(srv: &TestServer, token: &str) -> Value {
    let (st, cp) = srv.post("/v1/audit/checkpoint", token, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{cp}");
    cp
}

async fn head_size(srv: &TestServer) -> u64 {
    let pool = Db::open(&srv.db_path());
    let n: i64 = pool.scalar("SELECT COUNT(*) FROM audit_events", []);
    drop(pool);
    u64::try_from(n).unwrap()
}

async fn master() -> Master {
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

fn copy_data(from: &Path, to: &Path) {
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
fn fresh(m: &Master) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_data(m.dir.path(), dir.path());
    dir
}

fn db(dir: &Path) -> Db {
    Db::open(&dir.join("ward.db"))
}

fn ward(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(args)
        .env_remove("WARD_DATA_DIR")
        .env_remove("WARD_POLICY")
        .env_remove("WARD_KEY_PROVIDER")
        .env_remove("WARD_KEY_COMMAND")
        .env_remove("WARD_CONFIG")
        .output()
        .expect("run ward");
    eprintln!(
        "ward {args:?} -> {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn verify(dir: &Path, extra: &[&str]) -> Output {
    let d = dir.display().to_string();
    let mut args = vec!["audit", "verify", "--data-dir", d.as_str(), "--quiet"];
    args.extend_from_slice(extra);
    ward(&args)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn first_bad_index(out: &Output) -> Option<u64> {
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
fn assert_fails_at(out: &Output, index: u64) {
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

struct Row {
    event: Vec<u8>,
    chain: Vec<u8>,
}

fn row(pool: &Db, idx: i64) -> Row {
    let (event, chain): (Vec<u8>, Vec<u8>) = {
        let r = pool.row(
            "SELECT event, chain FROM audit_events WHERE idx = ?1",
            [idx],
        );
        (r.get(0), r.get(1))
    };
    Row { event, chain }
}

fn set_row(pool: &Db, idx: i64, event: &[u8], chain: &[u8]) {
    let done = pool.execute(
        "UPDATE audit_events SET event = ?1, chain = ?2 WHERE idx = ?3",
        rusqlite::params![event, chain, idx],
    );
    assert_eq!(done, 1);
}

/// Moves every row at or after `from` one index up (two steps, so the primary key never
/// collides midway).
fn shift_up(pool: &Db, from: i64) {
    pool.execute(
        "UPDATE audit_events SET idx = -idx - 1 WHERE idx >= ?1",
        rusqlite::params![from],
    );
    pool.execute("UPDATE audit_events SET idx = -idx WHERE idx < 0", []);
}

fn insert_row(pool: &Db, idx: i64, event: &[u8], chain: &[u8]) {
    pool.execute(
        "INSERT INTO audit_events (idx, at, tenant, subject, actor, action, outcome, event, chain) \
         VALUES (?1, 0, NULL, NULL, 'key:forged', 'record_read', 'allowed', ?2, ?3)",
        rusqlite::params![idx, event, chain],
    );
}

const FORGED_EVENT: &[u8] = br#"{"at":"2026-01-15T09:00:00Z","request_id":"forged","actor":{"id":"key:forged","role":"owner"},"action":"record_read","outcome":"allowed"}"#;

#[tokio::test]
async fn clean_log_verifies() {
    let m = master().await;
    let dir = fresh(&m);
    let out = verify(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let expected = format!(
        "audit log intact: {} events (from index 0), 2 signed checkpoints verified",
        m.total
    );
    assert!(stdout(&out).contains(&expected), "{}", stdout(&out));
    assert_eq!(first_bad_index(&out), None);
    // Verifying is read-only: a second run gives the same answer.
    let again = verify(dir.path(), &[]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(stdout(&again), stdout(&out));
}

#[tokio::test]
async fn edited_event_is_named() {
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    let r = row(&pool, 7);
    let text = String::from_utf8(r.event.clone()).unwrap();
    assert!(text.contains("\"allowed\""), "{text}");
    let edited = text.replacen("\"allowed\"", "\"denied\"", 1);
    set_row(&pool, 7, edited.as_bytes(), &r.chain);
    drop(pool);
    assert_fails_at(&verify(dir.path(), &[]), 7);
}

#[tokio::test]
async fn one_changed_byte_is_named() {
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    let idx = i64::try_from(m.size1 + 2).unwrap();
    let mut r = row(&pool, idx);
    let last = r.event.len() - 2;
    r.event[last] ^= 0x20;
    set_row(&pool, idx, &r.event, &r.chain);
    drop(pool);
    assert_fails_at(&verify(dir.path(), &[]), m.size1 + 2);
}

#[tokio::test]
async fn deleted_event_is_named() {
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    let done = pool.execute("DELETE FROM audit_events WHERE idx = 7", []);
    assert_eq!(done, 1);
    drop(pool);
    assert_fails_at(&verify(dir.path(), &[]), 7);
}

#[tokio::test]
async fn deleted_first_event_is_named() {
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    pool.execute("DELETE FROM audit_events WHERE idx = 0", []);
    drop(pool);
    assert_fails_at(&verify(dir.path(), &[]), 0);
}

#[tokio::test]
async fn inserted_forged_event_is_named() {
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    shift_up(&pool, 7);
    insert_row(&pool, 7, FORGED_EVENT, &[0x5a; 32]);
    drop(pool);
    assert_fails_at(&verify(dir.path(), &[]), 7);
}

#[tokio::test]
async fn duplicated_event_is_named_where_the_log_first_differs() {
    // Row 7's event and chain copied in as a new row 7 and the rest renumbered. The copy's
    // filter columns (time, tenant, actor, ...) are not the event's, and the verifier checks
    // them too, so the forged row itself is named.
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    let r = row(&pool, 7);
    shift_up(&pool, 7);
    insert_row(&pool, 7, &r.event, &r.chain);
    drop(pool);
    assert_fails_at(&verify(dir.path(), &[]), 7);
}

#[tokio::test]
async fn event_appended_after_the_last_checkpoint_is_named() {
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    insert_row(
        &pool,
        i64::try_from(m.total).unwrap(),
        FORGED_EVENT,
        &[0x11; 32],
    );
    drop(pool);
    assert_fails_at(&verify(dir.path(), &[]), m.total);
}

#[tokio::test]
async fn reordered_events_are_named() {
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    let (r5, r6) = (row(&pool, 5), row(&pool, 6));
    set_row(&pool, 5, &r6.event, &r6.chain);
    set_row(&pool, 6, &r5.event, &r5.chain);
    drop(pool);
    assert_fails_at(&verify(dir.path(), &[]), 5);
}

#[tokio::test]
async fn reordered_event_contents_are_named() {
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    let (r5, r6) = (row(&pool, 5), row(&pool, 6));
    set_row(&pool, 5, &r6.event, &r5.chain);
    set_row(&pool, 6, &r5.event, &r6.chain);
    drop(pool);
    assert_fails_at(&verify(dir.path(), &[]), 5);
}

#[tokio::test]
async fn truncation_below_the_last_checkpoint_is_reported() {
    let m = master().await;
    for k in [m.size1 + 3, 10] {
        let dir = fresh(&m);
        let pool = db(dir.path());
        let done = pool.execute(
            "DELETE FROM audit_events WHERE idx >= ?1",
            rusqlite::params![i64::try_from(k).unwrap()],
        );
        assert_eq!(done as u64, m.total - k);
        drop(pool);
        let out = verify(dir.path(), &[]);
        assert_fails_at(&out, k);
        let expected_cp = if k > m.size1 { m.size2 } else { m.size1 };
        let text = stdout(&out);
        assert!(
            text.contains(&format!(
                "ends after {k} events but a signed checkpoint covers {expected_cp}"
            )),
            "truncation not reported as such: {text}"
        );
    }
}

#[tokio::test]
async fn edit_with_rewritten_chain_is_caught_by_the_signed_checkpoint() {
    // The chain is unkeyed: recomputing every chain value after an edit hides the edit from
    // the chain check, but not from the signed Merkle root.
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    let rows: Vec<(i64, Vec<u8>)> = pool
        .rows("SELECT idx, event FROM audit_events ORDER BY idx", [])
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut prev = ward_audit::CHAIN_GENESIS;
    for (idx, event) in rows {
        let event = if idx == 7 {
            String::from_utf8(event)
                .unwrap()
                .replacen("\"allowed\"", "\"denied\"", 1)
                .into_bytes()
        } else {
            event
        };
        prev = ward_audit::chain_hash(&prev, &ward_audit::leaf_hash(&event));
        set_row(&pool, idx, &event, &prev);
    }
    // A thorough attacker also updates the filter column copied from the event.
    pool.execute(
        "UPDATE audit_events SET outcome = 'denied' WHERE idx = 7",
        [],
    );
    drop(pool);
    let out = verify(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!(
            "does not match its signed checkpoint at tree size {}",
            m.size1
        )),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        first_bad_index(&out),
        None,
        "a rewritten chain cannot pin the index"
    );
}

#[tokio::test]
async fn forged_checkpoint_row_is_refused() {
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    let size = i64::try_from(m.size1).unwrap();
    let text: String = pool.scalar(
        "SELECT checkpoint FROM audit_checkpoints WHERE tree_size = ?1",
        rusqlite::params![size],
    );
    let mut cp: Value = serde_json::from_str(&text).unwrap();
    cp["timestamp"] = json!(cp["timestamp"].as_i64().unwrap() + 3600);
    pool.execute(
        "UPDATE audit_checkpoints SET checkpoint = ?1 WHERE tree_size = ?2",
        rusqlite::params![cp.to_string(), size],
    );
    drop(pool);
    let out = verify(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!(
            "checkpoint for tree size {} has an invalid signature",
            m.size1
        )),
        "{}",
        stdout(&out)
    );
}

fn write_checkpoint(dir: &Path, cp: &Value) -> PathBuf {
    let path = dir.join("exported-checkpoint.json");
    std::fs::write(&path, serde_json::to_string_pretty(cp).unwrap()).unwrap();
    path
}

#[tokio::test]
async fn exported_checkpoint_is_consistent_with_the_grown_log() {
    let m = master().await;
    let dir = fresh(&m);
    let keep = tempfile::tempdir().unwrap();
    let path = write_checkpoint(keep.path(), &m.early_checkpoint);
    let out = verify(dir.path(), &["--checkpoint", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("intact"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!(
            "exported checkpoint at size {} is consistent with the current log",
            m.size1
        )),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn exported_checkpoint_with_altered_root_is_refused() {
    let m = master().await;
    let dir = fresh(&m);
    let keep = tempfile::tempdir().unwrap();
    let mut cp = m.early_checkpoint.clone();
    let root = cp["root"].as_str().unwrap().to_owned();
    // Change one base64 character of the root (still 32 bytes once decoded).
    let first = if root.starts_with('A') { "B" } else { "A" };
    cp["root"] = json!(format!("{first}{}", &root[1..]));
    let path = write_checkpoint(keep.path(), &cp);
    let out = verify(dir.path(), &["--checkpoint", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!(
            "exported checkpoint at size {} is NOT consistent",
            m.size1
        )),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn exported_checkpoint_catches_history_rewritten_with_checkpoints_dropped() {
    // An attacker with the database edits an old event, recomputes every chain value and
    // deletes the stored checkpoints. The checkpoint a tenant exported earlier still proves
    // the history changed.
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    let rows: Vec<(i64, Vec<u8>)> = pool
        .rows("SELECT idx, event FROM audit_events ORDER BY idx", [])
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut prev = ward_audit::CHAIN_GENESIS;
    for (idx, event) in rows {
        let event = if idx == 3 {
            String::from_utf8(event)
                .unwrap()
                .replacen("\"allowed\"", "\"denied\"", 1)
                .into_bytes()
        } else {
            event
        };
        prev = ward_audit::chain_hash(&prev, &ward_audit::leaf_hash(&event));
        set_row(&pool, idx, &event, &prev);
    }
    pool.execute(
        "UPDATE audit_events SET outcome = 'denied' WHERE idx = 3",
        [],
    );
    pool.execute("DELETE FROM audit_checkpoints", []);
    drop(pool);
    let keep = tempfile::tempdir().unwrap();
    let path = write_checkpoint(keep.path(), &m.early_checkpoint);
    let out = verify(dir.path(), &["--checkpoint", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!(
            "exported checkpoint at size {} is NOT consistent",
            m.size1
        )),
        "{}",
        stdout(&out)
    );
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

#[test]
fn policy_check_accepts_the_example() {
    let path = repo_root().join("examples/saas-policy.toml");
    let out = ward(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains(": ok ("), "{}", stdout(&out));
}

/// `FILE:LINE:COLUMN:` at the start of some stderr line, with the expected line.
fn assert_diagnostic_at(out: &Output, file: &Path, line: usize) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = format!("{}:{line}:", file.display());
    let ok = stderr.lines().any(|l| {
        l.strip_prefix(&prefix).is_some_and(|rest| {
            let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
            !col.is_empty() && rest[col.len()..].starts_with(':')
        })
    });
    assert!(ok, "no {prefix}COLUMN: diagnostic in stderr:\n{stderr}");
}

#[test]
fn policy_check_names_file_line_and_column_of_errors() {
    let example = std::fs::read_to_string(repo_root().join("examples/saas-policy.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();

    // A semantic error: an unknown field type.
    let broken = example.replacen("type = \"email\"", "type = \"emial\"", 1);
    assert_ne!(broken, example);
    let line = broken
        .lines()
        .position(|l| l.contains("\"emial\""))
        .unwrap()
        + 1;
    let file = dir.path().join("broken-type.toml");
    std::fs::write(&file, &broken).unwrap();
    let out = ward(&["policy", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_diagnostic_at(&out, &file, line);

    // A syntax error.
    let broken = example.replacen("[organization]", "[organization", 1);
    let line = broken.lines().position(|l| l == "[organization").unwrap() + 1;
    let file = dir.path().join("broken-syntax.toml");
    std::fs::write(&file, &broken).unwrap();
    let out = ward(&["policy", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_diagnostic_at(&out, &file, line);
}

#[test]
fn policy_check_refuses_bad_monitoring_rules_naming_the_field() {
    let example = std::fs::read_to_string(repo_root().join("examples/saas-policy.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (i, (table, needle)) in [
        (
            "[monitoring.rules.bulk_reads]\nthreshold = 5\n",
            "unknown rule `bulk_reads`",
        ),
        (
            "[monitoring.rules.bulk_read]\nthreshold = 0\n",
            "`threshold` in [monitoring.rules.bulk_read]",
        ),
        (
            "[monitoring.rules.bulk_read]\nseverity = \"loud\"\n",
            "`severity` in [monitoring.rules.bulk_read]",
        ),
        (
            "[monitoring.rules.repeated_denials]\nwindow = \"3d\"\n",
            "`window` in [monitoring.rules.repeated_denials]",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let file = dir.path().join(format!("monitoring-{i}.toml"));
        std::fs::write(&file, format!("{example}\n{table}")).unwrap();
        let out = ward(&["policy", "check", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{table}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{table}: {stderr}");
        let line = example.lines().count() + 2;
        assert_diagnostic_at(&out, &file, if i == 0 { line } else { line + 1 });
    }
    let file = dir.path().join("monitoring-ok.toml");
    std::fs::write(
        &file,
        format!("{example}\n[monitoring.rules.bulk_read]\nthreshold = 50\nwindow = \"1h\"\n"),
    )
    .unwrap();
    assert_eq!(
        ward(&["policy", "check", file.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(ward(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        ward(&["audit", "verify", "--no-such-flag"]).status.code(),
        Some(2)
    );
    assert_eq!(ward(&["policy", "check"]).status.code(), Some(2));
    assert_eq!(ward(&[]).status.code(), Some(2));
}

#[tokio::test]
async fn log_pruned_at_a_checkpoint_still_verifies() {
    // Audit retention prunes old events; what remains must stay verifiable from the
    // checkpoint at the prune boundary.
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    pool.execute(
        "DELETE FROM audit_events WHERE idx < ?1",
        rusqlite::params![i64::try_from(m.size1).unwrap()],
    );
    drop(pool);
    let out = verify(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let expected = format!(
        "audit log intact: {} events (from index {}), 2 signed checkpoints verified",
        m.total, m.size1
    );
    assert!(stdout(&out).contains(&expected), "{}", stdout(&out));
}

#[tokio::test]
async fn log_pruned_off_a_checkpoint_boundary_is_named() {
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    pool.execute("DELETE FROM audit_events WHERE idx < 5", []);
    drop(pool);
    assert_fails_at(&verify(dir.path(), &[]), 0);
}

#[tokio::test]
async fn pruned_log_with_an_edit_after_the_boundary_is_named() {
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    pool.execute(
        "DELETE FROM audit_events WHERE idx < ?1",
        rusqlite::params![i64::try_from(m.size1).unwrap()],
    );
    let idx = i64::try_from(m.size1 + 1).unwrap();
    let r = row(&pool, idx);
    let edited = String::from_utf8(r.event)
        .unwrap()
        .replacen("\"allowed\"", "\"denied\"", 1);
    set_row(&pool, idx, edited.as_bytes(), &r.chain);
    drop(pool);
    assert_fails_at(&verify(dir.path(), &[]), m.size1 + 1);
}

#[tokio::test]
async fn pruned_log_with_a_forged_frontier_is_refused() {
    // The frontier stored beside the prune checkpoint is only trusted once its root matches
    // the signed one.
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    let size = i64::try_from(m.size1).unwrap();
    pool.execute(
        "DELETE FROM audit_events WHERE idx < ?1",
        rusqlite::params![size],
    );
    let mut frontier: Vec<u8> = pool.scalar(
        "SELECT frontier FROM audit_checkpoints WHERE tree_size = ?1",
        rusqlite::params![size],
    );
    let last = frontier.len() - 1;
    frontier[last] ^= 0x01;
    pool.execute(
        "UPDATE audit_checkpoints SET frontier = ?1 WHERE tree_size = ?2",
        rusqlite::params![&frontier, size],
    );
    drop(pool);
    let out = verify(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!(
            "does not match its signed checkpoint at tree size {}",
            m.size1
        )),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn public_key_flag_decides_which_signatures_are_trusted() {
    let m = master().await;
    let dir = fresh(&m);
    let out = verify(dir.path(), &["--public-key", &m.public_key]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("2 signed checkpoints verified"),
        "{}",
        stdout(&out)
    );
    let foreign = ward_audit::SigningKey::generate()
        .unwrap()
        .public_key()
        .to_base64();
    let out = verify(dir.path(), &["--public-key", &foreign]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!(
            "checkpoint for tree size {} has an invalid signature",
            m.size1
        )),
        "{}",
        stdout(&out)
    );
    // Not a key at all: a usage problem of the operator, not a verdict on the log.
    let out = verify(dir.path(), &["--public-key", "not-base64!"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(!stdout(&out).contains("intact"));
}

#[tokio::test]
async fn exported_checkpoint_at_the_current_head_is_consistent() {
    // Drop the unsigned tail so the log ends exactly at the last checkpoint.
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    pool.execute(
        "DELETE FROM audit_events WHERE idx >= ?1",
        rusqlite::params![i64::try_from(m.size2).unwrap()],
    );
    drop(pool);
    let keep = tempfile::tempdir().unwrap();
    let path = write_checkpoint(keep.path(), &m.last_checkpoint);
    let out = verify(dir.path(), &["--checkpoint", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!(
            "exported checkpoint at size {} is consistent with the current log",
            m.size2
        )),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn exported_checkpoint_catches_truncation_with_checkpoints_dropped() {
    // Deleting the newest events together with every stored checkpoint leaves nothing in the
    // directory to notice; the checkpoint exported earlier does.
    let m = master().await;
    let dir = fresh(&m);
    let pool = db(dir.path());
    pool.execute("DELETE FROM audit_events WHERE idx >= 12", []);
    pool.execute("DELETE FROM audit_checkpoints", []);
    drop(pool);
    let keep = tempfile::tempdir().unwrap();
    let path = write_checkpoint(keep.path(), &m.early_checkpoint);
    let out = verify(dir.path(), &["--checkpoint", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "exported checkpoint at size {} is NOT consistent",
            m.size1
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "the log has 12 events, fewer than the checkpoint's {}",
            m.size1
        )),
        "{text}"
    );
}

#[test]
fn verifying_a_missing_data_directory_is_an_error_not_an_intact_log() {
    // A mistyped --data-dir must not be reported as "audit log intact" (exit 0), and checking
    // must not create a data directory, keys and an empty database as a side effect.
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("no-such-ward-data");
    let out = verify(&missing, &[]);
    let created: Vec<String> = std::fs::read_dir(&missing)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !stdout(&out).contains("intact"),
        "a missing directory verified as intact: {}",
        stdout(&out)
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "expected the operational-error exit code"
    );
    assert!(
        !missing.exists(),
        "audit verify created {} with {created:?}",
        missing.display()
    );
}

#[tokio::test]
async fn edited_index_columns_are_named() {
    // The tenant view selects and filters events by the denormalized columns (tenant, subject,
    // actor, action, outcome, at), not by the hashed event bytes. Editing a column hides an
    // event from its tenant (or moves it into another tenant's view, or out of an
    // outcome=denied filter) without touching the Merkle leaf, so the verifier must compare
    // the columns with the event they index.
    let m = master().await;
    for (sql, idx) in [
        ("UPDATE audit_events SET tenant = NULL WHERE idx = ?1", 7i64),
        (
            "UPDATE audit_events SET outcome = 'denied' WHERE idx = ?1",
            8,
        ),
        (
            "UPDATE audit_events SET action = 'tenant_read' WHERE idx = ?1",
            9,
        ),
        ("UPDATE audit_events SET subject = NULL WHERE idx = ?1", 10),
    ] {
        let dir = fresh(&m);
        let pool = db(dir.path());
        let done = pool.execute(sql, rusqlite::params![idx]);
        assert_eq!(done, 1);
        drop(pool);
        let out = verify(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(1), "{sql}: {}", stdout(&out));
        assert_eq!(
            first_bad_index(&out),
            Some(u64::try_from(idx).unwrap()),
            "{sql}: {}",
            stdout(&out)
        );
    }
}

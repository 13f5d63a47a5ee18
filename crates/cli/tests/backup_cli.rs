//! `ward backup` end to end on real data directories: back up a live SQLite server into two
//! locations, list, verify (and a full restore drill), tamper with one location, repair,
//! restore into a new directory and into an empty PostgreSQL database, and read every
//! record back with the same value.

#[path = "backup_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use support::{assert_same_records, populate, private, serve, stdout, ward};
use ward_testkit::TestServer;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_verify_tamper_repair_and_restore_a_sqlite_vault() {
    let srv = TestServer::start().await;
    let (tenants, written) = populate(&srv).await;
    private(srv.dir.path());
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let data = s(srv.dir.path()).to_owned();
    let locs = ["--location", s(a.path()), "--location", s(b.path())];
    let with = |cmd: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|x| (*x).to_owned()).collect();
        v.extend(["--data-dir".into(), data.clone(), "--quiet".into()]);
        v.extend(locs.iter().map(|x| (*x).to_owned()));
        v
    };
    let run = |cmd: &[&str]| {
        let args = with(cmd);
        ward(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
    };

    // The server keeps running while the backup reads its store.
    let out = run(&["backup", "run"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("(data)") && text.contains("(keys)"), "{text}");
    assert_eq!(
        text.matches(": ok, written").count(),
        4,
        "two snapshots × two locations"
    );

    let out = run(&["backup", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["stream"], "data");
    assert_eq!(list[1]["stream"], "keys");
    for item in list {
        assert!(item["id"].is_string() && item["time"].is_string());
        assert_eq!(item["locations"].as_array().unwrap().len(), 2);
    }
    let data_id = list[0]["id"].as_str().unwrap().to_owned();
    assert!(list[1]["tables"].as_object().is_some_and(|t| !t.is_empty()));

    let out = run(&["backup", "verify", "latest", "--full"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("0 problem(s)") && text.contains("0 row-count mismatch"),
        "{text}"
    );
    assert!(text.contains("12 record(s) decrypted, 0 failed"), "{text}");
    assert!(text.contains("audit log intact"), "{text}");

    // One flipped byte in one object of the second location.
    let victim = files(&b.path().join("objects"))[0].clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[10] ^= 0x01;
    std::fs::write(&victim, &bytes).unwrap();
    let object = victim
        .strip_prefix(b.path())
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let keys_snapshot = list[1]["id"].as_str().unwrap();
    let bad = [data_id.as_str(), keys_snapshot]
        .into_iter()
        .map(|id| run(&["backup", "verify", id]))
        .find(|o| o.status.code() == Some(1))
        .expect("one snapshot names the bad object");
    let text = stdout(&bad);
    assert!(
        text.contains(&format!("BAD Corrupt: {object} in {}", s(b.path()))),
        "{text}"
    );
    let out = run(&["backup", "repair"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("1 copies repaired, 0 objects lost"));
    for id in [data_id.as_str(), keys_snapshot] {
        assert_eq!(run(&["backup", "verify", id]).status.code(), Some(0));
    }

    // A second backup of unchanged keys writes nothing new for them. (The data stream did
    // change: every run and verification above appended its audit event, and this store's
    // whole dump is smaller than one chunk; deduplication of large stores is measured in
    // crates/backup/tests/repository.rs and BENCHMARKS.md.)
    let out = run(&["backup", "run", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let read = report["keys"]["bytes_read"].as_u64().unwrap();
    let new = report["keys"]["bytes_new"].as_u64().unwrap();
    assert!(
        read > 0 && new == 0,
        "unchanged keys deduplicated: {new} of {read} new"
    );

    // Restore into a new directory: ready to serve, with the same records.
    let target = tempfile::tempdir().unwrap();
    let restored = target.path().join("restored");
    let out = ward(
        &[
            "backup",
            "restore",
            &data_id,
            "--to",
            s(&restored),
            "--data-dir",
            &data,
            "--quiet",
            "--location",
            s(a.path()),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    for f in ["ward.db", "ward.keys.db", "root.key", "audit-signing.key"] {
        assert!(restored.join(f).is_file(), "{f}");
    }
    assert_eq!(
        std::fs::read(restored.join("audit-signing.key")).unwrap(),
        std::fs::read(srv.dir.path().join("audit-signing.key")).unwrap()
    );
    let out = ward(
        &["audit", "verify", "--data-dir", s(&restored), "--quiet"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    let store = Arc::new(
        ward_store::SqliteStore::open(&restored.join("ward.db"))
            .await
            .unwrap(),
    );
    let url = serve(&srv, store).await;
    assert_same_records(&url, &tenants, &written).await;

    // A non-empty target is refused, and so is a wrong root key, before anything is written.
    let out = ward(
        &[
            "backup",
            "restore",
            "latest",
            "--to",
            s(&restored),
            "--data-dir",
            &data,
            "--location",
            s(a.path()),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));
    let elsewhere = target.path().join("elsewhere");
    let before = files(a.path());
    let wrong = ward_crypto::RootKeyring::generate().unwrap();
    let out = ward(
        &[
            "backup",
            "restore",
            "latest",
            "--to",
            s(&elsewhere),
            "--key-provider",
            "env",
            "--location",
            s(a.path()),
        ],
        &[("WARD_ROOT_KEY", wrong.to_text().as_str())],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("root key does not open"));
    assert!(!elsewhere.exists());
    let out = ward(
        &[
            "backup",
            "run",
            "--data-dir",
            &data,
            "--key-provider",
            "env",
            "--location",
            s(a.path()),
        ],
        &[("WARD_ROOT_KEY", wrong.to_text().as_str())],
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        files(a.path()),
        before,
        "nothing written under a wrong root key"
    );

    // An unreachable second location fails alone: exit 4, the first holds the snapshot.
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let unreachable = blocker.path().join("x");
    let out = ward(
        &[
            "backup",
            "run",
            "--data-dir",
            &data,
            "--quiet",
            "--location",
            s(a.path()),
            "--location",
            s(&unreachable),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(stdout(&out).contains(&format!("{}: FAILED", s(&unreachable))));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sqlite_backup_restores_into_an_empty_postgres_database() {
    let srv = TestServer::start().await;
    let (tenants, written) = populate(&srv).await;
    private(srv.dir.path());
    let loc = tempfile::tempdir().unwrap();
    let data = s(srv.dir.path()).to_owned();
    let out = ward(
        &[
            "backup",
            "run",
            "--data-dir",
            &data,
            "--quiet",
            "--location",
            s(loc.path()),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    let url = support::fresh_database().await;
    let keys = tempfile::tempdir().unwrap();
    let key_dir = keys.path().join("deployment");
    let out = ward(
        &[
            "backup",
            "restore",
            "latest",
            "--to",
            &url,
            "--to-data-dir",
            s(&key_dir),
            "--data-dir",
            &data,
            "--quiet",
            "--location",
            s(loc.path()),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(key_dir.join("audit-signing.key").is_file() && key_dir.join("root.key").is_file());
    let pg = Arc::new(ward_store::PostgresStore::open(&url).await.unwrap());
    let base = serve(&srv, pg).await;
    assert_same_records(&base, &tenants, &written).await;
    let out = ward(
        &[
            "audit",
            "verify",
            "--data-dir",
            s(&key_dir),
            "--database-url",
            &url,
            "--quiet",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    // The database is no longer empty: a second restore into it is refused.
    let again = keys.path().join("again");
    let out = ward(
        &[
            "backup",
            "restore",
            "latest",
            "--to",
            &url,
            "--to-data-dir",
            s(&again),
            "--data-dir",
            &data,
            "--quiet",
            "--location",
            s(loc.path()),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(3));
}

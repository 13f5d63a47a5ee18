//! The data directory is private: `ward` refuses one that group or others can reach (exit 3,
//! naming the path, the mode and the fix), makes the one it creates itself mode 700, and every
//! file it writes there (databases with their WAL and shared memory, keys, the example policy)
//! or exports with `--out` is mode 600.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use ward_testkit::TestServer;

fn ward(args: &[&str]) -> Output {
    ward_testkit::cli::run_without(
        env!("CARGO_BIN_EXE_ward"),
        args,
        &[
            "WARD_DATA_DIR",
            "WARD_KEY_PROVIDER",
            "WARD_CONFIG",
            "WARD_TOKEN",
        ],
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file directly in `dir`, with its mode.
fn file_modes(dir: &Path) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                mode(&e.path()),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn init_creates_a_private_directory_of_private_files() {
    let parent = tempfile::tempdir().unwrap();
    // A parent anyone may read, as /srv or /var/lib often are: Ward's own directory must not
    // inherit that.
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = parent.path().join("ward-data");
    let d = dir.to_str().unwrap();
    let out = ward(&["init", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(mode(&dir), 0o700, "data directory mode");
    let files = file_modes(&dir);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "ward.db",
        "ward.keys.db",
        "root.key",
        "audit-signing.key",
        "policy.toml",
    ] {
        assert!(names.contains(&expected), "{expected} missing in {names:?}");
    }
    for (name, m) in &files {
        assert_eq!(*m, 0o600, "{name} has mode {m:o}");
    }
    // A second start opens the same directory and creates the WAL files; still private.
    let out = ward(&["init", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(0));
    for (name, m) in file_modes(&dir) {
        assert_eq!(m, 0o600, "{name} has mode {m:o} after a second start");
    }
}

#[test]
fn a_directory_others_can_reach_is_refused_with_the_fix() {
    for bad in [0o755, 0o750, 0o701, 0o707, 0o770] {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let d = dir.to_str().unwrap();
        assert_eq!(ward(&["init", "--data-dir", d]).status.code(), Some(0));
        let before = file_modes(&dir);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(bad)).unwrap();
        for args in [
            vec!["init", "--data-dir", d],
            vec!["keys", "status", "--data-dir", d],
            vec!["audit", "verify", "--data-dir", d],
        ] {
            let out = ward(&args);
            assert_eq!(out.status.code(), Some(3), "{args:?} with mode {bad:o}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(d), "names the path: {err}");
            assert!(
                err.contains(&format!("mode {bad:o}")),
                "names the mode: {err}"
            );
            assert!(
                err.contains(&format!("chmod 700 {d}")),
                "names the fix: {err}"
            );
        }
        // Refused means untouched: the mode stays what the operator set, nothing is created.
        assert_eq!(mode(&dir), bad);
        assert_eq!(file_modes(&dir), before);
    }
}

#[tokio::test]
async fn an_export_file_is_private_and_old_readable_databases_are_tightened() {
    let srv = TestServer::start().await;
    let (t, s) = srv.tenant_and_subject("Acme").await;
    srv.contact(&t, &s, "Ada", "ada@example.com").await;
    let copy = tempfile::tempdir().unwrap();
    std::fs::set_permissions(copy.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(srv.dir.path()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_file() && !name.ends_with("-shm") {
            let to = copy.path().join(&name);
            std::fs::copy(entry.path(), &to).unwrap();
            if name.starts_with("ward.") {
                // As an older Ward (no umask) left its databases.
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
    }
    drop(srv);
    let d = copy.path().to_str().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out_file = out_dir.path().join("export.jsonl");
    // An existing file readable by others is made private before any data goes in.
    std::fs::write(&out_file, "old").unwrap();
    std::fs::set_permissions(&out_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = ward(&[
        "tenant",
        "export",
        "--data-dir",
        d,
        "--tenant",
        &t.id.to_string(),
        "--token",
        &t.owner,
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(mode(&out_file), 0o600);
    assert!(
        std::fs::read_to_string(&out_file)
            .unwrap()
            .contains("ada@example.com")
    );
    for (name, m) in file_modes(copy.path()) {
        if name.starts_with("ward.") {
            assert_eq!(m, 0o600, "{name} has mode {m:o}");
        }
    }
}

//! Operating Ward: `ward doctor` on real data directories (healthy, a readable key file, a
//! missing migration, a database from a newer Ward, a tampered audit row, records retention
//! left behind), invalid config files refused by file, line and key before anything is
//! touched, shell completions, man pages and the version line.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use ward_testkit::TestServer;
use ward_testkit::sql::Db;

/// A data directory written by a real server, with its root key kept elsewhere (as a
/// production deployment keeps it) and the policy it ran with.
struct Deployment {
    data: TempDir,
    keys: TempDir,
    /// Audit events in the log, and the size of its last signed checkpoint.
    total: i64,
    checkpoint: i64,
}

impl Deployment {
    async fn new() -> Self {
        let srv = TestServer::start().await;
        let t = srv.tenant("Doctor Co").await;
        for i in 0..4 {
            let s = srv.subject(&t).await;
            srv.contact(
                &t,
                &s,
                &format!("Doctor Person {i}"),
                &format!("d{i}@example.org"),
            )
            .await;
        }
        let (st, cp) = srv
            .post("/v1/audit/checkpoint", &srv.operator, json!({}))
            .await;
        assert_eq!(st, 200, "{cp}");
        // A few events after the checkpoint: the tail the doctor verifies.
        let s = srv.subject(&t).await;
        srv.contact(&t, &s, "Tail Person", "tail@example.org").await;
        let data = tempfile::tempdir().unwrap();
        let keys = tempfile::tempdir().unwrap();
        private(data.path(), 0o700);
        private(keys.path(), 0o700);
        for entry in std::fs::read_dir(srv.dir.path()).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.path().is_file() || name.ends_with("-shm") {
                continue;
            }
            let to = if name == "root.key" {
                keys.path().join(&name)
            } else {
                data.path().join(&name)
            };
            std::fs::copy(entry.path(), to).unwrap();
        }
        std::fs::write(data.path().join("policy.toml"), ward_policy::EXAMPLE_POLICY).unwrap();
        private(&data.path().join("policy.toml"), 0o600);
        drop(srv);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let db = Db::open(&data.path().join("ward.db"));
        let total: i64 = db.scalar("SELECT COUNT(*) FROM audit_events", []);
        let checkpoint: i64 = db.scalar("SELECT MAX(tree_size) FROM audit_checkpoints", []);
        assert!(total > checkpoint && checkpoint > 0, "{total} {checkpoint}");
        Self {
            data,
            keys,
            total,
            checkpoint,
        }
    }

    fn key_file(&self) -> PathBuf {
        self.keys.path().join("root.key")
    }

    fn db(&self) -> Db {
        Db::open(&self.data.path().join("ward.db"))
    }

    /// `ward <args>` on this deployment: its data directory and its key file kept apart.
    fn run(&self, args: &[&str]) -> Output {
        let data = self.data.path().display().to_string();
        let key_file = self.key_file().display().to_string();
        let mut all = args.to_vec();
        all.extend(["--data-dir", &data, "--key-file", &key_file]);
        ward(&all)
    }

    /// `ward doctor --json` on this deployment: exit code and the report.
    fn doctor(&self) -> (Option<i32>, Value) {
        let out = self.run(&["doctor", "--json"]);
        let report = serde_json::from_slice(&out.stdout).expect("JSON report");
        (out.status.code(), report)
    }
}

fn private(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn ward(args: &[&str]) -> Output {
    ward_testkit::cli::run_without(
        env!("CARGO_BIN_EXE_ward"),
        args,
        &[
            "WARD_DATA_DIR",
            "WARD_POLICY",
            "WARD_KEY_PROVIDER",
            "WARD_KEY_FILE",
            "WARD_KEY_COMMAND",
            "WARD_CONFIG",
            "WARD_DATABASE_URL",
        ],
    )
}

/// The finding of `check`.
fn finding<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} finding: {report:#}"))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

#[tokio::test]
async fn doctor_finds_a_healthy_deployment_all_ok() {
    let d = Deployment::new().await;
    let (code, report) = d.doctor();
    assert_eq!(code, Some(0), "{report:#}");
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| text(&f["check"]))
        .collect();
    assert_eq!(
        checks,
        [
            "data_dir",
            "key_files",
            "policy",
            "database",
            "root_key",
            "audit_log",
            "retention",
            "backups",
            "tls_certificate",
            "clock",
            "disk_space"
        ]
    );
    for f in report["checks"].as_array().unwrap() {
        if f["check"] == "disk_space" && f["status"] == "warn" {
            // The machine's own disk, not the deployment: a warning there is the truth.
            continue;
        }
        assert_eq!(f["status"], "ok", "{f:#}");
        assert!(f.get("fix").is_none(), "{f:#}");
    }
    assert_ne!(report["status"], "fail");
    let audit = text(&finding(&report, "audit_log")["explanation"]);
    assert!(
        audit.contains(&format!("{} events", d.total))
            && audit.contains(&format!("size {}", d.checkpoint)),
        "{audit}"
    );
    // The human report says the same, one line per check and a summary.
    let out = d.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(0));
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(human.contains("11 checks: "), "{human}");
    assert!(human.contains(", 0 failure(s)"), "{human}");
    // The doctor changed nothing it looked at.
    assert!(!d.data.path().join("root.key").exists());
}

#[tokio::test]
async fn doctor_fails_a_key_file_others_can_read_and_says_chmod_600() {
    let d = Deployment::new().await;
    private(&d.key_file(), 0o644);
    let (code, report) = d.doctor();
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["status"], "fail");
    let keys = finding(&report, "key_files");
    assert_eq!(keys["status"], "fail");
    assert!(text(&keys["explanation"]).contains("mode 644"), "{keys:#}");
    assert!(
        text(&keys["fix"]).contains(&format!("chmod 600 {}", d.key_file().display())),
        "{keys:#}"
    );
    // The provider refuses the key as well, and says why.
    let root = finding(&report, "root_key");
    assert_eq!(root["status"], "fail");
    assert!(text(&root["explanation"]).contains("644"), "{root:#}");
    assert_eq!(finding(&report, "database")["status"], "ok");
}

#[tokio::test]
async fn doctor_warns_when_the_root_key_sits_next_to_the_data() {
    let d = Deployment::new().await;
    std::fs::copy(d.key_file(), d.data.path().join("root.key")).unwrap();
    let out = ward(&[
        "doctor",
        "--json",
        "--data-dir",
        &d.data.path().display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "a warning is not a failure");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = finding(&report, "root_key");
    assert_eq!(root["status"], "warn", "{root:#}");
    assert!(
        text(&root["explanation"]).contains("next to the data"),
        "{root:#}"
    );
    assert!(text(&root["fix"]).contains("--key-file"), "{root:#}");
    assert_eq!(report["status"], "warn");
}

#[tokio::test]
async fn doctor_reports_a_missing_migration_and_ward_init_applies_it() {
    let d = Deployment::new().await;
    {
        // As a database last opened by the Ward before invitations existed.
        let db = d.db();
        db.execute("DROP TABLE invitations", []);
        db.execute("DELETE FROM _ward_migrations WHERE version = 6", []);
    }
    let (code, report) = d.doctor();
    assert_eq!(code, Some(1), "{report:#}");
    let database = finding(&report, "database");
    assert_eq!(database["status"], "fail");
    assert!(
        text(&database["explanation"]).contains("lacks migration(s) 6 (invitations)"),
        "{database:#}"
    );
    assert!(
        text(&database["fix"]).contains("start `ward serve`"),
        "{database:#}"
    );
    // Checks that need the database say they did not run, and the doctor migrated nothing.
    assert_eq!(finding(&report, "audit_log")["status"], "warn");
    let applied: i64 = d.db().scalar(
        "SELECT COUNT(*) FROM _ward_migrations WHERE version = 6",
        [],
    );
    assert_eq!(applied, 0, "the doctor must not migrate");
    // The fix works: a start applies the migration, and the doctor is satisfied.
    let init = d.run(&["init"]);
    assert_eq!(init.status.code(), Some(0));
    let (code, report) = d.doctor();
    assert_eq!(code, Some(0), "{report:#}");
}

#[tokio::test]
async fn a_database_from_a_newer_ward_is_refused_naming_both_versions() {
    let d = Deployment::new().await;
    d.db().execute(
        "INSERT INTO _ward_migrations (version, description, applied_at) VALUES (99, 'future', 0)",
        [],
    );
    let (code, report) = d.doctor();
    assert_eq!(code, Some(1));
    let known = format!(
        "up to {}",
        ward_store::schema::sqlite_schema(&d.data.path().join("ward.db"))
            .expect("schema status")
            .known_version()
    );
    let database = text(&finding(&report, "database")["explanation"]).to_owned();
    assert!(
        database.contains("newer Ward")
            && database.contains("schema version 99")
            && database.contains(&known),
        "{database}"
    );
    let init = d.run(&["init"]);
    assert_eq!(init.status.code(), Some(3));
    let err = String::from_utf8_lossy(&init.stderr);
    assert!(
        err.contains("schema version 99")
            && err.contains(&known)
            && err.contains(env!("CARGO_PKG_VERSION")),
        "{err}"
    );
}

#[tokio::test]
async fn doctor_fails_a_tampered_audit_row_after_the_last_checkpoint() {
    let d = Deployment::new().await;
    let idx = d.checkpoint + 1;
    {
        let db = d.db();
        let mut event: Vec<u8> = db.scalar("SELECT event FROM audit_events WHERE idx = ?1", [idx]);
        let mid = event.len() / 2;
        event[mid] = if event[mid] == b'a' { b'b' } else { b'a' };
        let changed = db.execute(
            "UPDATE audit_events SET event = ?1 WHERE idx = ?2",
            rusqlite::params![event, idx],
        );
        assert_eq!(changed, 1);
    }
    let (code, report) = d.doctor();
    assert_eq!(code, Some(1), "{report:#}");
    let audit = finding(&report, "audit_log");
    assert_eq!(audit["status"], "fail");
    assert!(
        text(&audit["explanation"]).contains(&format!("first bad index: {idx}")),
        "{audit:#}"
    );
    assert!(
        text(&audit["fix"]).contains("ward audit verify"),
        "{audit:#}"
    );
}

#[tokio::test]
async fn doctor_fails_when_retention_has_not_run_and_a_sweep_fixes_it() {
    let d = Deployment::new().await;
    // Every contact record expired a day ago (as if the server had been down since).
    d.db().execute(
        "UPDATE records SET expires_at = ?1",
        [ward_store::to_micros(
            time::OffsetDateTime::now_utc() - time::Duration::days(1),
        )],
    );
    let (code, report) = d.doctor();
    assert_eq!(code, Some(1));
    let retention = finding(&report, "retention");
    assert_eq!(retention["status"], "fail", "{retention:#}");
    assert!(
        text(&retention["fix"]).contains("ward retention run"),
        "{retention:#}"
    );
    let run = d.run(&["retention", "run"]);
    assert_eq!(run.status.code(), Some(0));
    let (_, report) = d.doctor();
    let retention = finding(&report, "retention");
    assert_eq!(retention["status"], "ok", "{report:#}");
    assert!(
        text(&retention["explanation"]).contains("the last sweep ran"),
        "the sweep is recorded even where nothing else is: {retention:#}"
    );

    // A sweep that ran days ago, with nothing overdue: the doctor says the schedule stopped.
    d.db().execute(
        "UPDATE audit_events SET at = ?1 WHERE tenant IS NULL AND action = 'retention_run'",
        [ward_store::to_micros(
            time::OffsetDateTime::now_utc() - time::Duration::days(3),
        )],
    );
    let (code, report) = d.doctor();
    let retention = finding(&report, "retention");
    assert_eq!(retention["status"], "warn", "{retention:#}");
    assert!(
        text(&retention["explanation"]).contains("3d ago"),
        "{retention:#}"
    );
    // (The audit check fails now: the row was changed behind Ward's back, as it should.)
    assert_eq!(code, Some(1));
}

#[tokio::test]
async fn doctor_follows_backups_by_hand_their_failure_and_their_verification() {
    let d = Deployment::new().await;
    let (_, report) = d.doctor();
    let backups = finding(&report, "backups");
    assert_eq!(backups["status"], "ok", "{backups:#}");
    assert!(text(&backups["explanation"]).contains("no backup is configured"));
    let data = d.data.path().display().to_string();
    let key = d.key_file().display().to_string();
    let backup = |args: &[&str], location: &str| {
        let mut all = vec!["backup"];
        all.extend_from_slice(args);
        all.extend([
            "--quiet",
            "--data-dir",
            &data,
            "--key-file",
            &key,
            "--location",
            location,
        ]);
        ward(&all)
    };

    // A location that cannot be made (beneath a file): the run fails, is recorded, and the
    // doctor fails on it.
    let blocker = d.keys.path().join("not-a-directory");
    std::fs::write(&blocker, b"x").unwrap();
    let bad = blocker.join("repo").display().to_string();
    assert_ne!(backup(&["run"], &bad).status.code(), Some(0));
    let (code, report) = d.doctor();
    let backups = finding(&report, "backups");
    assert_eq!(
        (code, text(&backups["status"])),
        (Some(1), "fail"),
        "{backups:#}"
    );
    assert!(
        text(&backups["explanation"]).contains("failed"),
        "{backups:#}"
    );
    assert!(
        text(&backups["fix"]).contains("ward backup run"),
        "{backups:#}"
    );

    // A good run: no longer failing, but never verified.
    let repo = tempfile::tempdir().unwrap();
    let good = repo.path().display().to_string();
    assert_eq!(backup(&["run"], &good).status.code(), Some(0));
    let (code, report) = d.doctor();
    let backups = finding(&report, "backups");
    assert_eq!(
        (code, text(&backups["status"])),
        (Some(0), "warn"),
        "{backups:#}"
    );
    assert!(
        text(&backups["explanation"]).contains("no backup was ever verified"),
        "{backups:#}"
    );

    // A restore drill settles it.
    assert_eq!(backup(&["verify", "--full"], &good).status.code(), Some(0));
    let (code, report) = d.doctor();
    let backups = finding(&report, "backups");
    assert_eq!(
        (code, text(&backups["status"])),
        (Some(0), "ok"),
        "{backups:#}"
    );
    assert!(
        text(&backups["explanation"]).contains("verified with a restore drill"),
        "{backups:#}"
    );
    // Both runs and the drill are in the audit log, as system events.
    let recorded: i64 = d.db().scalar(
        "SELECT COUNT(*) FROM audit_events WHERE tenant IS NULL \
         AND action IN ('backup_run', 'backup_verify')",
        [],
    );
    assert_eq!(recorded, 3);
}

#[test]
fn doctor_on_a_missing_directory_fails_without_creating_it() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("nothing-here");
    let out = ward(&["doctor", "--data-dir", &dir.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL  data_dir"), "{stdout}");
    assert!(stdout.contains("fix: "), "{stdout}");
    assert!(!dir.exists(), "the doctor created the data directory");
}

#[test]
fn an_invalid_config_file_names_file_line_and_key_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("ward.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nlisten = \"127.0.0.1:8470\"\nbody_timeout = \"forever\"\n",
            data.display()
        ),
    )
    .unwrap();
    for command in ["serve", "doctor", "init"] {
        let out = ward(&[command, "--config", &config.display().to_string()]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "config {}:3: key `body_timeout`",
                config.display()
            )),
            "{command}: {err}"
        );
        assert!(!data.exists(), "{command} created the data directory");
    }
    std::fs::write(&config, "data_dir = \"/tmp\"\nlisten_on = \"x\"\n").unwrap();
    let out = ward(&["doctor", "--config", &config.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":2: key `listen_on`: unknown field"), "{err}");
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _ward"),
        ("zsh", "#compdef ward"),
        ("fish", "complete -c ward"),
    ] {
        let out = ward(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {marker} missing");
        assert!(script.contains("doctor"), "{shell}: subcommands missing");
    }
    assert_eq!(ward(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_pages_are_rendered_for_every_command() {
    let out = ward(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(".ie \\n(.g .ds Aq"));
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH ward 1"));
    let dir = tempfile::tempdir().unwrap();
    let out = ward(&["man", "--out-dir", &dir.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(0));
    for page in [
        "ward.1",
        "ward-serve.1",
        "ward-doctor.1",
        "ward-completions.1",
    ] {
        assert!(dir.path().join(page).is_file(), "{page}");
    }
    // A packaging aid, not a command users look for.
    let help = ward(&["--help"]);
    assert!(!String::from_utf8_lossy(&help.stdout).contains("  man "));
}

#[test]
fn the_version_names_the_commit_and_the_fips_build() {
    let out = ward(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let rest = line
        .strip_prefix(&format!("ward {} (commit ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{line}"));
    let (commit, features) = rest.split_once(", ").unwrap_or_else(|| panic!("{line}"));
    let hash = commit.strip_suffix("-modified").unwrap_or(commit);
    assert!(
        hash == "unknown" || (hash.len() == 12 && hash.chars().all(|c| c.is_ascii_hexdigit())),
        "{line}"
    );
    assert_eq!(features, "FIPS 140-3 module: no)", "{line}");
    // Subcommands report the same.
    let sub = ward(&["doctor", "--version"]);
    assert!(
        String::from_utf8_lossy(&sub.stdout).contains(hash),
        "subcommand version"
    );
}

/// `ward serve` runs with glibc's malloc arenas bounded (crates/cli/src/malloc_arenas.rs):
/// started without `MALLOC_ARENA_MAX` it executes itself again, same pid, with `=2` and a
/// fixed mmap threshold; an operator's own value is kept and nothing is added to it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn serve_bounds_malloc_arenas_unless_the_operator_chose() {
    for (given, expected, threshold) in [
        (None, "MALLOC_ARENA_MAX=2", true),
        (Some("4"), "MALLOC_ARENA_MAX=4", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut command = Command::new(env!("CARGO_BIN_EXE_ward"));
        command
            .args(["serve", "--data-dir", &data.display().to_string()])
            .args(["--listen", "127.0.0.1:0", "--key-provider", "file"])
            .env_remove("WARD_DATA_DIR")
            .env_remove("WARD_CONFIG")
            .env_remove("MALLOC_ARENA_MAX")
            .env_remove("MALLOC_MMAP_THRESHOLD_")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(v) = given {
            command.env("MALLOC_ARENA_MAX", v);
        }
        let mut child = command.spawn().unwrap();
        // The data directory is created after the re-execution, by the process that stays.
        for _ in 0..600 {
            if data.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        assert!(data.exists(), "ward serve did not start");
        assert!(
            vars.contains(&expected.as_bytes()),
            "{given:?}: {:?}",
            String::from_utf8_lossy(&environ)
        );
        assert_eq!(
            vars.iter()
                .filter(|v| v.starts_with(b"MALLOC_ARENA_MAX="))
                .count(),
            1
        );
        assert_eq!(
            vars.contains(&b"MALLOC_MMAP_THRESHOLD_=131072".as_slice()),
            threshold,
            "{given:?}: {:?}",
            String::from_utf8_lossy(&environ)
        );
    }
}

//! `ward keys rotate --root` on a real data directory: a new root version, every tenant
//! resealed, the old version destroyed from the key file, and the data still readable.

use std::path::Path;
use std::process::{Command, Output};

use reqwest::StatusCode;
use serde_json::json;
use ward_testkit::TestServer;

fn ward(args: &[&str]) -> Output {
    ward_testkit::cli::run_without(
        env!("CARGO_BIN_EXE_ward"),
        args,
        &["WARD_DATA_DIR", "WARD_KEY_PROVIDER", "WARD_CONFIG"],
    )
}

fn copy_dir(from: &Path, to: &Path) {
    // `ward` refuses a data directory others can reach; a temporary directory may be 755.
    let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700);
    std::fs::set_permissions(to, private).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_file() && !name.ends_with("-shm") {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// A data directory holding one tenant with one record, copied from a server that is then
/// stopped, so that the CLI can work on it alone.
struct Stopped {
    copy: tempfile::TempDir,
    tenant: ward_testkit::TenantFixture,
    subject: String,
    record: String,
    operator: String,
}

async fn one_record_then_stopped() -> Stopped {
    let srv = TestServer::start().await;
    let tenant = srv.tenant("Acme").await;
    let subject = srv.subject(&tenant).await;
    let record = srv
        .contact(&tenant, &subject, "Ada", "ada@example.com")
        .await;
    let operator = srv.operator.clone();
    let copy = tempfile::tempdir().unwrap();
    copy_dir(srv.dir.path(), copy.path());
    Stopped {
        copy,
        tenant,
        subject,
        record,
        operator,
    }
}

#[tokio::test]
async fn root_rotation_reseals_every_tenant_and_destroys_the_old_version() {
    let Stopped {
        copy,
        tenant: t,
        subject: s,
        record: r,
        ..
    } = one_record_then_stopped().await;
    let dir = copy.path().to_str().unwrap();
    assert!(
        std::fs::read_to_string(copy.path().join("root.key"))
            .unwrap()
            .contains("v1:")
    );

    let out = ward(&["keys", "rotate", "--root", "--data-dir", dir]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("root key version 2 is current; 1 tenants resealed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("root key version v1 sealed nothing any more and was destroyed"),
        "{stdout}"
    );
    let keyfile = std::fs::read_to_string(copy.path().join("root.key")).unwrap();
    assert!(
        keyfile.contains("v2:") && !keyfile.contains("v1:"),
        "old version must be gone"
    );

    let out = ward(&["keys", "status", "--data-dir", dir]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("current root key version: v2"), "{stdout}");
    assert!(stdout.contains("v2 seals 1 (tenants"), "{stdout}");

    // The data opens with the new key alone: serve the directory again and read the record.
    let listen = "127.0.0.1:18471";
    let url = format!(
        "http://{listen}/v1/tenants/{}/subjects/{s}/records/{r}?purpose=essential.service",
        t.id
    );
    let (status, body) = while_serving(dir, listen, async |client| {
        let resp = client.get(&url).bearer_auth(&t.owner).send().await.ok()?;
        Some((
            resp.status(),
            resp.json::<serde_json::Value>().await.unwrap(),
        ))
    })
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["fields"]["name"], "Ada");
}

/// An operator webhook's secret and an operator incident's text are sealed under keys
/// derived from the root version of their day: a root rotation keeps that version (and says
/// so) instead of destroying it.
#[tokio::test]
async fn root_rotation_keeps_the_version_operator_secrets_need() {
    let srv = TestServer::start().await;
    let t = srv.tenant("Acme").await;
    let (status, body) = srv
        .post(
            "/v1/incidents",
            &srv.operator,
            json!({"title": "Storage node compromised", "tenants": [t.id]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = srv
        .post(
            "/v1/webhooks",
            &srv.operator,
            json!({"url": "http://127.0.0.1:9/ward-alerts"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let copy = tempfile::tempdir().unwrap();
    copy_dir(srv.dir.path(), copy.path());
    drop(srv);
    let dir = copy.path().to_str().unwrap();

    let out = ward(&["keys", "rotate", "--root", "--data-dir", dir]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("destroyed"), "{stdout}");
    let keyfile = std::fs::read_to_string(copy.path().join("root.key")).unwrap();
    assert!(keyfile.contains("v1:") && keyfile.contains("v2:"));
    let out = ward(&["keys", "status", "--data-dir", dir]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("v1 seals 2 ("), "{stdout}");
    assert!(stdout.contains("v2 seals 1 ("), "{stdout}");
}

#[test]
fn rotate_needs_a_scope() {
    let out = ward(&["keys", "rotate"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Every wrapped subject key of the tenant, as stored now.
async fn wrapped_subject_keys(srv: &TestServer, tenant: &str, subjects: &[String]) -> Vec<Vec<u8>> {
    use ward_store::RecordFilter;
    let mut out = Vec::new();
    for s in subjects {
        let view = srv
            .store
            .subject_view(
                tenant.parse().unwrap(),
                s.parse().unwrap(),
                RecordFilter::None,
            )
            .await
            .unwrap()
            .unwrap();
        out.push(view.subject.wrapped_key.unwrap());
    }
    out
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter(|e| ward_testkit::contains_bytes(&std::fs::read(e.path()).unwrap(), needle))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Serves `dir` on `listen` until `check` returns `Some`, then stops the server.
async fn while_serving<T>(
    dir: &str,
    listen: &str,
    mut check: impl AsyncFnMut(&reqwest::Client) -> Option<T>,
) -> T {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["serve", "--data-dir", dir, "--listen", listen])
        .env_remove("WARD_DATA_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut answer = None;
    for _ in 0..600 {
        if let Some(a) = check(&client).await {
            answer = Some(a);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    answer.expect("the server answered in time")
}

#[tokio::test]
async fn record_rotation_from_the_command_line_reencrypts_and_destroys_old_keys() {
    let srv = TestServer::start().await;
    let t = srv.tenant("Acme").await;
    let mut subjects = Vec::new();
    let mut records = Vec::new();
    for i in 0..20 {
        let s = srv.subject(&t).await;
        records.push(
            srv.contact(&t, &s, &format!("Ada {i}"), &format!("ada{i}@example.com"))
                .await,
        );
        subjects.push(s);
    }
    let old_keys = wrapped_subject_keys(&srv, &t.id, &subjects).await;
    let copy = tempfile::tempdir().unwrap();
    copy_dir(srv.dir.path(), copy.path());
    assert!(!files_containing(copy.path(), &old_keys[0]).is_empty());
    drop(srv);
    let dir = copy.path().to_str().unwrap();

    let out = ward(&[
        "keys",
        "rotate",
        "--records",
        "--tenant",
        &t.id,
        "--data-dir",
        dir,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "20 records of 20 subjects re-encrypted under new subject keys; old keys destroyed"
        ),
        "{stdout}"
    );
    let out = ward(&["keys", "status", "--data-dir", dir]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("done, 20 of 20 records (100%), 20 subjects"),
        "{stdout}"
    );
    assert!(
        stdout.contains("retired subject keys still alive: 0"),
        "{stdout}"
    );
    // No file of the data directory holds any old wrapped subject key any more.
    for key in &old_keys {
        assert_eq!(files_containing(copy.path(), key), Vec::<String>::new());
    }
    // And everything still reads.
    let url = format!(
        "http://127.0.0.1:18472/v1/tenants/{}/subjects/{}/records/{}?purpose=essential.service",
        t.id, subjects[7], records[7]
    );
    let (status, body) = while_serving(dir, "127.0.0.1:18472", async |client| {
        let resp = client.get(&url).bearer_auth(&t.owner).send().await.ok()?;
        Some((
            resp.status(),
            resp.json::<serde_json::Value>().await.unwrap(),
        ))
    })
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["fields"]["name"], "Ada 7");
}

#[tokio::test]
async fn a_detached_record_rotation_is_run_by_the_server() {
    let Stopped { copy, operator, .. } = one_record_then_stopped().await;
    let dir = copy.path().to_str().unwrap();

    let out = ward(&["keys", "rotate", "--records", "--detach", "--data-dir", dir]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("queued (1 records)"));
    let out = ward(&["keys", "status", "--data-dir", dir]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("running, 0 of 1 records (0%)"), "{stdout}");

    let status = while_serving(dir, "127.0.0.1:18473", async |client| {
        let resp = client
            .get("http://127.0.0.1:18473/v1/keys/status")
            .bearer_auth(&operator)
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = resp.json().await.ok()?;
        (body["record_jobs"][0]["status"] == "done").then_some(body)
    })
    .await;
    assert_eq!(status["record_jobs"][0]["records_done"], 1, "{status}");
    assert_eq!(status["retired_subject_keys"], 0, "{status}");
}

#[test]
fn detach_needs_records() {
    let out = ward(&[
        "keys",
        "rotate",
        "--tenant",
        "00000000-0000-0000-0000-000000000000",
        "--detach",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = ward(&["keys", "rotate", "--root", "--records"]);
    assert_eq!(out.status.code(), Some(2));
}

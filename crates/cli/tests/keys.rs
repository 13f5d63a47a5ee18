//! `ward keys rotate --root` on a real data directory: a new root version, every tenant
//! resealed, the old version destroyed from the key file, and the data still readable.

use std::path::Path;
use std::process::{Command, Output};

use reqwest::StatusCode;
use serde_json::json;
use ward_testkit::TestServer;

fn ward(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(args)
        .env_remove("WARD_DATA_DIR")
        .env_remove("WARD_KEY_PROVIDER")
        .env_remove("WARD_CONFIG")
        .output()
        .expect("run ward");
    eprintln!(
        "ward {args:?} -> {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_file() && !name.ends_with("-shm") {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

#[tokio::test]
async fn root_rotation_reseals_every_tenant_and_destroys_the_old_version() {
    let srv = TestServer::start().await;
    let t = srv.tenant("Acme").await;
    let s = srv.subject(&t).await;
    let r = srv
        .record(
            &t,
            &s,
            "contact",
            json!({"name": "Ada", "email": "ada@example.com"}),
        )
        .await;
    let copy = tempfile::tempdir().unwrap();
    copy_dir(srv.dir.path(), copy.path());
    drop(srv);
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
    assert!(stdout.contains("v2 seals 1 tenants"), "{stdout}");

    // The data opens with the new key alone: serve the directory again and read the record.
    let listen = "127.0.0.1:18471";
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["serve", "--data-dir", dir, "--listen", listen])
        .env_remove("WARD_DATA_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!(
        "http://{listen}/v1/tenants/{}/subjects/{s}/records/{r}?purpose=essential.service",
        t.id
    );
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(resp) = client.get(&url).bearer_auth(&t.owner).send().await {
            answer = Some((
                resp.status(),
                resp.json::<serde_json::Value>().await.unwrap(),
            ));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let (status, body) = answer.expect("server answered");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["fields"]["name"], "Ada");
}

#[test]
fn rotate_needs_a_scope() {
    let out = ward(&["keys", "rotate"]);
    assert_eq!(out.status.code(), Some(2));
}

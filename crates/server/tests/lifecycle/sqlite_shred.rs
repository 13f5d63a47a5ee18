//! Crypto-shredding reaches stale backups (ARCHITECTURE.md, "Keys and encryption"): a copy of the data
//! file taken before an erasure, restored next to the live key store, cannot give back the
//! erased subject, while every other subject in the same copy decrypts. With the key store of
//! the same (pre-erasure) moment the erased subject does decrypt, which shows that the
//! difference is the destroyed key and nothing else.
//!
//! A restore here is: a fresh server's empty store, filled by SQL from the copied files, served
//! by a fresh vault (empty key caches) holding the original deployment's root key.

use std::path::Path;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use ward_testkit::{TenantFixture, TestServer};

use crate::sqlite_support::{blob, count, open, subject_key};
use crate::support::{
    ESSENTIAL, SECURITY, assert_leaks_none, erase, export_path, find_path, id, list_path,
    read_path, record_path, subject_with_ref, write,
};

const A_NAME: &str = "Wilhelmina Backupstone";
const A_EMAIL: &str = "wilhelmina.backupstone@stale-backup.example";
const A_REF: &str = "crm-wilhelmina-55120";
const A_IP: &str = "192.0.2.177";
const B_NAME: &str = "Barnaby Keepsake";
const B_NAME_RECTIFIED: &str = "Barnaby Keepsake-Rectified";
const A_VALUES: [&str; 4] = [A_NAME, A_EMAIL, A_REF, A_IP];

/// Copies a database file and its write-ahead log (if any) from one directory to another.
fn copy_db(from: &Path, to: &Path, file: &str) {
    for suffix in ["", "-wal"] {
        let src = from.join(format!("{file}{suffix}"));
        if src.exists() {
            std::fs::copy(&src, to.join(format!("{file}{suffix}")))
                .unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        }
    }
}

fn quoted(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "''"))
}

/// A server over a restore: data rows from `data/ward.db`, key rows from `keys/ward.keys.db`.
struct Restored {
    /// Provides the store (its own vault is not used).
    target: TestServer,
    url: String,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

impl Restored {
    async fn new(original: &TestServer, data: &Path, keys: &Path) -> Self {
        let target = crate::start().await;
        let conn = open(&target.db_path());
        let attach = [
            (target.dir.path().join("ward.keys.db"), "keys"),
            (data.join("ward.db"), "backup"),
            (keys.join("ward.keys.db"), "keysource"),
        ];
        for (path, name) in attach {
            assert!(path.exists(), "{} is missing", path.display());
            conn.execute_batch(&format!("ATTACH DATABASE {} AS {name}", quoted(&path)))
                .unwrap();
        }
        for sql in [
            "INSERT INTO main.tenants SELECT * FROM backup.tenants",
            "INSERT INTO main.api_keys SELECT * FROM backup.api_keys WHERE tenant IS NOT NULL",
            "INSERT INTO main.subjects SELECT * FROM backup.subjects",
            "INSERT INTO main.records SELECT * FROM backup.records",
            "INSERT INTO main.blind_index SELECT * FROM backup.blind_index",
            "INSERT INTO keys.tenant_keys SELECT * FROM keysource.tenant_keys",
            "INSERT INTO keys.subject_keys SELECT * FROM keysource.subject_keys",
        ] {
            conn.execute(sql, []);
        }
        drop(conn);

        let vault = ward_vault::Vault::new(ward_vault::VaultConfig {
            store: target.store.clone(),
            policy: ward_policy::Policy::parse(ward_policy::EXAMPLE_POLICY, "saas-policy.toml")
                .unwrap(),
            root_keys: original.root_keys.clone(),
            signing_key: ward_audit::SigningKey::generate().unwrap(),
            clock: Arc::new(original.clock.clone()),
            origin: "ward-restore-test".into(),
            limits: Default::default(),
        })
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(ward_server::serve(
            listener,
            ward_server::AppState::new(vault),
            async move {
                let _ = rx.await;
            },
        ));
        Self {
            target,
            url,
            client: reqwest::Client::new(),
            _stop: tx,
        }
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (
            status,
            serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null),
        )
    }
}

/// A deployment with subjects A and B, a data and key backup taken before A was erased, and a
/// copy of the key store taken after.
struct Scenario {
    srv: TestServer,
    t: TenantFixture,
    a: String,
    a_contact: Value,
    a_visit: Value,
    b: String,
    b_contact: String,
    /// `ward.db` and `ward.keys.db` as they were before the erasure.
    backup: TempDir,
    /// `ward.keys.db` as it is after the erasure.
    live_keys: TempDir,
}

async fn scenario() -> Scenario {
    let srv = crate::start().await;
    let t = srv.tenant("Backup Co").await;
    let a = subject_with_ref(&srv, &t, A_REF).await;
    let a_contact = write(
        &srv,
        &t,
        &a,
        "contact",
        json!({ "name": A_NAME, "email": A_EMAIL }),
    )
    .await;
    let a_visit = write(
        &srv,
        &t,
        &a,
        "browser_visit",
        json!({ "ip": A_IP, "visited_at": "2026-01-15T08:00:00Z" }),
    )
    .await;
    let b = srv.subject(&t).await;
    let b_contact = srv.contact(&t, &b, B_NAME, "barnaby@example.org").await;
    for (s, r, p) in [
        (&a, id(&a_contact), ESSENTIAL),
        (&a, id(&a_visit), SECURITY),
        (&b, b_contact.clone(), ESSENTIAL),
    ] {
        let (st, _) = srv.get(&read_path(&t.id, s, &r, p), &t.owner).await;
        assert_eq!(st, StatusCode::OK);
    }

    // The nightly backup: data file and key store, copied as they are on disk.
    let backup = tempfile::tempdir().unwrap();
    copy_db(srv.dir.path(), backup.path(), "ward.db");
    copy_db(srv.dir.path(), backup.path(), "ward.keys.db");

    // Later: B's record is rectified and A is erased.
    let (st, b_rec) = srv
        .patch(
            &record_path(&t.id, &b, &b_contact),
            &t.owner,
            json!({ "purpose": "essential.service", "fields": { "name": B_NAME_RECTIFIED } }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b_rec}");
    let (st, out) = erase(&srv, &t, &a).await;
    assert_eq!(st, StatusCode::OK, "{out}");
    assert_eq!(out["records_erased"], 2, "{out}");
    let live_keys = tempfile::tempdir().unwrap();
    copy_db(srv.dir.path(), live_keys.path(), "ward.keys.db");
    Scenario {
        srv,
        t,
        a,
        a_contact,
        a_visit,
        b,
        b_contact,
        backup,
        live_keys,
    }
}

#[tokio::test]
async fn a_stale_backup_restored_with_the_live_keys_cannot_give_back_an_erased_subject() {
    let sc = scenario().await;
    let (t, a) = (&sc.t, &sc.a);
    let restored = Restored::new(&sc.srv, sc.backup.path(), sc.live_keys.path()).await;

    // A's ciphertext is really in the restored data, and its key really is not.
    let db = open(&restored.target.db_path());
    assert_eq!(
        count(&db, "records", "subject", a),
        2,
        "the backup holds A's records"
    );
    assert_eq!(count(&db, "subjects", "id", a), 1);
    drop(db);
    let keys = open(&restored.target.dir.path().join("ward.keys.db"));
    assert_eq!(subject_key(&keys, &t.id, a), None);
    assert!(subject_key(&keys, &t.id, &sc.b).is_some());

    // Nothing of A comes back, by any read.
    for (rec, purpose) in [(&sc.a_contact, ESSENTIAL), (&sc.a_visit, SECURITY)] {
        let resp = restored
            .get(&read_path(&t.id, a, &id(rec), purpose), &t.owner)
            .await;
        assert_eq!(resp.0, StatusCode::NOT_FOUND, "{}", resp.1);
        assert_leaks_none(&resp.1, &A_VALUES);
    }
    for path in [list_path(&t.id, a, ESSENTIAL), export_path(&t.id, a)] {
        let resp = restored.get(&path, &t.owner).await;
        assert_eq!(resp.0, StatusCode::NOT_FOUND, "{path}: {}", resp.1);
        assert_leaks_none(&resp.1, &A_VALUES);
    }

    // B's records in the same backup decrypt with the live keys: the backup's version of them.
    let (st, rec) = restored
        .get(&read_path(&t.id, &sc.b, &sc.b_contact, ESSENTIAL), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{rec}");
    assert_eq!(
        rec["fields"]["name"], B_NAME,
        "the restored record is the backup's, from before the rectification"
    );
    let (st, doc) = restored.get(&export_path(&t.id, &sc.b), &t.owner).await;
    assert_eq!(
        (st, doc["records"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(1)),
        "{doc}"
    );

    // No other live key opens A's records either: B's key in A's place fails authentication.
    let b_key = subject_key(&keys, &t.id, &sc.b).unwrap();
    drop(keys);
    let conn = open(&restored.target.dir.path().join("ward.keys.db"));
    conn.execute(
        "INSERT INTO subject_keys (tenant, subject, wrapped_key, key_version) VALUES (?1, ?2, ?3, 1)",
        rusqlite::params![blob(&t.id), blob(a), b_key],
    );
    drop(conn);
    let resp = restored
        .get(
            &read_path(&t.id, a, &id(&sc.a_contact), ESSENTIAL),
            &t.owner,
        )
        .await;
    assert_eq!(
        resp.0,
        StatusCode::INTERNAL_SERVER_ERROR,
        "a foreign key must not open A's record: {}",
        resp.1
    );
    assert_eq!(resp.1["error"]["code"], "integrity_error", "{}", resp.1);
    assert_leaks_none(&resp.1, &A_VALUES);
}

#[tokio::test]
async fn the_same_backup_with_its_own_pre_erasure_keys_does_decrypt_the_erased_subject() {
    let sc = scenario().await;
    let (t, a) = (&sc.t, &sc.a);
    // The live server itself has forgotten A.
    let resp = sc
        .srv
        .get(
            &read_path(&t.id, a, &id(&sc.a_contact), ESSENTIAL),
            &t.owner,
        )
        .await;
    assert_eq!(resp.0, StatusCode::NOT_FOUND, "{}", resp.1);

    let restored = Restored::new(&sc.srv, sc.backup.path(), sc.backup.path()).await;
    for (rec, purpose) in [(&sc.a_contact, ESSENTIAL), (&sc.a_visit, SECURITY)] {
        let (st, got) = restored
            .get(&read_path(&t.id, a, &id(rec), purpose), &t.owner)
            .await;
        assert_eq!(st, StatusCode::OK, "{got}");
        assert_eq!(
            got["fields"], rec["fields"],
            "the backup's own keys give A's data back"
        );
    }
    let (st, doc) = restored.get(&export_path(&t.id, a), &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{doc}");
    assert_eq!(doc["records"].as_array().unwrap().len(), 2);
    let (st, found) = restored.get(&find_path(&t.id, A_REF), &t.owner).await;
    assert_eq!(
        (st, found["id"].as_str()),
        (StatusCode::OK, Some(a.as_str())),
        "{found}"
    );
}

/// Regression: the lookup by external reference did not check that the subject still has a
/// key, so a restored pre-erasure backup answered it with the erased subject's id.
#[tokio::test]
async fn a_stale_backup_restored_with_the_live_keys_does_not_find_an_erased_subject_by_reference() {
    let sc = scenario().await;
    let restored = Restored::new(&sc.srv, sc.backup.path(), sc.live_keys.path()).await;
    // The backup still holds the keyed hash of A's reference; the live tenant key computes it.
    let resp = restored.get(&find_path(&sc.t.id, A_REF), &sc.t.owner).await;
    assert_eq!(
        resp.0,
        StatusCode::NOT_FOUND,
        "an erased subject was found by its external reference: {}",
        resp.1
    );
    assert_leaks_none(&resp.1, &[sc.a.as_str()]);
    let resp = restored
        .get(
            &crate::support::ref_export_path(&sc.t.id, A_REF),
            &sc.t.owner,
        )
        .await;
    assert_eq!(resp.0, StatusCode::NOT_FOUND, "{}", resp.1);
}

//! Shared by the backup suites: running `ward`, a populated server, reading records back
//! over HTTP from a restored store.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use ward_backup::{LocationSpec, OpenMode, Repository, S3Options};
use ward_store::Store;
use ward_testkit::{TenantFixture, TestServer};

pub const PURPOSE: &str = "essential.service";

pub fn ward(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ward"));
    cmd.args(args)
        .env_remove("WARD_DATA_DIR")
        .env_remove("WARD_KEY_PROVIDER")
        .env_remove("WARD_CONFIG")
        .env_remove("WARD_ROOT_KEY")
        .env_remove("WARD_DATABASE_URL");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run ward");
    ward_testkit::cli::logged(args, out)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// One record as written: where it is and what it holds.
#[derive(Debug, Clone)]
pub struct Written {
    pub tenant: usize,
    pub subject: String,
    pub record: String,
    pub fields: Value,
}

/// Two tenants, three subjects each, two records per subject (one rectified once).
pub async fn populate(srv: &TestServer) -> (Vec<TenantFixture>, Vec<Written>) {
    let mut tenants = Vec::new();
    let mut written = Vec::new();
    for (ti, name) in ["Acme", "Globex"].into_iter().enumerate() {
        let t = srv.tenant(name).await;
        for si in 0..3 {
            let s = srv.subject(&t).await;
            for ri in 0..2 {
                let mut fields = json!({
                    "name": format!("Person {ti}-{si}-{ri}"),
                    "email": format!("p{ti}{si}{ri}@example.com"),
                });
                let r = srv.record(&t, &s, "contact", fields.clone()).await;
                if ri == 1 {
                    fields["name"] = json!(format!("Renamed {ti}-{si}"));
                    let (st, b) = srv
                        .patch(
                            &format!("/v1/tenants/{}/subjects/{s}/records/{r}", t.id),
                            &t.owner,
                            json!({ "fields": fields, "purpose": PURPOSE }),
                        )
                        .await;
                    assert!(st.is_success(), "rectify: {st} {b}");
                }
                written.push(Written {
                    tenant: ti,
                    subject: s.clone(),
                    record: r,
                    fields,
                });
            }
        }
        tenants.push(t);
    }
    (tenants, written)
}

/// Serves a vault over `store` (with `srv`'s policy, root key and signing key) and
/// returns its base URL.
pub async fn serve(srv: &TestServer, store: Arc<dyn Store>) -> String {
    let vault = srv.vault_on(store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ward_server::serve_with(
        listener,
        ward_server::AppState::new(vault),
        ward_server::Limits::default(),
        std::future::pending::<()>(),
    ));
    url
}

/// A record's fields read over HTTP.
pub async fn read(url: &str, t: &TenantFixture, w: &Written) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .get(format!(
            "{url}/v1/tenants/{}/subjects/{}/records/{}?purpose={PURPOSE}",
            t.id, w.subject, w.record
        ))
        .bearer_auth(&t.owner)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Every written record reads back with the same fields from `url`.
pub async fn assert_same_records(url: &str, tenants: &[TenantFixture], written: &[Written]) {
    for w in written {
        let (st, body) = read(url, &tenants[w.tenant], w).await;
        assert_eq!(st, StatusCode::OK, "{w:?}: {body}");
        assert_eq!(body["fields"], w.fields, "{w:?}");
    }
}

pub async fn repo(dirs: &[&Path], root: &ward_crypto::RootKeyring, mode: OpenMode) -> Repository {
    let specs: Vec<_> = dirs
        .iter()
        .map(|d| LocationSpec::new(d.to_str().unwrap()))
        .collect();
    Repository::open(&specs, &S3Options::default(), root, mode)
        .await
        .expect("repository")
}

/// A new, empty PostgreSQL database; returns its URL.
pub async fn fresh_database() -> String {
    use sqlx::Connection as _;
    let admin = ward_testkit::postgres_url();
    let name = format!("ward_restore_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required: {e}"));
    // The name is a fixed prefix and a UUID: nothing outside this function shapes it.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

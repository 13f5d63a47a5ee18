//! Test support shared by the integration suites: a real Ward server on an ephemeral
//! loopback port, over a real database in a temporary directory, with an injected clock.
//!
//! Nothing here is mocked: the server is the same router `ward serve` runs, the store is the
//! same SQLite (or PostgreSQL) implementation, and tests talk HTTP to it.
#![allow(missing_docs, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use ward_audit::SigningKey;
use ward_crypto::{FileKeyProvider, RootKeyring};
use ward_policy::Policy;
use ward_store::{SqliteStore, Store};
use ward_vault::{ManualClock, Vault, VaultConfig};

pub mod api;
pub mod cli;
pub mod log_scan;
pub mod sql;

/// Which database a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file in the test's temporary directory.
    Sqlite,
    /// A fresh schema in the PostgreSQL database of [`postgres_url`], dropped when the
    /// server drops.
    Postgres,
}

/// The PostgreSQL database the suites use: `WARD_TEST_DATABASE_URL`, else the server on
/// 127.0.0.1:5432, else a throwaway cluster shared by the run (see `ward_pgtest`).
pub fn postgres_url() -> String {
    ward_pgtest::database_url()
}

/// Options of a test server.
#[derive(Debug, Clone)]
pub struct Options {
    pub backend: Backend,
    /// Policy TOML; the shipped example when `None`.
    pub policy: Option<String>,
    /// Start time of the injected clock.
    pub start: OffsetDateTime,
    /// Serve HTTPS with this PEM certificate chain and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Join another server's deployment: its PostgreSQL schema and the directory holding its
    /// root key and audit signing key (a second stateless server on the same database).
    pub join: Option<(String, PathBuf)>,
    /// Connection limits (timeouts, connection cap) of the server.
    pub limits: ward_server::Limits,
    /// Let tenant webhooks reach private addresses (true by default: test receivers listen on
    /// 127.0.0.1; the SSRF test turns it off).
    pub allow_private_webhooks: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            policy: None,
            start: time::macros::datetime!(2026-01-15 09:00 UTC),
            tls: None,
            join: None,
            limits: ward_server::Limits::default(),
            allow_private_webhooks: true,
        }
    }
}

impl Options {
    /// The default options on `backend`: what each suite's SQLite and PostgreSQL entry points
    /// differ by.
    pub fn on(backend: Backend) -> Self {
        Self {
            backend,
            ..Self::default()
        }
    }
}

/// A running server and everything a test needs to poke at it.
pub struct TestServer {
    pub url: String,
    pub addr: SocketAddr,
    /// The data directory (SQLite file, keys) — tests scan and tamper with it.
    pub dir: TempDir,
    pub clock: ManualClock,
    /// The operator token.
    pub operator: String,
    pub vault: Vault,
    pub store: Arc<dyn Store>,
    /// The policy the server runs.
    pub policy: Policy,
    pub root_keys: RootKeyring,
    pub signing_key_path: PathBuf,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    /// The PostgreSQL schema to drop at the end.
    pub schema: Option<String>,
}

/// The store a test server runs on, and the PostgreSQL schema to drop at the end when the
/// server made its own: a fresh SQLite file or schema, or the joined server's (a restart, a
/// second server on one deployment).
async fn open_store(opts: &Options, key_dir: &Path) -> (Arc<dyn Store>, Option<String>) {
    match opts.backend {
        // Joining on SQLite: the other server's database file, beside its keys (a restart).
        Backend::Sqlite => (
            Arc::new(
                SqliteStore::open(&key_dir.join("ward.db"))
                    .await
                    .expect("sqlite store"),
            ),
            None,
        ),
        Backend::Postgres if opts.join.is_some() => {
            let (name, _) = opts.join.clone().unwrap_or_default();
            let store = ward_store::PostgresStore::open_in_schema(&postgres_url(), &name)
                .await
                .expect("join the PostgreSQL schema");
            (Arc::new(store), None)
        }
        Backend::Postgres => {
            let name = format!("t_{}", uuid::Uuid::new_v4().simple());
            let store = ward_store::PostgresStore::open_in_schema(&postgres_url(), &name)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL at {} is required for this suite: {e}",
                        postgres_url()
                    )
                });
            (Arc::new(store), Some(name))
        }
    }
}

/// A tenant with an owner key.
#[derive(Debug, Clone)]
pub struct TenantFixture {
    pub id: String,
    pub owner: String,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Self {
        log_scan::start();
        let dir = tempfile::tempdir().expect("temp dir");
        let policy_src = opts
            .policy
            .clone()
            .unwrap_or_else(|| ward_policy::EXAMPLE_POLICY.to_owned());
        let policy = Policy::parse(&policy_src, "test-policy.toml").expect("test policy is valid");
        let key_dir = opts
            .join
            .as_ref()
            .map_or_else(|| dir.path().to_path_buf(), |(_, d)| d.clone());
        let (root_keys, _) = FileKeyProvider::new(key_dir.join("root.key"))
            .load_or_create()
            .expect("root key");
        let (store, schema) = open_store(&opts, &key_dir).await;
        let signing_key_path = key_dir.join("audit-signing.key");
        let (signing_key, _) = SigningKey::load_or_create(&signing_key_path).expect("signing key");
        let clock = ManualClock::new(opts.start);
        let vault = Vault::new(VaultConfig {
            store: store.clone(),
            policy: policy.clone(),
            root_keys: root_keys.clone(),
            signing_key,
            clock: Arc::new(clock.clone()),
            origin: "ward-test".into(),
            limits: Default::default(),
        })
        .expect("vault");
        let operator = vault
            .bootstrap_operator()
            .await
            .expect("bootstrap")
            // A server joining a deployment finds the operator already there: use the first
            // server's token.
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default();
        log_scan::secret(&operator);
        let (tx, rx) = oneshot::channel::<()>();
        let state = ward_server::AppState::new(vault.clone())
            .with_doctor(doctor_setup(
                dir.path(),
                &key_dir,
                opts.backend,
                opts.tls.as_ref(),
            ))
            .with_webhooks(ward_server::WebhookOptions {
                allow_private_targets: opts.allow_private_webhooks,
            });
        let shutdown = async move {
            let _ = rx.await;
        };
        let (addr, scheme) = match &opts.tls {
            None => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let addr = listener.local_addr().expect("addr");
                tokio::spawn(ward_server::serve_with(
                    listener,
                    state,
                    opts.limits.clone(),
                    shutdown,
                ));
                (addr, "http")
            }
            Some((cert, key)) => {
                let config = ward_server::tls::server_config(cert, key).expect("tls config");
                let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                let addr = listener.local_addr().expect("addr");
                tokio::spawn(ward_server::tls::serve_tls_with(
                    listener,
                    state,
                    config,
                    opts.limits.clone(),
                    shutdown,
                ));
                (addr, "https")
            }
        };
        Self {
            url: format!("{scheme}://{addr}"),
            addr,
            dir,
            clock,
            operator,
            vault,
            store,
            policy,
            root_keys,
            signing_key_path,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            schema,
        }
    }

    /// A second vault on `store` (this server's own, or a wrapper around it) with this
    /// server's policy, root keys, audit signing key and clock: what another process of the
    /// same deployment would run.
    pub fn vault_on(&self, store: Arc<dyn Store>) -> Vault {
        let (signing_key, _) =
            SigningKey::load_or_create(&self.signing_key_path).expect("signing key");
        Vault::new(VaultConfig {
            store,
            policy: self.policy.clone(),
            root_keys: self.root_keys.clone(),
            signing_key,
            clock: Arc::new(self.clock.clone()),
            origin: "ward-test".into(),
            limits: Default::default(),
        })
        .expect("vault")
    }

    /// Path of the SQLite database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("ward.db")
    }

    /// Sends a request; returns the status and the JSON body (`Null` when empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        log_scan::query(path);
        if let Some(t) = token {
            log_scan::secret(t);
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            log_scan::body(&b);
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        for cookie in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            if let Some((_, value)) = cookie
                .to_str()
                .ok()
                .and_then(|c| c.split(';').next())
                .and_then(|c| c.split_once('='))
            {
                log_scan::secret(value);
            }
        }
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        log_scan::body(&value);
        (status, value)
    }

    /// Raw request builder, for headers or non-JSON bodies.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url))
    }

    /// The Prometheus text of `GET /metrics`, for tests that look for a series in it.
    pub async fn metrics_text(&self) -> String {
        self.request(Method::GET, "/metrics")
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// The paths the server's router serves, read from the router itself (its `Debug` form
    /// names each route), so a route added to the router is in this set without anyone
    /// listing it.
    ///
    /// # Panics
    /// If fewer than 40 paths are found (the router's `Debug` form changed).
    #[must_use]
    pub fn router_paths(&self) -> std::collections::BTreeSet<String> {
        let router = ward_server::app(ward_server::AppState::new(self.vault.clone()));
        let debug = format!("{router:?}");
        let paths: std::collections::BTreeSet<String> = debug
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|p| p.starts_with('/') && !p.contains("__private__") && *p != "/")
            .map(str::to_owned)
            .collect();
        assert!(paths.len() > 40, "routes read from the router: {paths:?}");
        paths
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Polls `GET /v1/keys/status` (as the operator) until the tenant's record rotation job
    /// has left `running`; returns the last status. Panics if the tenant has no job, or after
    /// a minute: the job runs in the server's background worker, not in the request.
    pub async fn wait_for_record_job(&self, tenant: &str) -> Value {
        for _ in 0..2400 {
            let (status, body) = self.get("/v1/keys/status", &self.operator).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let job = body["record_jobs"]
                .as_array()
                .and_then(|jobs| jobs.iter().find(|j| j["tenant"] == tenant))
                .cloned()
                .expect("a record job for the tenant");
            if job["status"] != "running" {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the record rotation did not finish");
    }

    /// Creates a tenant (as the operator) and its owner key, by claiming the invitation that
    /// comes with the tenant: the way a tenant's first owner gets a key.
    pub async fn tenant(&self, name: &str) -> TenantFixture {
        let (s, t) = self
            .post("/v1/tenants", &self.operator, json!({ "name": name }))
            .await;
        assert_eq!(s, StatusCode::CREATED, "create tenant: {t}");
        let id = t["id"].as_str().expect("tenant id").to_owned();
        let invitation = t["invitation"]["token"].as_str().expect("invitation");
        let owner = self.claim(invitation, "owner").await;
        TenantFixture { id, owner }
    }

    /// Claims an owner invitation (no API key) and returns the owner key's token.
    pub async fn claim(&self, invitation: &str, name: &str) -> String {
        let (s, k) = self
            .call(
                Method::POST,
                "/v1/invitations/claim",
                None,
                Some(json!({ "invitation": invitation, "name": name })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "claim invitation: {k}");
        k["token"].as_str().expect("token").to_owned()
    }

    /// Issues a key of `role` (with member purposes) and returns its token.
    pub async fn key(&self, tenant: &str, issuer: &str, role: &str, purposes: &[&str]) -> String {
        let (s, k) = self
            .post(
                &format!("/v1/tenants/{tenant}/keys"),
                issuer,
                json!({ "name": role, "role": role, "purposes": purposes }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "create key: {k}");
        k["token"].as_str().expect("token").to_owned()
    }

    /// Creates a tenant and one subject in it, the start of most record tests.
    pub async fn tenant_and_subject(&self, name: &str) -> (TenantFixture, String) {
        let tenant = self.tenant(name).await;
        let subject = self.subject(&tenant).await;
        (tenant, subject)
    }

    /// Creates a subject; returns its id.
    pub async fn subject(&self, tenant: &TenantFixture) -> String {
        let (s, b) = self
            .post(
                &format!("/v1/tenants/{}/subjects", tenant.id),
                &tenant.owner,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "create subject: {b}");
        b["id"].as_str().expect("subject id").to_owned()
    }

    /// Creates a record; returns its id.
    pub async fn record(
        &self,
        tenant: &TenantFixture,
        subject: &str,
        collection: &str,
        fields: Value,
    ) -> String {
        let (s, b) = self
            .post(
                &format!("/v1/tenants/{}/subjects/{subject}/records", tenant.id),
                &tenant.owner,
                json!({ "collection": collection, "fields": fields }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "create record: {b}");
        b["id"].as_str().expect("record id").to_owned()
    }

    /// Creates a `contact` record with just a name and an email, the record most tests need;
    /// returns its id.
    pub async fn contact(
        &self,
        tenant: &TenantFixture,
        subject: &str,
        name: &str,
        email: &str,
    ) -> String {
        self.record(
            tenant,
            subject,
            "contact",
            json!({ "name": name, "email": email }),
        )
        .await
    }

    /// Starts a record rotation job for `tenant` as the operator and checks it is accepted;
    /// returns the answer (its `jobs`). The rotation and metrics suites both start jobs this way.
    pub async fn rotate_records(&self, tenant: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/keys/rotate-records",
                &self.operator,
                json!({ "tenant": tenant }),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "rotate records: {body}");
        body
    }

    /// The tenant's audit log filtered by `query` (e.g. `action=key_rotate`), read by its owner
    /// and checked to answer 200: suites in several crates read a tenant's log this way to
    /// check what was recorded.
    pub async fn tenant_audit(&self, tenant: &TenantFixture, query: &str) -> Value {
        let (status, log) = self
            .get(
                &format!("/v1/tenants/{}/audit?{query}", tenant.id),
                &tenant.owner,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "tenant audit {query}: {log}");
        log
    }

    /// Reads record `record` of `subject` as the tenant's owner for `essential.service`: the
    /// plain read that suites in several crates make to check a record still opens.
    pub async fn read_for_service(
        &self,
        tenant: &TenantFixture,
        subject: &str,
        record: &str,
    ) -> (StatusCode, Value) {
        self.get(
            &format!(
                "/v1/tenants/{}/subjects/{subject}/records/{record}?purpose=essential.service",
                tenant.id
            ),
            &tenant.owner,
        )
        .await
    }

    /// Every byte of every file in the data directory (database, WAL, keys…).
    pub fn data_dir_bytes(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(bytes) = std::fs::read(&p) {
                    out.push((p, bytes));
                }
            }
        }
        out
    }
}

impl TestServer {
    /// Stops serving (and the background workers) but keeps the data directory and the
    /// PostgreSQL schema, so another server can be started on them (`Options::join`).
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(schema) = self.schema.take() {
            // Drop the schema from a plain thread: Drop cannot await, and the test's runtime
            // may be shutting down.
            let url = postgres_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async move {
                        use sqlx::Connection as _;
                        if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                            let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                            let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                                .execute(&mut conn)
                                .await;
                        }
                    });
                }
            })
            .join();
        }
        log_scan::assert_clean();
    }
}

/// What `GET /v1/doctor` of a test server looks at: its temporary data directory, root key
/// file and certificate (on PostgreSQL, the server's own store only).
fn doctor_setup(
    dir: &std::path::Path,
    key_dir: &std::path::Path,
    backend: Backend,
    tls: Option<&(PathBuf, PathBuf)>,
) -> ward_doctor::Setup {
    let key_file = key_dir.join("root.key");
    ward_doctor::Setup {
        data_dir: Some(dir.to_path_buf()),
        database: (backend == Backend::Sqlite)
            .then(|| ward_doctor::Database::Sqlite(dir.join("ward.db"))),
        root_key: Some(ward_doctor::RootKey {
            provider: Arc::new(FileKeyProvider::new(&key_file)),
            file: Some(key_file),
        }),
        policy: None,
        tls_cert: tls.map(|(cert, _)| cert.clone()),
        retention_interval: None,
        backup: None,
    }
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

//! Crash safety: a real `ward serve` process is SIGKILLed at random moments while concurrent
//! clients create, rectify and erase, and a retention sweep runs; after each kill the server
//! must start again and keep every promise it made before dying.
//!
//! After every kill:
//! - `ward audit verify` passes on what the dead process left (before the restart);
//! - every acknowledged record is there with its acknowledged revision (or the next one, when
//!   an update was in flight and committed without its answer reaching the client);
//! - every acknowledged erasure stays erased;
//! - nothing is half-applied: every record on disk has its allowed `record_create` event,
//!   every allowed `record_create` event has its record (unless its subject was erased), and
//!   every record's revision is one more than its allowed `record_update` events;
//! - the server starts cleanly (healthy, no error logged).
//!
//! Kill points come from a seeded generator; the seed is printed and `WARD_CRASH_SEED`
//! replays a run. `WARD_CRASH_KILLS` sets the kill points per backend (default 50).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command};

const WORKERS: u64 = 6;
const PURPOSE: &str = "essential.service";

/// A small deterministic generator (SplitMix64): the kill points and the workload must
/// replay from the printed seed, and nothing here needs unpredictability.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A name made of letters: digits could read as a payment card number, which Ward refuses.
fn letters(mut n: u64) -> String {
    let mut out = String::new();
    while n > 0 {
        out.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
    }
    out
}

/// Where the server keeps its data.
#[derive(Clone)]
enum Backend {
    Sqlite,
    /// A database created for the run (dropped at the end) on the test server.
    Postgres {
        url: String,
    },
}

struct Deployment {
    dir: PathBuf,
    backend: Backend,
    port: u16,
    client: reqwest::Client,
}

impl Deployment {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec!["--data-dir".to_owned(), self.dir.display().to_string()];
        if let Backend::Postgres { url } = &self.backend {
            args.extend(["--database-url".to_owned(), url.clone()]);
        }
        args
    }

    /// Starts `ward serve` and waits until it answers; returns the operator token when this
    /// start printed one (the first start).
    async fn start(&self) -> (Child, Option<String>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
            .arg("serve")
            .args(self.args())
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--log-format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ward serve");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                assert!(
                    !line.contains("\"level\":\"ERROR\""),
                    "ward serve logged an error: {line}"
                );
            }
        });
        // Start-up lines go to this task; the rest of stdout is drained so the server never
        // blocks on a full pipe.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let token = tokio::task::spawn_blocking(move || {
            let mut token = None;
            loop {
                let line = rx
                    .recv_timeout(Duration::from_secs(60))
                    .expect("ward serve starts within a minute");
                if let Some(t) = line.strip_prefix("Operator token (shown once, store it now): ") {
                    token = Some(t.trim().to_owned());
                }
                if line.starts_with("Ward listening on") {
                    std::thread::spawn(move || while rx.recv().is_ok() {});
                    return token;
                }
            }
        })
        .await
        .expect("start-up reader");
        let health = self
            .client
            .get(self.url("/healthz"))
            .send()
            .await
            .expect("healthz answers");
        assert_eq!(health.status(), StatusCode::OK, "healthz after start");
        (child, token)
    }

    /// `ward audit verify` on the deployment while no server runs.
    async fn verify_audit(&self) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ward"));
        command.args(["audit", "verify"]).args(self.args());
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("join")
            .expect("run ward audit verify");
        assert!(
            out.status.success(),
            "ward audit verify failed after a kill:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Option<(StatusCode, Value)> {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.ok()?;
        let status = response.status();
        let body = response.json::<Value>().await.ok()?;
        Some((status, body))
    }
}

/// What one worker was told (acknowledged) and what it had in flight when the server died.
#[derive(Default)]
struct Ledger {
    /// Record → (subject, acknowledged revision, an update in flight).
    records: BTreeMap<String, (String, i64, bool)>,
    /// Subjects whose erasure was acknowledged.
    erased: BTreeSet<String>,
    /// Subjects with an erasure in flight (it may or may not have committed).
    erasing: BTreeSet<String>,
    /// Subjects this worker created and were acknowledged, not erased.
    subjects: Vec<String>,
}

struct Tenant {
    id: String,
    owner: String,
    operator: String,
}

/// Runs one worker until a request fails (the server died) or `stop` is set.
async fn work(
    d: Arc<Deployment>,
    t: Arc<Tenant>,
    mut rng: Rng,
    stop: Arc<AtomicBool>,
    mut ledger: Ledger,
) -> Ledger {
    use reqwest::Method;
    let base = format!("/v1/tenants/{}", t.id);
    while !stop.load(Ordering::Relaxed) {
        let dice = rng.below(100);
        let live: Vec<&String> = ledger
            .records
            .iter()
            .filter(|(_, (s, _, _))| !ledger.erased.contains(s) && !ledger.erasing.contains(s))
            .map(|(r, _)| r)
            .collect();
        if dice < 40 || live.is_empty() {
            // A new record, in a new subject one time in four.
            let subject = if ledger.subjects.is_empty() || rng.below(4) == 0 {
                let Some((s, b)) = d
                    .call(
                        Method::POST,
                        &format!("{base}/subjects"),
                        &t.owner,
                        Some(json!({})),
                    )
                    .await
                else {
                    break;
                };
                assert_eq!(s, StatusCode::CREATED, "create subject: {b}");
                let id = b["id"].as_str().expect("subject id").to_owned();
                ledger.subjects.push(id.clone());
                id
            } else {
                ledger.subjects[rng.below(ledger.subjects.len() as u64) as usize].clone()
            };
            let n = letters(rng.next());
            let body = json!({"collection": "contact", "fields": {"name": format!("Person {n}"), "email": format!("{n}@example.com")}});
            let Some((s, b)) = d
                .call(
                    Method::POST,
                    &format!("{base}/subjects/{subject}/records"),
                    &t.owner,
                    Some(body),
                )
                .await
            else {
                break;
            };
            assert_eq!(s, StatusCode::CREATED, "create record: {b}");
            let record = b["id"].as_str().expect("record id").to_owned();
            let revision = b["revision"].as_i64().expect("revision");
            ledger.records.insert(record, (subject, revision, false));
        } else if dice < 80 {
            let record = live[rng.below(live.len() as u64) as usize].clone();
            let (subject, _, in_flight) = ledger.records.get_mut(&record).expect("known record");
            let subject = subject.clone();
            *in_flight = true;
            let body = json!({"fields": {"name": format!("Renamed {}", letters(rng.next()))}});
            let path = format!("{base}/subjects/{subject}/records/{record}?purpose={PURPOSE}");
            let Some((s, b)) = d.call(Method::PATCH, &path, &t.owner, Some(body)).await else {
                break;
            };
            assert_eq!(s, StatusCode::OK, "update record: {b}");
            let entry = ledger.records.get_mut(&record).expect("known record");
            entry.1 = b["revision"].as_i64().expect("revision");
            entry.2 = false;
        } else if dice < 90 && !ledger.subjects.is_empty() {
            let at = rng.below(ledger.subjects.len() as u64) as usize;
            let subject = ledger.subjects.swap_remove(at);
            ledger.erasing.insert(subject.clone());
            let Some((s, b)) = d
                .call(
                    Method::POST,
                    &format!("{base}/subjects/{subject}/erase"),
                    &t.owner,
                    None,
                )
                .await
            else {
                break;
            };
            assert_eq!(s, StatusCode::OK, "erase subject: {b}");
            ledger.erasing.remove(&subject);
            ledger.erased.insert(subject);
        } else {
            let Some((s, b)) = d
                .call(Method::POST, "/v1/retention/run", &t.operator, None)
                .await
            else {
                break;
            };
            assert!(s.is_success(), "retention run: {s} {b}");
        }
    }
    ledger
}

/// Every event of one action, allowed, in the tenant's audit log.
async fn events(d: &Deployment, t: &Tenant, action: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!(
            "/v1/tenants/{}/audit?action={action}&outcome=allowed&limit=1000",
            t.id
        );
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (s, b) = d
            .call(reqwest::Method::GET, &path, &t.owner, None)
            .await
            .expect("audit page");
        assert_eq!(s, StatusCode::OK, "audit page: {b}");
        out.extend(b["events"].as_array().expect("events").iter().cloned());
        match b["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// Checks every promise after a restart.
async fn check(d: &Deployment, t: &Tenant, ledgers: &mut [Ledger], kill: usize) {
    use reqwest::Method;
    let base = format!("/v1/tenants/{}", t.id);
    let creates = events(d, t, "record_create").await;
    let updates = events(d, t, "record_update").await;
    let erasures: BTreeSet<String> = events(d, t, "subject_erase")
        .await
        .iter()
        .filter_map(|e| e["subject"].as_str().map(str::to_owned))
        .collect();
    // Creations a crash left without their key, rolled back (and said so) at the next start.
    let rolled_back: BTreeSet<String> = events(d, t, "crash_recovery")
        .await
        .iter()
        .filter(|e| e["detail"]["rolled_back"] == "subject_create")
        .filter_map(|e| e["subject"].as_str().map(str::to_owned))
        .collect();
    let gone = |s: &String| erasures.contains(s) || rolled_back.contains(s);
    let subjects: BTreeSet<String> = events(d, t, "subject_create")
        .await
        .iter()
        .filter_map(|e| e["subject"].as_str().map(str::to_owned))
        .collect();
    let created: BTreeMap<String, String> = creates
        .iter()
        .filter_map(|e| {
            Some((
                e["record"].as_str()?.to_owned(),
                e["subject"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut update_count: BTreeMap<String, i64> = BTreeMap::new();
    for e in &updates {
        if let Some(r) = e["record"].as_str() {
            *update_count.entry(r.to_owned()).or_default() += 1;
        }
    }

    // Acknowledged state is there; what was in flight is settled by what is found.
    for ledger in ledgers.iter_mut() {
        for subject in std::mem::take(&mut ledger.erasing) {
            if erasures.contains(&subject) {
                ledger.erased.insert(subject);
            } else {
                ledger.subjects.push(subject);
            }
        }
        for subject in &ledger.erased {
            let (s, _) = d
                .call(
                    Method::GET,
                    &format!("{base}/subjects/{subject}"),
                    &t.owner,
                    None,
                )
                .await
                .expect("get subject");
            assert_eq!(
                s,
                StatusCode::NOT_FOUND,
                "kill {kill}: erased subject {subject} is back"
            );
            assert!(
                erasures.contains(subject),
                "kill {kill}: acknowledged erasure of {subject} has no audit event"
            );
        }
        for (record, (subject, acked, in_flight)) in ledger.records.iter_mut() {
            if ledger.erased.contains(subject) || erasures.contains(subject) {
                continue;
            }
            assert!(
                !rolled_back.contains(subject),
                "kill {kill}: acknowledged subject {subject} was rolled back"
            );
            let path = format!("{base}/subjects/{subject}/records/{record}?purpose={PURPOSE}");
            let (s, b) = d
                .call(Method::GET, &path, &t.owner, None)
                .await
                .expect("get record");
            assert_eq!(
                s,
                StatusCode::OK,
                "kill {kill}: acknowledged record {record} is missing: {b}"
            );
            let revision = b["revision"].as_i64().expect("revision");
            let allowed = if *in_flight {
                *acked..=*acked + 1
            } else {
                *acked..=*acked
            };
            assert!(
                allowed.contains(&revision),
                "kill {kill}: record {record} has revision {revision}, acknowledged {acked}"
            );
            *acked = revision;
            *in_flight = false;
        }
    }

    // Nothing half-applied: records and their events agree, whoever was told what.
    for subject in subjects.iter().filter(|s| !gone(s)) {
        let path = format!("{base}/subjects/{subject}/records?purpose={PURPOSE}");
        let (s, b) = d
            .call(Method::GET, &path, &t.owner, None)
            .await
            .expect("list records");
        assert_eq!(
            s,
            StatusCode::OK,
            "kill {kill}: subject {subject} has its subject_create event but is gone without an erasure or a rollback: {b}"
        );
        for r in b.as_array().expect("records") {
            let id = r["id"].as_str().expect("record id");
            assert!(
                created.contains_key(id),
                "kill {kill}: record {id} exists without its record_create event"
            );
            let revision = r["revision"].as_i64().expect("revision");
            let expected = 1 + update_count.get(id).copied().unwrap_or(0);
            assert_eq!(
                revision,
                expected,
                "kill {kill}: record {id} at revision {revision} has {} update events",
                expected - 1
            );
        }
    }
    for (record, subject) in &created {
        if gone(subject) {
            continue;
        }
        let path = format!("{base}/subjects/{subject}/records/{record}?purpose={PURPOSE}");
        let (s, b) = d
            .call(Method::GET, &path, &t.owner, None)
            .await
            .expect("get record");
        assert_eq!(
            s,
            StatusCode::OK,
            "kill {kill}: record_create event of {record} without its record: {b}"
        );
    }
}

/// The run's generator (from `WARD_CRASH_SEED`, else the clock) and its kill points (from
/// `WARD_CRASH_KILLS`, else `default_kills`), printed so that a failure can be replayed.
fn plan(label: &str, default_kills: usize) -> (Rng, usize) {
    let seed = std::env::var("WARD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_nanos() as u64
        });
    let kills: usize = std::env::var("WARD_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_kills);
    println!(
        "crash test ({label}): seed {seed} (WARD_CRASH_SEED={seed} replays it), {kills} kill points"
    );
    (Rng(seed), kills)
}

impl Deployment {
    /// A deployment in `dir` (or `WARD_CRASH_DIR`) on a free port.
    fn new(dir: &tempfile::TempDir, backend: Backend) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        Self {
            dir: std::env::var_os("WARD_CRASH_DIR")
                .map_or_else(|| dir.path().join("data"), PathBuf::from),
            backend,
            port,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }
}

async fn run(backend: Backend, label: &str) {
    let (mut rng, kills) = plan(label, 50);
    let dir = tempfile::tempdir().expect("temp dir");
    let d = Arc::new(Deployment::new(&dir, backend));
    let (mut child, token) = d.start().await;
    let operator = token.expect("first start prints the operator token");
    let (s, created) = d
        .call(
            reqwest::Method::POST,
            "/v1/tenants",
            &operator,
            Some(json!({"name": "Crash"})),
        )
        .await
        .expect("create tenant");
    assert_eq!(s, StatusCode::CREATED, "create tenant: {created}");
    let invitation = created["invitation"]["token"]
        .as_str()
        .expect("invitation")
        .to_owned();
    let claim = d
        .client
        .post(d.url("/v1/invitations/claim"))
        .json(&json!({"invitation": invitation, "name": "owner"}))
        .send()
        .await
        .expect("claim");
    let owner = claim.json::<Value>().await.expect("claim body")["token"]
        .as_str()
        .expect("owner token")
        .to_owned();
    let t = Arc::new(Tenant {
        id: created["id"].as_str().expect("tenant id").to_owned(),
        owner,
        operator,
    });

    let mut ledgers: Vec<Ledger> = (0..WORKERS).map(|_| Ledger::default()).collect();
    for kill in 0..kills {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = std::mem::take(&mut ledgers)
            .into_iter()
            .enumerate()
            .map(|(i, ledger)| {
                let rng = Rng(rng.next() ^ i as u64);
                tokio::spawn(work(d.clone(), t.clone(), rng, stop.clone(), ledger))
            })
            .collect();
        let delay = Duration::from_millis(20 + rng.below(300));
        println!("kill {kill}: SIGKILL after {delay:?}");
        tokio::time::sleep(delay).await;
        sigkill(&mut child);
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            ledgers.push(w.await.expect("worker"));
        }
        d.verify_audit().await;
        let (restarted, again) = d.start().await;
        assert!(
            again.is_none(),
            "a restart must not mint a new operator token"
        );
        child = restarted;
        check(&d, &t, &mut ledgers, kill).await;
    }
    sigkill(&mut child);
    d.verify_audit().await;
    let acked: usize = ledgers.iter().map(|l| l.records.len()).sum();
    let erased: usize = ledgers.iter().map(|l| l.erased.len()).sum();
    println!(
        "crash test ({label}): {kills} kills survived, {acked} acknowledged records, {erased} acknowledged erasures"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_sigkill_at_random_moments() {
    run(Backend::Sqlite, "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_sigkill_at_random_moments() {
    let admin = ward_testkit::postgres_url();
    let name = format!("ward_crash_{}", std::process::id());
    let pool = sqlx_admin(&admin).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&pool)
    .await
    .expect("drop old database");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .expect("create database");
    let url = with_database(&admin, &name);
    run(Backend::Postgres { url }, "PostgreSQL").await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&pool)
    .await
    .expect("drop database");
}

/// Events written straight to the store before the bundling crash test's kills: one complete
/// segment of the SQLite subject index and a few more.
const BUNDLING_EVENTS: u64 = 65_536 + 64;

/// What a SQLite deployment's audit log holds: (rows, their lowest and highest index) and
/// (events in bundles, the start of the first bundle and the end of the last).
type Parts = (
    (i64, Option<i64>, Option<i64>),
    (i64, Option<i64>, Option<i64>),
);

fn audit_parts(d: &Deployment) -> Parts {
    let db = rusqlite::Connection::open(d.dir.join("ward.db")).expect("open ward.db");
    let rows = db
        .query_row(
            "SELECT COUNT(*), MIN(idx), MAX(idx) FROM audit_events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("rows");
    let bundles = db
        .query_row(
            "SELECT COALESCE(SUM(count), 0), MIN(first), MAX(first + count) FROM audit_bundles",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("bundles");
    (rows, bundles)
}

/// `ward serve` moves a freshly sealed segment of the audit log into bundles between commits
/// and while idle, one transaction a step. SIGKILLed at random moments while it does, every
/// event is a row or in a bundle, never both and never neither, the bundles end where the
/// rows begin, and `ward audit verify` passes; restarted, the server finishes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_bundling_survives_sigkill_at_random_moments() {
    let (mut rng, kills) = plan("SQLite bundling", 8);
    let dir = tempfile::tempdir().expect("temp dir");
    let d = Deployment::new(&dir, Backend::Sqlite);
    let (mut child, _) = d.start().await;
    sigkill(&mut child);
    {
        // The log a busy server would have written, appended by this process; the last
        // commit completes the segment, and the store is closed before it is sealed.
        let store = ward_store::SqliteStore::open(&d.dir.join("ward.db"))
            .await
            .expect("open the store");
        let mut i = 0;
        while i < BUNDLING_EVENTS {
            let ops: Vec<ward_store::Op> = (i..(i + 1000).min(BUNDLING_EVENTS))
                .map(|j| ward_store::Op::Audit(Box::new(bundling_event(j))))
                .collect();
            i += ops.len() as u64;
            ward_store::Store::commit(&store, ops)
                .await
                .expect("append");
        }
    }
    let ((rows, _, _), (bundled, _, _)) = audit_parts(&d);
    let total = rows + bundled;
    // Each kill starts again from the log as written, not yet sealed, so that every kill point
    // lands somewhere in the sealing and bundling (about a second from the spawn here).
    let pristine = tempfile::tempdir().expect("temp dir");
    copy_files(&d.dir, pristine.path());
    let mut bundled_at_kills = Vec::new();
    for kill in 0..kills {
        copy_files(pristine.path(), &d.dir);
        let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
            .arg("serve")
            .args(d.args())
            .args(["--listen", &format!("127.0.0.1:{}", d.port)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ward serve");
        let delay = Duration::from_millis(rng.below(1_500));
        tokio::time::sleep(delay).await;
        sigkill(&mut child);
        let ((rows, lowest, highest), (bundled, first, end)) = audit_parts(&d);
        println!("kill {kill} after {delay:?}: {bundled} events bundled, {rows} rows");
        // Rows and bundles each gap-free, the bundles ending where the rows begin, and no
        // event lost (the server may have appended its own).
        assert_eq!(rows, highest.map_or(0, |h| h + 1) - lowest.unwrap_or(0));
        assert_eq!(bundled, end.unwrap_or(0) - first.unwrap_or(0));
        if let (Some(end), Some(lowest)) = (end, lowest) {
            assert_eq!(end, lowest, "the bundles end where the rows begin");
        }
        assert!(rows + bundled >= total, "an event was lost");
        bundled_at_kills.push(bundled);
        d.verify_audit().await;
    }
    println!("events bundled at the kills: {bundled_at_kills:?}");
    // Left running, the server bundles the whole sealed segment.
    let (mut child, _) = d.start().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while (audit_parts(&d).1).0 < 65_536 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sealed segment was not bundled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sigkill(&mut child);
    assert_eq!((audit_parts(&d).1).0, 65_536);
    d.verify_audit().await;
}

/// Copies the files of a SQLite data directory (not the `-shm` index, which the next opener
/// rebuilds from the WAL), replacing those in `to`, and drops a WAL `from` does not have.
fn copy_files(from: &std::path::Path, to: &std::path::Path) {
    for wal in ["ward.db-wal", "ward.db-shm", "keys.db-wal", "keys.db-shm"] {
        let _ = std::fs::remove_file(to.join(wal));
    }
    for entry in std::fs::read_dir(from).expect("read data dir") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name();
        if entry.path().is_file() && !name.to_string_lossy().ends_with("-shm") {
            std::fs::copy(entry.path(), to.join(&name)).expect("copy");
        }
    }
}

/// Event `i` of the bundling crash test.
fn bundling_event(i: u64) -> ward_audit::AuditEvent {
    ward_audit::AuditEvent {
        at: time::OffsetDateTime::now_utc(),
        request_id: format!("bundling-{i}"),
        actor: ward_audit::Actor {
            id: "key:crash".into(),
            role: "member".into(),
        },
        tenant: Some(uuid::Uuid::from_u128(1 + u128::from(i % 4))),
        subject: Some(uuid::Uuid::from_u128(100 + u128::from(i % 97))),
        record: None,
        collection: Some("contact".into()),
        purpose: Some(PURPOSE.into()),
        action: ward_audit::Action::RecordRead,
        outcome: ward_audit::Outcome::Allowed,
        reason: None,
        client: None,
        detail: None,
    }
}

/// SIGKILL (what `Child::kill` sends on Unix) and reap.
fn sigkill(child: &mut Child) {
    child.kill().expect("SIGKILL ward serve");
    child.wait().expect("reap ward serve");
}

async fn sqlx_admin(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// The URL with its database replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(head, _)| head);
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

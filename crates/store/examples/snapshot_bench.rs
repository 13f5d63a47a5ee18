//! Measures snapshot export and import on a store of realistic size (BENCHMARKS.md).
//!
//! ```text
//! cargo run --release -p ward-store --example snapshot_bench -- [RECORDS] [CIPHERTEXT_BYTES]
//! ```
//!
//! Builds a SQLite store of RECORDS records (default 1,000,000) of CIPHERTEXT_BYTES bytes of
//! ciphertext each (default 1,000), ten records and one blind-index entry per record per
//! subject and one audit event per subject; then times, each on its own: a data-stream
//! export from SQLite (to a file), its import into an empty SQLite store, its import into an
//! empty PostgreSQL schema at `WARD_TEST_DATABASE_URL` (when set) and an export from there.
//! Every figure is wall-clock time on this machine; nothing is asserted. With
//! `SNAPSHOT_BENCH_KEEP=PATH` the SQLite export is kept at PATH (how the fuzz corpus's dump
//! seeds are made: `SNAPSHOT_BENCH_KEEP=fuzz/corpus/snapshot_dump/small-data-v2 … -- 30 24`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use std::io::{Read, Write};
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, Actor, AuditEvent, Outcome};
use ward_store::{
    IndexEntry, Op, PostgresStore, RecordRow, SnapshotStream, SnapshotSummary, SqliteStore, Store,
    SubjectRow, TenantRow,
};

const SUBJECTS_PER_COMMIT: usize = 100;
const RECORDS_PER_SUBJECT: usize = 10;
const WRITERS: usize = 4;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap()
}

/// Bytes that do not compress, like ciphertext.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn populate(store: Arc<dyn Store>, records: usize, size: usize) {
    let tenant = Uuid::now_v7();
    store
        .commit(vec![Op::InsertTenant(TenantRow {
            id: tenant,
            name: "bench".into(),
            status: ward_store::TenantStatus::Active,
            region: None,
            wrapped_key: Some(noise(0, 60)),
            root_key_version: 1,
            key_version: 1,
            settings: "{}".into(),
            created_at: now(),
            status_changed_at: now(),
            destroy_after: None,
        })])
        .await
        .unwrap();
    let subjects = records / RECORDS_PER_SUBJECT;
    let commits = subjects.div_ceil(SUBJECTS_PER_COMMIT);
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for c in (w..commits).step_by(WRITERS) {
                let mut ops = Vec::new();
                for s in 0..SUBJECTS_PER_COMMIT {
                    let n = (c * SUBJECTS_PER_COMMIT + s) as u64;
                    if n as usize >= subjects {
                        break;
                    }
                    let subject = Uuid::now_v7();
                    ops.push(Op::InsertSubject(SubjectRow {
                        tenant,
                        id: subject,
                        external_ref: Some(noise(n, 32)),
                        wrapped_key: Some(noise(n + 1, 60)),
                        key_version: 1,
                        record_key_version: 1,
                        restrictions: "[]".into(),
                        hold_until: None,
                        created_at: now(),
                    }));
                    for r in 0..RECORDS_PER_SUBJECT as u64 {
                        let mut hash = [0u8; 32];
                        hash.copy_from_slice(&noise(n * 100 + r, 32));
                        ops.push(Op::InsertRecord {
                            record: RecordRow {
                                tenant,
                                subject,
                                id: Uuid::now_v7(),
                                collection: "contact".into(),
                                ciphertext: noise(n * 1000 + r, size),
                                key_version: 1,
                                revision: 1,
                                created_at: now(),
                                updated_at: now(),
                                expires_at: None,
                            },
                            index: vec![IndexEntry {
                                field: "email".into(),
                                hash,
                            }],
                        });
                    }
                    ops.push(Op::Audit(Box::new(AuditEvent {
                        at: now(),
                        request_id: format!("req-{n}"),
                        actor: Actor {
                            id: "bench".into(),
                            role: "owner".into(),
                        },
                        tenant: Some(tenant),
                        subject: Some(subject),
                        record: None,
                        collection: Some("contact".into()),
                        purpose: Some("essential.service".into()),
                        action: Action::RecordCreate,
                        outcome: Outcome::Allowed,
                        reason: None,
                        client: None,
                        detail: None,
                    })));
                }
                store.commit(ops).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

async fn export_to(store: &dyn Store, path: &Path) -> SnapshotSummary {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let path = path.to_path_buf();
    let write = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::create(path).unwrap();
        while let Some(buf) = rx.blocking_recv() {
            file.write_all(&buf).unwrap();
        }
        file.sync_all().unwrap();
    });
    let summary = store
        .export_snapshot(SnapshotStream::Data, tx)
        .await
        .unwrap();
    write.await.unwrap();
    summary
}

async fn import_from(store: &dyn Store, path: &Path) -> SnapshotSummary {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let path = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(path).unwrap();
        loop {
            let mut buf = vec![0u8; 1 << 20];
            let n = file.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            buf.truncate(n);
            if tx.blocking_send(Bytes::from(buf)).is_err() {
                break;
            }
        }
    });
    let summary = store
        .import_snapshot(SnapshotStream::Data, rx)
        .await
        .unwrap();
    read.await.unwrap();
    summary
}

/// CPU seconds this process has used (user + system), from `/proc/self/stat`: on a machine
/// shared with other work, wall-clock time alone says more about the neighbours.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name; USER_HZ is
    // 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

struct Clock {
    wall: Instant,
    cpu: f64,
}

impl Clock {
    fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: cpu_seconds(),
        }
    }
}

fn report(what: &str, summary: &SnapshotSummary, clock: Clock) {
    let secs = clock.wall.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - clock.cpu;
    println!(
        "{what:<28} {secs:>6.1} s wall {cpu:>6.1} s cpu  {:>6.1} MB/s  {:>8.0} rows/s  \
         ({} rows, {:.1} MB)",
        summary.bytes as f64 / 1e6 / secs,
        summary.rows() as f64 / secs,
        summary.rows(),
        summary.bytes as f64 / 1e6,
    );
}

fn same_file(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let records: usize = args.next().map_or(1_000_000, |a| a.parse().unwrap());
    let size: usize = args.next().map_or(1_000, |a| a.parse().unwrap());
    let dir =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    let dump = dir.path().join("data.snapshot");

    let source: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("source.db"))
            .await
            .unwrap(),
    );
    let started = Clock::start();
    populate(Arc::clone(&source), records, size).await;
    println!(
        "built a SQLite store of {records} records of {size} B in {:.1} s",
        started.wall.elapsed().as_secs_f64()
    );

    let started = Clock::start();
    let summary = export_to(&*source, &dump).await;
    report("export SQLite -> file", &summary, started);
    if let Ok(keep) = std::env::var("SNAPSHOT_BENCH_KEEP") {
        std::fs::copy(&dump, keep).unwrap();
    }
    drop(source);

    let target: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("target.db"))
            .await
            .unwrap(),
    );
    let started = Clock::start();
    let summary = import_from(&*target, &dump).await;
    report("import file -> SQLite", &summary, started);
    let started = Clock::start();
    let again = dir.path().join("again.snapshot");
    let summary = export_to(&*target, &again).await;
    report("export restored SQLite", &summary, started);
    println!(
        "the restored store's dump is byte-identical: {}",
        same_file(&dump, &again)
    );
    drop(target);

    if let Ok(url) = std::env::var("WARD_TEST_DATABASE_URL") {
        let schema = format!("bench_{}", Uuid::new_v4().simple());
        let pg: Arc<dyn Store> =
            Arc::new(PostgresStore::open_in_schema(&url, &schema).await.unwrap());
        let started = Clock::start();
        let summary = import_from(&*pg, &dump).await;
        report("import file -> PostgreSQL", &summary, started);
        let started = Clock::start();
        let pg_dump = dir.path().join("pg.snapshot");
        let summary = export_to(&*pg, &pg_dump).await;
        report("export PostgreSQL -> file", &summary, started);
        println!(
            "the PostgreSQL dump is byte-identical to the SQLite one: {}",
            same_file(&dump, &pg_dump)
        );
        drop(pg);
        let mut conn = PgConnection::connect(&url).await.unwrap();
        conn.execute(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
            .await
            .unwrap();
    }
}

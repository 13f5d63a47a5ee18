//! sqlx against tokio-postgres on the two statement shapes Ward's PostgreSQL backend spends
//! its time on, with Ward's pool sizes, on the same database in one run:
//!
//! - **get**: one indexed `SELECT` of a record by (tenant, subject, id), 64 clients. sqlx's
//!   pool (8 connections, statements prepared once per connection, no ping before a
//!   checkout: as Ward uses it) against
//!   deadpool-postgres (8 connections checked out per query, statements cached) and against
//!   8 shared tokio-postgres clients that pipeline the queries of every task using them.
//! - **append**: a group commit of 32 audit events as Ward's writer makes it (`BEGIN`, the
//!   head row locked, one `INSERT … UNNEST` that also moves the head, `COMMIT`), 2 writers.
//!   sqlx waits for each of the four statements in turn; tokio-postgres sends `BEGIN` with the
//!   locking read and the append with `COMMIT`, waiting twice.
//!
//! Usage: `cargo run --release -- [URL] [SECONDS]` (defaults: the test database, 10 s per
//! phase). Each phase runs twice, alternated, so a drift of the machine shows as a spread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

const CLIENTS: usize = 64;
const POOL: usize = 8;
const WRITERS: usize = 2;
const ROWS: u64 = 100_000;
const EVENTS_PER_COMMIT: usize = 32;
const SCHEMA: &str = "driver_bench";

const GET: &str = "SELECT collection, ciphertext, key_version, created_at \
                   FROM driver_bench.records WHERE tenant = $1 AND subject = $2 AND id = $3";
const LOCK_HEAD: &str =
    "SELECT size, chain FROM driver_bench.audit_head WHERE id = 1 FOR UPDATE";
const APPEND: &str = "WITH appended AS ( \
        INSERT INTO driver_bench.audit_events (idx, at, tenant, subject, actor, action, \
        outcome, event, chain) \
        SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BYTEA[], $4::BYTEA[], $5::TEXT[], \
        $6::TEXT[], $7::TEXT[], $8::BYTEA[], $9::BYTEA[])) \
    UPDATE driver_bench.audit_head SET size = $10, chain = $11 WHERE id = 1";

/// A 16-byte id from a number, as the fixture's SQL builds them.
fn id(n: u64) -> Vec<u8> {
    u128::from(n).to_be_bytes().to_vec()
}

/// The key of fixture record `n`: tenant 0, subject `n / 10`, id `n`.
fn key(n: u64) -> [Vec<u8>; 3] {
    [id(0), id(n / 10), id(n)]
}

/// A cheap spread of record numbers, the same sequence for every driver.
fn pick(task: usize, i: u64) -> u64 {
    (task as u64 * 7_919 + i * 104_729) % ROWS
}

/// One group commit's arrays, the shapes Ward binds.
struct Events {
    idx: Vec<i64>,
    at: Vec<i64>,
    tenant: Vec<Vec<u8>>,
    subject: Vec<Vec<u8>>,
    actor: Vec<String>,
    action: Vec<String>,
    outcome: Vec<String>,
    event: Vec<Vec<u8>>,
    chain: Vec<Vec<u8>>,
}

impl Events {
    fn after(size: i64) -> Self {
        let n = EVENTS_PER_COMMIT as i64;
        let idx: Vec<i64> = (size..size + n).collect();
        Self {
            at: idx.iter().map(|i| 1_765_000_000_000_000 + i).collect(),
            tenant: idx.iter().map(|_| id(0)).collect(),
            subject: idx.iter().map(|&i| id(i as u64 % ROWS)).collect(),
            actor: idx
                .iter()
                .map(|_| "key:0192b6f0-aaaa-7bbb-8ccc-0123456789ab".into())
                .collect(),
            action: idx.iter().map(|_| "record_read".into()).collect(),
            outcome: idx.iter().map(|_| "allowed".into()).collect(),
            // About what a packed event weighs.
            event: idx
                .iter()
                .map(|&i| [i.to_be_bytes().as_slice(); 24].concat())
                .collect(),
            chain: idx
                .iter()
                .map(|&i| [i.to_be_bytes().as_slice(); 4].concat())
                .collect(),
            idx,
        }
    }
}

async fn setup(url: &str) -> anyhow::Result<()> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA};
             CREATE TABLE {SCHEMA}.records (tenant BYTEA NOT NULL, subject BYTEA NOT NULL,
                 id BYTEA NOT NULL, collection TEXT NOT NULL, ciphertext BYTEA NOT NULL,
                 key_version INTEGER NOT NULL, created_at BIGINT NOT NULL,
                 PRIMARY KEY (tenant, subject, id));
             INSERT INTO {SCHEMA}.records SELECT decode(lpad('0', 32, '0'), 'hex'),
                 decode(lpad(to_hex(n / 10), 32, '0'), 'hex'),
                 decode(lpad(to_hex(n), 32, '0'), 'hex'), 'contact',
                 decode(repeat(md5(n::text), 5), 'hex'), 1, n
                 FROM generate_series(0, {last}) n;
             CREATE TABLE {SCHEMA}.audit_events (idx BIGINT PRIMARY KEY, at BIGINT NOT NULL,
                 tenant BYTEA, subject BYTEA, actor TEXT NOT NULL, action TEXT NOT NULL,
                 outcome TEXT NOT NULL, event BYTEA NOT NULL, chain BYTEA NOT NULL);
             CREATE INDEX ON {SCHEMA}.audit_events (tenant, idx);
             CREATE INDEX ON {SCHEMA}.audit_events (tenant, subject, idx)
                 WHERE subject IS NOT NULL;
             CREATE TABLE {SCHEMA}.audit_head (id INTEGER PRIMARY KEY, size BIGINT NOT NULL,
                 chain BYTEA NOT NULL);
             INSERT INTO {SCHEMA}.audit_head VALUES (1, 0, '\\x00');",
            last = ROWS - 1
        ))
        .await
        .context("fixture")?;
    // Alone: VACUUM refuses to run in the implicit transaction of a multi-statement string.
    client
        .batch_execute(&format!("VACUUM ANALYZE {SCHEMA}.records"))
        .await?;
    Ok(())
}

/// Runs `task` on `tasks` tasks for `secs` seconds and prints operations per second.
async fn phase<F, Fut>(
    name: &str,
    tasks: usize,
    per_op: u64,
    secs: u64,
    task: F,
) -> anyhow::Result<()>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let task = Arc::new(task);
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (task, done) = (task.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while Instant::now() < end {
                    task(t, i).await?;
                    i += 1;
                    done.fetch_add(per_op, Ordering::Relaxed);
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for h in handles {
        h.await??;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!("{name:<58} {rate:>10.0} /s");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let secs: u64 = args.next().map_or(Ok(10), |s| s.parse())?;
    setup(&url).await?;

    // As Ward configures its pools: no ping before each checkout.
    let sqlx_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(POOL as u32)
        .test_before_acquire(false)
        .connect(&url)
        .await?;
    let sqlx_writers = sqlx::postgres::PgPoolOptions::new()
        .max_connections(WRITERS as u32)
        .test_before_acquire(false)
        .connect(&url)
        .await?;
    let config: tokio_postgres::Config = url.parse()?;
    let manager = deadpool_postgres::Manager::from_config(
        config.clone(),
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    let dead_pool = deadpool_postgres::Pool::builder(manager)
        .max_size(POOL)
        .build()?;
    let mut shared = Vec::new();
    for _ in 0..POOL {
        let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        let stmt = client.prepare(GET).await?;
        shared.push((client, stmt));
    }
    let shared = Arc::new(shared);
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        // Prepared up front: a statement prepared on first use would be parsed after the
        // `COMMIT` pipelined behind it, and run outside the transaction.
        let lock = client.prepare(LOCK_HEAD).await?;
        let append = client.prepare(APPEND).await?;
        writers.push(tokio::sync::Mutex::new((client, lock, append)));
    }
    let writers = Arc::new(writers);

    println!("{CLIENTS} clients, {POOL} connections for gets, {WRITERS} writers, {secs} s a phase");
    for round in 1..=2 {
        println!("-- round {round}");
        let pool = sqlx_pool.clone();
        phase("get, sqlx pool", CLIENTS, 1, secs, move |t, i| {
            let pool = pool.clone();
            async move {
                let [a, b, c] = key(pick(t, i));
                let row = sqlx::query(GET)
                    .bind(a)
                    .bind(b)
                    .bind(c)
                    .fetch_optional(&pool)
                    .await?;
                anyhow::ensure!(row.is_some(), "record missing");
                Ok(())
            }
        })
        .await?;
        let pool = dead_pool.clone();
        phase(
            "get, tokio-postgres, deadpool checkout",
            CLIENTS,
            1,
            secs,
            move |t, i| {
                let pool = pool.clone();
                async move {
                    let client = pool.get().await?;
                    let stmt = client.prepare_cached(GET).await?;
                    let [a, b, c] = key(pick(t, i));
                    let row = client.query_opt(&stmt, &[&a, &b, &c]).await?;
                    anyhow::ensure!(row.is_some(), "record missing");
                    Ok(())
                }
            },
        )
        .await?;
        let clients = shared.clone();
        phase(
            "get, tokio-postgres, shared clients (pipelined)",
            CLIENTS,
            1,
            secs,
            move |t, i| {
                let clients = clients.clone();
                async move {
                    let (client, stmt) = &clients[t % POOL];
                    let [a, b, c] = key(pick(t, i));
                    let row = client.query_opt(stmt, &[&a, &b, &c]).await?;
                    anyhow::ensure!(row.is_some(), "record missing");
                    Ok(())
                }
            },
        )
        .await?;

        let pool = sqlx_writers.clone();
        let per = EVENTS_PER_COMMIT as u64;
        phase(
            "append (events), sqlx: 4 round trips",
            WRITERS,
            per,
            secs,
            move |_, _| {
                let pool = pool.clone();
                async move {
                    let mut tx = pool.begin().await?;
                    let (size, _chain): (i64, Vec<u8>) =
                        sqlx::query_as(LOCK_HEAD).fetch_one(&mut *tx).await?;
                    let e = Events::after(size);
                    let next = size + EVENTS_PER_COMMIT as i64;
                    sqlx::query(APPEND)
                        .bind(&e.idx)
                        .bind(&e.at)
                        .bind(&e.tenant)
                        .bind(&e.subject)
                        .bind(&e.actor)
                        .bind(&e.action)
                        .bind(&e.outcome)
                        .bind(&e.event)
                        .bind(&e.chain)
                        .bind(next)
                        .bind(id(next as u64))
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                }
            },
        )
        .await?;
        let writers_now = writers.clone();
        phase(
            "append (events), tokio-postgres: 2 pipelined waits",
            WRITERS,
            per,
            secs,
            move |t, _| {
                let writers = writers_now.clone();
                async move {
                    let guard = writers[t].lock().await;
                    let (client, lock, append) = &*guard;
                    let (began, head) =
                        tokio::join!(client.batch_execute("BEGIN"), client.query_one(lock, &[]));
                    began?;
                    let size: i64 = head?.get(0);
                    let e = Events::after(size);
                    let next = size + EVENTS_PER_COMMIT as i64;
                    let chain = id(next as u64);
                    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 11] = [
                        &e.idx, &e.at, &e.tenant, &e.subject, &e.actor, &e.action, &e.outcome,
                        &e.event, &e.chain, &next, &chain,
                    ];
                    let (appended, committed) = tokio::join!(
                        client.execute(append, &params),
                        client.batch_execute("COMMIT")
                    );
                    appended?;
                    committed?;
                    Ok(())
                }
            },
        )
        .await?;
    }
    let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA {SCHEMA} CASCADE"))
        .await?;
    Ok(())
}

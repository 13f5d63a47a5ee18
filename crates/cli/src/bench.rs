//! `ward bench`: record put/get throughput in-process (vault API) and over HTTP (a real
//! server on a loopback port), on a scratch data directory. Figures go to BENCHMARKS.md.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde_json::json;
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::Outcome;
use crate::config::Settings;

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Operations per phase.
    #[arg(long, default_value_t = 20_000)]
    ops: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Skip the HTTP phases.
    #[arg(long)]
    no_http: bool,
    /// Also measure the audit log: append and verify rates over --audit-events events,
    /// inclusion and consistency proof latency and the tenant view filtered by subject on
    /// that log, its bytes on disk per event, and what auditing costs a store put and the
    /// record API's puts and gets; with --postgres, the append, proofs and bytes per event
    /// there too (next to a copy of the log with its events stored as JSON, as before packing).
    #[arg(long)]
    audit: bool,
    /// Events in the log --audit builds (e.g. 10000000 to see how reads scale).
    #[arg(long, default_value_t = 1_000_000, value_name = "EVENTS")]
    audit_events: usize,
    /// Also measure the detection rules: how many audit events per second one core
    /// evaluates (1,000,000 events, or --ops if larger, in commits of 100), on a workload that
    /// is mostly reads by many principals with some denials; and, unless --no-http, what they
    /// cost the record API: HTTP puts and gets with monitoring enabled and disabled, alternated.
    #[arg(long)]
    rules: bool,
    /// Also measure rights: erasure time against record count, and exporting a subject with
    /// 1,000 records among this many other records (e.g. 1000000).
    #[arg(long, value_name = "OTHER_RECORDS")]
    rights: Option<usize>,
    /// Also measure a retention sweep of this many expired records (e.g. 1000000), with the
    /// worst read latency seen by a concurrent client during the sweep.
    #[arg(long, value_name = "RECORDS")]
    retention: Option<usize>,
    /// Also measure a record rotation (new subject keys, every record re-encrypted) over this
    /// many records (e.g. 200000), with the worst latency of a concurrent reader.
    #[arg(long, value_name = "RECORDS")]
    rotation: Option<usize>,
    /// Only load a tenant with this many contact records over 1,000 subjects (e.g. 1000000)
    /// into the new data directory --fixture-dir and keep it, printing the tenant and an owner
    /// token, so that `ward tenant export` (or `ward serve`) can be measured on it alone, e.g.
    /// under `/usr/bin/time -v`.
    #[arg(long, value_name = "RECORDS", requires = "fixture_dir")]
    export_fixture: Option<usize>,
    /// Where --export-fixture writes its data directory (must not exist yet).
    #[arg(long, value_name = "DIR")]
    fixture_dir: Option<std::path::PathBuf>,
    /// Also run the put/get phases on this PostgreSQL database (in a scratch schema that is
    /// dropped afterwards), next to SQLite in the same run.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
}

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<Outcome> {
    if let (Some(n), Some(dir)) = (args.export_fixture, &args.fixture_dir) {
        return crate::bench_more::export_fixture(dir, n).await;
    }
    let dir = std::env::temp_dir().join(format!("ward-bench-{}", Uuid::now_v7()));
    let settings = Settings {
        data_dir: dir.clone(),
        database_url: None,
        policy: None,
        key_provider: crate::config::KeyProviderKind::File,
        key_file: None,
        key_command: None,
        origin: crate::config::DEFAULT_ORIGIN.into(),
        limits: Default::default(),
    };
    println!("== SQLite (embedded, WAL, synchronous=FULL)");
    let result = bench(&settings, &args).await;
    let result = match (result, &args.postgres) {
        (Ok(_), Some(url)) => postgres_phase(&dir, url, &args).await,
        (other, _) => other,
    };
    let result = match result {
        Ok(_) if args.audit => audit_bench(&dir, &args).await,
        other => other,
    };
    let result = match (result, &args.postgres) {
        (Ok(_), Some(url)) if args.audit => postgres_audit(url, &args).await,
        (other, _) => other,
    };
    let result = match result {
        Ok(_) if args.rules => rules_bench(&args),
        other => other,
    };
    let result = match result {
        Ok(_) if args.rules && !args.no_http => rules_overhead(&dir, &args).await,
        other => other,
    };
    let result = match (result, args.rights) {
        (Ok(_), Some(n)) => crate::bench_more::rights(&dir, n).await,
        (other, _) => other,
    };
    let result = match (result, args.retention) {
        (Ok(_), Some(n)) => crate::bench_more::retention(&dir, n).await,
        (other, _) => other,
    };
    let result = match (result, args.rotation) {
        (Ok(_), Some(n)) => crate::bench_more::rotation(&dir, n).await,
        (other, _) => other,
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The same put/get phases on PostgreSQL, in a scratch schema.
async fn postgres_phase(
    dir: &std::path::Path,
    url: &str,
    args: &BenchArgs,
) -> anyhow::Result<Outcome> {
    use sqlx::Connection as _;
    let schema = format!("ward_bench_{}", Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await?;
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    println!("== PostgreSQL ({url}, schema {schema})");
    let settings = Settings {
        data_dir: dir.join("postgres"),
        database_url: Some(scoped),
        policy: None,
        key_provider: crate::config::KeyProviderKind::File,
        key_file: None,
        key_command: None,
        origin: crate::config::DEFAULT_ORIGIN.into(),
        limits: Default::default(),
    };
    let result = bench(&settings, args).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut conn)
        .await?;
    result
}

async fn bench(settings: &Settings, args: &BenchArgs) -> anyhow::Result<Outcome> {
    let fx =
        crate::bench_more::fixture(settings, std::sync::Arc::new(ward_vault::SystemClock)).await?;
    let (vault, c, token) = (fx.vault, fx.ctx, fx.token);
    let tenant = ward_vault::TenantOut {
        id: fx.tenant,
        ..fx.tenant_out
    };
    let subjects: Vec<Uuid> = {
        let mut v = Vec::new();
        for _ in 0..args.concurrency {
            v.push(vault.create_subject(&c, tenant.id, None).await?.id);
        }
        v
    };
    println!(
        "machine: {} cores; ops per phase: {}; concurrency: {}",
        num_cpus(),
        args.ops,
        args.concurrency
    );

    let fields = contact_fields();
    let (put, get, ids) = vault_puts_and_gets(&vault, &c, tenant.id, &subjects, args).await?;
    report("in-process put", args.ops, put);
    report("in-process get", args.ops, get);
    // Batch calls of 1,000 records, one after another: what a bulk import gets.
    let started = std::time::Instant::now();
    crate::bench_more::load(
        &vault,
        &c,
        tenant.id,
        &subjects,
        args.ops,
        "contact",
        &serde_json::Value::Object(fields.clone()),
    )
    .await?;
    report(
        "batch put (1,000/call)",
        args.ops,
        started.elapsed().as_secs_f64(),
    );

    if !args.no_http {
        let (addr, http_put, http_get) =
            http_put_get(&vault, tenant.id, &token, &subjects, &ids, args).await?;
        report("HTTP put", args.ops, http_put);
        report("HTTP get", args.ops, http_get);
        if settings.database_url.is_some() {
            // A second server on the same database (a vault, store and pools of its own, in
            // this process), the clients split between the two.
            let second = crate::setup::open_wrapped(
                settings,
                std::sync::Arc::new(ward_vault::SystemClock),
                |store| store,
            )
            .await?
            .vault;
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr2 = listener.local_addr()?;
            let state = ward_server::AppState::new(second);
            tokio::spawn(ward_server::serve(listener, state, std::future::pending()));
            let both = [addr, addr2];
            let base = format!("/v1/tenants/{}", tenant.id);
            let auth = format!("Bearer {token}");
            let body = bytes::Bytes::from(serde_json::to_vec(
                &json!({"collection": "contact", "fields": fields}),
            )?);
            let put2 = http_phase(args, &both, hyper::StatusCode::CREATED, {
                let (base, auth, subjects) = (base.clone(), auth.clone(), subjects.clone());
                move |i| put_request(&base, &auth, subjects[i % subjects.len()], &body)
            })
            .await?;
            report("HTTP put, 2 servers", args.ops, put2);
            let get2 = http_phase(args, &both, hyper::StatusCode::OK, {
                let ids = ids.clone();
                move |i| get_request(&base, &auth, ids[i % ids.len()])
            })
            .await?;
            report("HTTP get, 2 servers", args.ops, get2);
        }
    }
    Ok(Outcome::Ok)
}

fn contact_fields() -> serde_json::Map<String, serde_json::Value> {
    let fields =
        json!({"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0018"});
    fields.as_object().cloned().unwrap_or_default()
}

/// The in-process record phases: `args.ops` puts spread over `subjects`, then as many gets of
/// what was put. Returns both durations and the (subject, record) ids written.
async fn vault_puts_and_gets(
    vault: &ward_vault::Vault,
    c: &ward_vault::RequestContext,
    tenant: Uuid,
    subjects: &[Uuid],
    args: &BenchArgs,
) -> anyhow::Result<(f64, f64, Arc<Vec<(Uuid, Uuid)>>)> {
    let fields = contact_fields();
    let subjects: Arc<[Uuid]> = subjects.into();
    let ids = Arc::new(tokio::sync::Mutex::new(Vec::with_capacity(args.ops)));
    let put = run_phase(args, {
        let (vault, c, subjects, ids) = (vault.clone(), c.clone(), subjects.clone(), ids.clone());
        move |i| {
            let (vault, c, fields, ids) = (vault.clone(), c.clone(), fields.clone(), ids.clone());
            let s = subjects[i % subjects.len()];
            async move {
                let r = vault
                    .create_record(
                        &c,
                        tenant,
                        s,
                        "contact",
                        &fields,
                        &ward_vault::WriteOptions::default(),
                    )
                    .await?;
                ids.lock().await.push((s, r.id));
                Ok(())
            }
        }
    })
    .await?;
    let ids = Arc::new(ids.lock().await.clone());
    let get = run_phase(args, {
        let (vault, c, ids) = (vault.clone(), c.clone(), ids.clone());
        move |i| {
            let (vault, c) = (vault.clone(), c.clone());
            let (s, r) = ids[i % ids.len()];
            async move {
                vault
                    .read_record(&c, tenant, s, r, "essential.service")
                    .await?;
                Ok(())
            }
        }
    })
    .await?;
    Ok((put, get, ids))
}

/// What the audit write costs the record API: the same in-process puts and gets, each on a
/// fresh data directory, once with the real store and once over one that drops audit events.
async fn record_api_audit_cost(dir: &std::path::Path, args: &BenchArgs) -> anyhow::Result<()> {
    let mut rates = Vec::new();
    for audited in [false, true] {
        let settings = crate::bench_more::scratch(
            dir,
            if audited {
                "api-audited"
            } else {
                "api-unaudited"
            },
        );
        let clock = Arc::new(ward_vault::SystemClock);
        let fx = crate::bench_more::fixture_wrapped(&settings, clock, |store| {
            if audited {
                store
            } else {
                Arc::new(ward_store::hooked::Hooked::new(
                    store,
                    crate::bench_unaudited::Unaudited,
                ))
            }
        })
        .await?;
        let mut subjects = Vec::new();
        for _ in 0..args.concurrency {
            subjects.push(fx.vault.create_subject(&fx.ctx, fx.tenant, None).await?.id);
        }
        let (put, get, _) =
            vault_puts_and_gets(&fx.vault, &fx.ctx, fx.tenant, &subjects, args).await?;
        let label = if audited {
            "audited"
        } else {
            "without audit writes"
        };
        report(&format!("record API put, {label}"), args.ops, put);
        report(&format!("record API get, {label}"), args.ops, get);
        rates.push((args.ops as f64 / put, args.ops as f64 / get));
    }
    println!(
        "audit cost on the record API: put {:.1}%, get {:.1}% of throughput",
        (1.0 - rates[1].0 / rates[0].0) * 100.0,
        (1.0 - rates[1].1 / rates[0].1) * 100.0
    );
    Ok(())
}

/// Detection rules: events evaluated per second on one core, with the default rules and
/// thresholds, over events that look like production traffic (reads of many subjects by a
/// thousand principals, one denial in fifty) spread over an hour.
fn rules_bench(args: &BenchArgs) -> anyhow::Result<Outcome> {
    use ward_audit::{Action, Actor, AuditEvent, Outcome as AuditOutcome};
    let total = args.ops.max(1_000_000);
    let start = time::OffsetDateTime::now_utc();
    let tenant = Uuid::now_v7();
    let events: Vec<AuditEvent> = (0..total)
        .map(|i| AuditEvent {
            at: start + time::Duration::microseconds((i as i64) * 3_600_000_000 / total as i64),
            request_id: format!("bench-{i}"),
            actor: Actor {
                id: format!("key:{}", Uuid::from_u128((i % 1000) as u128)),
                role: "member".into(),
            },
            tenant: Some(tenant),
            subject: Some(Uuid::from_u128((i * 7919 % 100_000) as u128)),
            record: None,
            collection: Some("contact".into()),
            purpose: Some("essential.service".into()),
            action: Action::RecordRead,
            outcome: if (i / 1000) % 50 == 0 {
                AuditOutcome::Denied
            } else {
                AuditOutcome::Allowed
            },
            reason: ((i / 1000) % 50 == 0).then(|| "purpose not allowed".into()),
            client: None,
            detail: None,
        })
        .collect();
    let settings = ward_policy::MonitoringSettings::default();
    let started = Instant::now();
    let hits = ward_vault::evaluate_rules(&settings, events, 100);
    report("rule evaluation", total, started.elapsed().as_secs_f64());
    println!("  ({hits} rule hits)");
    Ok(Outcome::Ok)
}

/// What the detection rules cost the record API: the HTTP put and get phases on fresh data
/// directories whose policy enables monitoring (default rules) or disables it, alternating
/// off, on, off, on so that drift of a shared machine falls on both sides alike.
async fn rules_overhead(dir: &std::path::Path, args: &BenchArgs) -> anyhow::Result<Outcome> {
    let mut totals = [[0.0f64; 2]; 2];
    for (round, monitoring) in [false, true, false, true].into_iter().enumerate() {
        let label = if monitoring { "on" } else { "off" };
        let mut settings = crate::bench_more::scratch(dir, &format!("rules-{label}-{round}"));
        std::fs::create_dir_all(&settings.data_dir)?;
        let policy = settings.data_dir.join("policy.toml");
        let mut text = ward_policy::EXAMPLE_POLICY.to_owned();
        if !monitoring {
            text.push_str("\n[monitoring]\nenabled = false\n");
        }
        std::fs::write(&policy, text)?;
        settings.policy = Some(policy);
        let fx = crate::bench_more::fixture(&settings, Arc::new(ward_vault::SystemClock)).await?;
        let mut subjects = Vec::new();
        for _ in 0..args.concurrency {
            subjects.push(fx.vault.create_subject(&fx.ctx, fx.tenant, None).await?.id);
        }
        let (_, _, ids) =
            vault_puts_and_gets(&fx.vault, &fx.ctx, fx.tenant, &subjects, args).await?;
        let (_, put, get) =
            http_put_get(&fx.vault, fx.tenant, &fx.token, &subjects, &ids, args).await?;
        report(&format!("HTTP put, rules {label}"), args.ops, put);
        report(&format!("HTTP get, rules {label}"), args.ops, get);
        let side = usize::from(monitoring);
        totals[side][0] += put;
        totals[side][1] += get;
    }
    let cost = |i: usize| (1.0 - totals[0][i] / totals[1][i]) * 100.0;
    println!(
        "detection rules cost on the record API over HTTP: put {:.1}%, get {:.1}% of throughput",
        cost(0),
        cost(1)
    );
    Ok(Outcome::Ok)
}

/// The HTTP put and get phases against one server on `vault`: puts spread over `subjects`,
/// gets of `ids`. Returns the server's address (it keeps serving) and both durations.
async fn http_put_get(
    vault: &ward_vault::Vault,
    tenant: Uuid,
    token: &str,
    subjects: &[Uuid],
    ids: &Arc<Vec<(Uuid, Uuid)>>,
    args: &BenchArgs,
) -> anyhow::Result<(std::net::SocketAddr, f64, f64)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = ward_server::AppState::new(vault.clone());
    tokio::spawn(ward_server::serve(listener, state, std::future::pending()));
    let base = format!("/v1/tenants/{tenant}");
    let auth = format!("Bearer {token}");
    let body = bytes::Bytes::from(serde_json::to_vec(
        &json!({"collection": "contact", "fields": contact_fields()}),
    )?);
    let put = http_phase(args, &[addr], hyper::StatusCode::CREATED, {
        let (base, auth, subjects) = (base.clone(), auth.clone(), subjects.to_vec());
        move |i| put_request(&base, &auth, subjects[i % subjects.len()], &body)
    })
    .await?;
    let get = http_phase(args, &[addr], hyper::StatusCode::OK, {
        let (base, auth, ids) = (base, auth, ids.clone());
        move |i| get_request(&base, &auth, ids[i % ids.len()])
    })
    .await?;
    Ok((addr, put, get))
}

type BenchRequest = hyper::http::Result<hyper::Request<http_body_util::Full<bytes::Bytes>>>;

/// A record creation for `subject`.
fn put_request(base: &str, auth: &str, subject: Uuid, body: &bytes::Bytes) -> BenchRequest {
    hyper::Request::post(format!("{base}/subjects/{subject}/records"))
        .header(hyper::header::AUTHORIZATION, auth)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(body.clone()))
}

/// A read of record `r` of subject `s` for the service purpose.
fn get_request(base: &str, auth: &str, (s, r): (Uuid, Uuid)) -> BenchRequest {
    hyper::Request::get(format!(
        "{base}/subjects/{s}/records/{r}?purpose=essential.service"
    ))
    .header(hyper::header::AUTHORIZATION, auth)
    .body(http_body_util::Full::new(bytes::Bytes::new()))
}

/// Audit log: raw append rate in batched commits, verification rate, and what auditing costs
/// a record put (the same store puts with and without their audit event).
async fn audit_bench(dir: &std::path::Path, args: &BenchArgs) -> anyhow::Result<Outcome> {
    use ward_audit::SigningKey;
    use ward_store::{Op, SqliteStore, Store};
    let path = dir.join("audit-bench.db");
    let store = SqliteStore::open(&path).await?;
    let total = args.audit_events.max(1);
    append_bench_events(&store, total).await?;
    let key = SigningKey::generate()?;
    let head = store.audit_head().await?;
    let cp = key.sign("bench", head.size, head.root, head.chain, 0);
    store
        .commit(vec![Op::SaveCheckpoint(ward_store::CheckpointRow {
            tree_size: head.size,
            checkpoint: serde_json::to_string(&cp)?,
            frontier: head.frontier,
            created_at: time::OffsetDateTime::now_utc(),
        })])
        .await?;
    // The writer seals the subject index between commits and while idle; what it has not
    // sealed yet is sealed now, so that verification is timed alone.
    let started = Instant::now();
    let sealed = store.seal_audit_subject_index().await?;
    println!(
        "audit subject index: {sealed} segments sealed ({:.2} s for what the writer had not \
         sealed between commits)",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let verified = ward_vault::verify_log(&store, &key.public_key(), |_, _| {}).await?;
    report(
        "audit verify",
        verified.tree_size as usize,
        started.elapsed().as_secs_f64(),
    );
    proof_latency(&store).await?;
    audit_reads(&store, &path).await?;
    put_audit_cost(store, args).await?;
    record_api_audit_cost(dir, args).await?;
    Ok(Outcome::Ok)
}

/// Appends `total` bench events in commits of 1,000 and reports the rate.
async fn append_bench_events(store: &dyn ward_store::Store, total: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut i = 0;
    while i < total {
        let ops: Vec<ward_store::Op> = (i..(i + 1000).min(total))
            .map(|j| ward_store::Op::Audit(Box::new(bench_event(j))))
            .collect();
        i += ops.len();
        store.commit(ops).await?;
    }
    report("audit append", total, started.elapsed().as_secs_f64());
    Ok(())
}

/// The audit append and proofs on PostgreSQL, in a scratch schema.
async fn postgres_audit(url: &str, args: &BenchArgs) -> anyhow::Result<Outcome> {
    let schema = format!("ward_bench_{}", Uuid::now_v7().simple());
    println!("== PostgreSQL audit log ({url}, schema {schema})");
    let store = ward_store::PostgresStore::open_in_schema(url, &schema).await?;
    let measured = async {
        append_bench_events(&store, args.audit_events.max(1)).await?;
        proof_latency(&store).await?;
        postgres_bytes_per_event(&store, &schema).await
    }
    .await;
    let dropped = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(store.pool())
        .await;
    measured?;
    dropped?;
    Ok(Outcome::Ok)
}

/// The audit log's bytes per event on PostgreSQL (the events table with its indexes and
/// TOAST), next to the same rows with their events as JSON, as stored before events were
/// packed: a copy built in the same run, so both are measured alike.
async fn postgres_bytes_per_event(
    store: &ward_store::PostgresStore,
    schema: &str,
) -> anyhow::Result<()> {
    use ward_store::Store;
    let pool = store.pool();
    let size = store.audit_head().await?.size;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {schema}.audit_events_json (LIKE {schema}.audit_events INCLUDING ALL)"
    )))
    .execute(pool)
    .await?;
    let mut from = 0;
    loop {
        let page = store.audit_page(from, 10_000).await?;
        let Some(last) = page.last_idx() else { break };
        let mut columns = (
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        );
        for r in page.iter() {
            columns.0.push(r.idx as i64);
            columns.1.push(r.at);
            columns.2.push(r.tenant.map(|t| t.as_bytes().to_vec()));
            columns.3.push(r.subject.map(|t| t.as_bytes().to_vec()));
            columns.4.push(r.actor.to_owned());
            columns.5.push(r.action.to_owned());
            columns.6.push(r.outcome.to_owned());
            columns.7.push(r.event.to_vec());
            columns.8.push(r.chain.to_vec());
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {schema}.audit_events_json SELECT * FROM UNNEST($1::BIGINT[], \
             $2::BIGINT[], $3::BYTEA[], $4::BYTEA[], $5::TEXT[], $6::TEXT[], $7::TEXT[], \
             $8::BYTEA[], $9::BYTEA[])"
        )))
        .bind(columns.0)
        .bind(columns.1)
        .bind(columns.2)
        .bind(columns.3)
        .bind(columns.4)
        .bind(columns.5)
        .bind(columns.6)
        .bind(columns.7)
        .bind(columns.8)
        .execute(pool)
        .await?;
        from = last + 1;
    }
    let bytes = |table: &str| {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT pg_total_relation_size('{schema}.{table}')"
        )))
        .fetch_one(pool)
    };
    let (packed, json) = (
        bytes("audit_events").await?,
        bytes("audit_events_json").await?,
    );
    println!(
        "audit log on disk (PostgreSQL): {:.0} bytes per event (events table, indexes, TOAST; \
         {size} events); with the events as JSON, as before: {:.0}",
        packed as f64 / size as f64,
        json as f64 / size as f64
    );
    Ok(())
}

/// Proofs built from the stored tree, one at a time (what a proof request waits for before
/// its own audit event): latency percentiles over random indices and sizes, next to one proof
/// built the way it was before the tree was stored, from every leaf.
async fn proof_latency(store: &dyn ward_store::Store) -> anyhow::Result<()> {
    const PROOFS: usize = 2_000;
    let size = store.audit_head().await?.size;
    // A fixed xorshift sequence: the same picks in every run.
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |below: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % below
    };
    for kind in ["inclusion", "consistency"] {
        let mut micros = Vec::with_capacity(PROOFS);
        for _ in 0..PROOFS {
            let started = Instant::now();
            if kind == "inclusion" {
                ward_vault::inclusion_from_store(store, next(size), size).await?;
            } else {
                ward_vault::consistency_from_store(store, 1 + next(size), size).await?;
            }
            micros.push(started.elapsed().as_secs_f64() * 1e6);
        }
        micros.sort_by(f64::total_cmp);
        let at = |q: f64| micros[((micros.len() - 1) as f64 * q) as usize];
        println!(
            "audit {kind} proof at {size} events (stored tree): p50 {:.0} µs, p99 {:.0} µs, \
             max {:.0} µs over {PROOFS}",
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
    let started = Instant::now();
    let leaves = store.audit_leaves(0..size).await?;
    ward_audit::inclusion_proof(&leaves, next(size), size)?;
    println!(
        "audit inclusion proof at {size} events from every leaf (before): {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

/// What the audit event costs a put: the same store puts, with and without their event.
async fn put_audit_cost(store: ward_store::SqliteStore, args: &BenchArgs) -> anyhow::Result<()> {
    use ward_store::{Op, Store};
    let (tenant, subject) = (Uuid::now_v7(), Uuid::now_v7());
    let now = time::OffsetDateTime::now_utc();
    store
        .commit(vec![
            Op::InsertTenant(ward_store::TenantRow {
                id: tenant,
                name: "bench".into(),
                status: ward_store::TenantStatus::Active,
                region: None,
                wrapped_key: Some(vec![0; 60]),
                root_key_version: 1,
                key_version: 1,
                settings: "{}".into(),
                created_at: now,
                status_changed_at: now,
                destroy_after: None,
            }),
            Op::InsertSubject(ward_store::SubjectRow {
                tenant,
                id: subject,
                external_ref: None,
                wrapped_key: Some(vec![0; 61]),
                key_version: 1,
                record_key_version: 1,
                restrictions: "[]".into(),
                hold_until: None,
                created_at: now,
            }),
        ])
        .await?;
    let store = Arc::new(store);
    let mut rates = Vec::new();
    for with_audit in [false, true] {
        let secs = run_phase(args, {
            let store = store.clone();
            move |i| {
                let store = store.clone();
                async move {
                    let record = ward_store::RecordRow {
                        tenant,
                        subject,
                        id: Uuid::now_v7(),
                        collection: "contact".into(),
                        ciphertext: vec![7; 120],
                        key_version: 1,
                        revision: 1,
                        created_at: now,
                        updated_at: now,
                        expires_at: None,
                    };
                    let mut ops = vec![Op::InsertRecord {
                        record,
                        index: vec![],
                    }];
                    if with_audit {
                        ops.push(Op::Audit(Box::new(bench_event(i))));
                    }
                    store.commit(ops).await?;
                    Ok(())
                }
            }
        })
        .await?;
        report(
            if with_audit {
                "store put+audit"
            } else {
                "store put"
            },
            args.ops,
            secs,
        );
        rates.push(args.ops as f64 / secs);
    }
    println!(
        "audit cost on a store put: {:.1}% of throughput",
        (1.0 - rates[1] / rates[0]) * 100.0
    );
    Ok(())
}

/// Tenants and subjects per tenant the audit benchmark's events are spread over.
const BENCH_TENANTS: usize = 10;
const BENCH_SUBJECTS: usize = 10_000;

/// Bench tenant or subject `n` (fixed ids, so that queries can name them).
fn bench_id(kind: u128, n: usize) -> Uuid {
    Uuid::from_u128((kind << 64) | n as u128)
}

/// A record read's audit event as the API writes it (sizes realistic, ids fresh where the
/// API's are): event `i` is by one of [`BENCH_TENANTS`] tenants about one of their
/// [`BENCH_SUBJECTS`] subjects, so a subject's log is spread thinly over the whole log.
fn bench_event(i: usize) -> ward_audit::AuditEvent {
    use ward_audit::{Action, Actor, AuditEvent, Outcome as AuditOutcome};
    let spread = i.wrapping_mul(2_654_435_761) % (BENCH_TENANTS * BENCH_SUBJECTS);
    AuditEvent {
        at: time::OffsetDateTime::now_utc(),
        request_id: Uuid::now_v7().to_string(),
        actor: Actor {
            id: format!("key:{}", Uuid::nil()),
            role: "member".into(),
        },
        tenant: Some(bench_id(1, spread % BENCH_TENANTS)),
        subject: Some(bench_id(2, spread)),
        record: Some(Uuid::now_v7()),
        collection: Some("contact".into()),
        purpose: Some("essential.service".into()),
        action: Action::RecordRead,
        outcome: AuditOutcome::Allowed,
        reason: None,
        client: Some("0123456789abcdef0123456789abcdef".into()),
        detail: None,
    }
}

/// A tenant's audit view filtered by subject (a page of up to 100 events), for random
/// subjects: latency percentiles through the sealed segments' postings, each event read from
/// its bundle; then the log's bytes on disk per event after `VACUUM`.
async fn audit_reads(
    store: &ward_store::SqliteStore,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    use ward_store::{AuditQuery, Store};
    const QUERIES: usize = 1_000;
    let size = store.audit_head().await?.size;
    let sealed = store.seal_audit_subject_index().await?;
    let conn = ward_store::SqliteStore::open_connection(path)?;
    {
        let mut micros = Vec::with_capacity(QUERIES);
        let mut rows = 0;
        for q in 0..QUERIES {
            let spread = q.wrapping_mul(40_503) % (BENCH_TENANTS * BENCH_SUBJECTS);
            let query = AuditQuery {
                tenant: bench_id(1, spread % BENCH_TENANTS),
                subject: Some(bench_id(2, spread)),
                limit: 100,
                ..Default::default()
            };
            let started = Instant::now();
            rows += store.audit_query(&query).await?.len();
            micros.push(started.elapsed().as_secs_f64() * 1e6);
        }
        micros.sort_by(f64::total_cmp);
        let at = |q: f64| micros[((micros.len() - 1) as f64 * q) as usize];
        println!(
            "audit page by subject at {size} events ({sealed} sealed segments): p50 {:.0} µs, \
             p99 {:.0} µs over {QUERIES} subjects ({:.0} events a page)",
            at(0.5),
            at(0.99),
            rows as f64 / QUERIES as f64
        );
    }
    conn.execute_batch("VACUUM")?;
    let bytes = std::fs::metadata(path)?.len();
    println!(
        "audit log on disk: {:.0} bytes per event after VACUUM ({bytes} bytes, {size} events)",
        bytes as f64 / size as f64
    );
    Ok(())
}

/// Runs `ops` operations with `concurrency` workers; returns the elapsed seconds.
async fn run_phase<F, Fut>(args: &BenchArgs, op: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (op, next, total) = (op.clone(), next.clone(), args.ops);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(());
                }
                op(i).await?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// An HTTP phase: `args.ops` requests made by `make`, each answered `expect`, sent by
/// `args.concurrency` clients over one keep-alive HTTP/1.1 connection each (opened before the
/// clock starts).
///
/// The client is hyper's connection API rather than a full HTTP client: it shares the two
/// cores with the server it measures, so every microsecond it spends per request is taken
/// from the server. Like a load generator (wrk, oha), it builds each request from a ready path
/// and headers and only reads the status and drains the body.
async fn http_phase<F>(
    args: &BenchArgs,
    addrs: &[std::net::SocketAddr],
    expect: hyper::StatusCode,
    make: F,
) -> anyhow::Result<f64>
where
    F: Fn(usize) -> hyper::http::Result<hyper::Request<http_body_util::Full<bytes::Bytes>>>
        + Clone
        + Send
        + 'static,
{
    use http_body_util::BodyExt as _;
    let mut senders = Vec::with_capacity(args.concurrency);
    for client in 0..args.concurrency {
        // Clients spread evenly over the servers.
        let stream = tokio::net::TcpStream::connect(addrs[client % addrs.len()]).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        senders.push(sender);
    }
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for mut sender in senders {
        let (make, next, total) = (make.clone(), next.clone(), args.ops);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(());
                }
                let mut request = make(i)?;
                request.headers_mut().insert(
                    hyper::header::HOST,
                    hyper::header::HeaderValue::from_static("127.0.0.1"),
                );
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                anyhow::ensure!(
                    status == expect,
                    "answered {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(started.elapsed().as_secs_f64())
}

fn report(name: &str, ops: usize, secs: f64) {
    println!(
        "{name:<16} {ops:>8} ops in {secs:>7.2} s = {:>9.0} ops/s",
        ops as f64 / secs
    );
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

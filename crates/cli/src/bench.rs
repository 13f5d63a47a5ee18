//! `ward bench`: record put/get throughput in-process (vault API) and over HTTP (a real
//! server on a loopback port), on a scratch data directory. Figures go to BENCHMARKS.md.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use serde_json::json;
use tokio::net::TcpListener;
use uuid::Uuid;
use ward_vault::{NewKey, NewTenant, Principal, RequestContext, Role};

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
}

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<Outcome> {
    let dir = std::env::temp_dir().join(format!("ward-bench-{}", Uuid::now_v7()));
    let settings = Settings {
        data_dir: dir.clone(),
        policy: None,
        key_provider: crate::config::KeyProviderKind::File,
        key_command: None,
    };
    let result = bench(&settings, &args).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn bench(settings: &Settings, args: &BenchArgs) -> anyhow::Result<Outcome> {
    let opened = crate::setup::open(settings).await?;
    let vault = opened.vault.clone();
    let op_token = vault
        .bootstrap_operator()
        .await?
        .context("fresh data dir has no operator")?;
    let operator = vault
        .authenticate(Some(op_token.as_str()), "bench", None)
        .await?;
    let op_ctx = ctx(operator);
    let tenant = vault
        .create_tenant(
            &op_ctx,
            NewTenant {
                name: "bench".into(),
                region: None,
            },
        )
        .await?;
    let owner = vault
        .create_key(
            &op_ctx,
            tenant.id,
            NewKey {
                name: "bench".into(),
                role: "owner".into(),
                purposes: vec![],
            },
        )
        .await?;
    let token = owner.token.clone().unwrap_or_default();
    let principal = Principal {
        key_id: owner.id,
        tenant: Some(tenant.id),
        role: Role::Owner,
        purposes: Default::default(),
    };
    let c = ctx(principal);
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

    let fields =
        json!({"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0018"});
    let fields = fields.as_object().cloned().unwrap_or_default();
    let ids = Arc::new(tokio::sync::Mutex::new(Vec::with_capacity(args.ops)));
    let put = run_phase(args, {
        let (vault, c, subjects, fields, ids) = (
            vault.clone(),
            c.clone(),
            subjects.clone(),
            fields.clone(),
            ids.clone(),
        );
        move |i| {
            let (vault, c, fields, ids) = (vault.clone(), c.clone(), fields.clone(), ids.clone());
            let (t, s) = (tenant.id, subjects[i % subjects.len()]);
            async move {
                let r = vault.create_record(&c, t, s, "contact", &fields).await?;
                ids.lock().await.push((s, r.id));
                Ok(())
            }
        }
    })
    .await?;
    report("in-process put", args.ops, put);
    let ids = Arc::new(ids.lock().await.clone());
    let get = run_phase(args, {
        let (vault, c, ids) = (vault.clone(), c.clone(), ids.clone());
        move |i| {
            let (vault, c) = (vault.clone(), c.clone());
            let (s, r) = ids[i % ids.len()];
            async move {
                vault
                    .read_record(&c, tenant.id, s, r, "essential.service")
                    .await?;
                Ok(())
            }
        }
    })
    .await?;
    report("in-process get", args.ops, get);

    if !args.no_http {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = ward_server::AppState::new(vault.clone());
        tokio::spawn(ward_server::serve(listener, state, std::future::pending()));
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency)
            .build()?;
        let base = format!("http://{addr}/v1/tenants/{}", tenant.id);
        let auth = format!("Bearer {token}");
        let body = Arc::new(json!({"collection": "contact", "fields": fields}));
        let http_put = run_phase(args, {
            let (client, base, auth, subjects, body) = (
                client.clone(),
                base.clone(),
                auth.clone(),
                subjects.clone(),
                body.clone(),
            );
            move |i| {
                let url = format!("{base}/subjects/{}/records", subjects[i % subjects.len()]);
                let (client, auth, body) = (client.clone(), auth.clone(), body.clone());
                async move {
                    let r = client
                        .post(url)
                        .header("authorization", auth)
                        .json(&*body)
                        .send()
                        .await?;
                    anyhow::ensure!(r.status() == 201, "put answered {}", r.status());
                    Ok(())
                }
            }
        })
        .await?;
        report("HTTP put", args.ops, http_put);
        let http_get = run_phase(args, {
            let (client, base, auth, ids) =
                (client.clone(), base.clone(), auth.clone(), ids.clone());
            move |i| {
                let (s, r) = ids[i % ids.len()];
                let url = format!("{base}/subjects/{s}/records/{r}?purpose=essential.service");
                let (client, auth) = (client.clone(), auth.clone());
                async move {
                    let r = client.get(url).header("authorization", auth).send().await?;
                    anyhow::ensure!(r.status() == 200, "get answered {}", r.status());
                    Ok(())
                }
            }
        })
        .await?;
        report("HTTP get", args.ops, http_get);
    }
    Ok(Outcome::Ok)
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

fn report(name: &str, ops: usize, secs: f64) {
    println!(
        "{name:<16} {ops:>8} ops in {secs:>7.2} s = {:>9.0} ops/s",
        ops as f64 / secs
    );
}

fn ctx(principal: Principal) -> RequestContext {
    RequestContext {
        principal,
        request_id: "bench".into(),
        client_ip: None,
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

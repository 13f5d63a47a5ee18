//! The heavier `ward bench` phases: rights (export among many records, erasure against record
//! count) and retention (a large sweep with a concurrent reader watching its latency).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;
use uuid::Uuid;
use ward_vault::{
    BatchItem, ClaimInvitation, ManualClock, NewTenant, Principal, RequestContext,
    RetentionOptions, Role, Vault, WriteOptions,
};

use crate::Outcome;
use crate::config::{KeyProviderKind, Settings};

/// A fresh vault with one tenant, its owner key and an owner context.
pub(crate) struct Fixture {
    pub(crate) vault: Vault,
    pub(crate) tenant: Uuid,
    pub(crate) tenant_out: ward_vault::TenantOut,
    pub(crate) ctx: RequestContext,
    pub(crate) token: String,
}

pub(crate) async fn fixture(
    settings: &Settings,
    clock: Arc<dyn ward_vault::Clock>,
) -> anyhow::Result<Fixture> {
    fixture_wrapped(settings, clock, |store| store).await
}

/// Like [`fixture`], with the vault's store put behind `wrap`.
pub(crate) async fn fixture_wrapped(
    settings: &Settings,
    clock: Arc<dyn ward_vault::Clock>,
    wrap: impl FnOnce(Arc<dyn ward_store::Store>) -> Arc<dyn ward_store::Store>,
) -> anyhow::Result<Fixture> {
    let opened = crate::setup::open_wrapped(settings, clock, wrap).await?;
    let vault = opened.vault;
    let token = vault
        .bootstrap_operator()
        .await?
        .context("fresh data dir has no operator")?;
    let operator = vault
        .authenticate(Some(token.as_str()), "bench", None)
        .await?;
    let op = RequestContext {
        principal: operator,
        request_id: "bench".into(),
        client_ip: None,
    };
    let tenant = vault
        .create_tenant(
            &op,
            NewTenant {
                name: "bench".into(),
                region: None,
            },
        )
        .await?;
    // The operator holds no tenant key: the bench claims the tenant's owner invitation.
    let claimed = vault
        .claim_invitation(
            ClaimInvitation {
                invitation: tenant.invitation.token.clone(),
                name: Some("bench".into()),
                email: None,
                password: None,
            },
            "bench",
            None,
        )
        .await?;
    let ward_vault::Claimed::Key(owner) = claimed else {
        anyhow::bail!("a first-owner invitation yields a key");
    };
    let tenant = tenant.tenant;
    let ctx = RequestContext {
        principal: Principal::api_key(owner.id, Some(tenant.id), Role::Owner, Default::default()),
        request_id: "bench".into(),
        client_ip: None,
    };
    Ok(Fixture {
        vault,
        tenant: tenant.id,
        tenant_out: tenant,
        ctx,
        token: owner.token.unwrap_or_default(),
    })
}

pub(crate) fn scratch(dir: &Path, name: &str) -> Settings {
    Settings {
        data_dir: dir.join(name),
        database_url: None,
        policy: None,
        key_provider: KeyProviderKind::File,
        key_file: None,
        key_command: None,
        origin: crate::config::DEFAULT_ORIGIN.into(),
        limits: Default::default(),
    }
}

/// Creates `n` records of `collection` for `subject` in batches of 1,000.
pub(crate) async fn load(
    vault: &Vault,
    ctx: &RequestContext,
    tenant: Uuid,
    subjects: &[Uuid],
    n: usize,
    collection: &str,
    fields: &serde_json::Value,
) -> anyhow::Result<()> {
    let fields = fields.as_object().cloned().unwrap_or_default();
    let mut done = 0;
    while done < n {
        let items: Vec<BatchItem> = (done..(done + 1000).min(n))
            .map(|i| BatchItem::CreateRecord {
                subject: subjects[i % subjects.len()].to_string(),
                collection: collection.to_owned(),
                fields: fields.clone(),
                purpose: None,
                return_fields: false,
            })
            .collect();
        done += items.len();
        vault.batch(ctx, tenant, items).await?;
    }
    Ok(())
}

async fn subjects(
    vault: &Vault,
    ctx: &RequestContext,
    tenant: Uuid,
    n: usize,
) -> anyhow::Result<Vec<Uuid>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(vault.create_subject(ctx, tenant, None).await?.id);
    }
    Ok(out)
}

/// A client reading `record` every 2 ms until `stop`; yields the slowest read and the count,
/// which is what a long background job must not make wait.
fn read_continuously(
    vault: &Vault,
    ctx: &RequestContext,
    record: &ward_vault::RecordOut,
    stop: &Arc<AtomicBool>,
) -> tokio::task::JoinHandle<anyhow::Result<(Duration, u64)>> {
    let (vault, ctx, stop) = (vault.clone(), ctx.clone(), stop.clone());
    let (tenant, subject, id) = (ctx.principal.tenant, record.subject, record.id);
    tokio::spawn(async move {
        let tenant = tenant.context("the bench reads as a tenant key")?;
        let mut worst = Duration::ZERO;
        let mut reads = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            vault
                .read_record(&ctx, tenant, subject, id, "essential.service")
                .await?;
            worst = worst.max(t.elapsed());
            reads += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok((worst, reads))
    })
}

fn contact_fields() -> serde_json::Value {
    json!({"name": "Grace Hopper", "email": "grace@example.com", "phone": "+1 202 555 0143"})
}

/// A fresh vault on `clock` whose tenant has 1,000 subjects sharing `n` records of
/// `collection`, loaded through the batch API; returns it with the subjects and the seconds
/// the load took.
async fn loaded(
    dir: &Path,
    name: &str,
    clock: &ManualClock,
    n: usize,
    collection: &str,
    fields: &serde_json::Value,
) -> anyhow::Result<(Fixture, Vec<Uuid>, f64)> {
    let fx = fixture(&scratch(dir, name), Arc::new(clock.clone())).await?;
    let crowd = subjects(&fx.vault, &fx.ctx, fx.tenant, 1000).await?;
    let started = Instant::now();
    load(&fx.vault, &fx.ctx, fx.tenant, &crowd, n, collection, fields).await?;
    Ok((fx, crowd, started.elapsed().as_secs_f64()))
}

pub(crate) async fn rights(dir: &Path, others: usize) -> anyhow::Result<Outcome> {
    let contact = contact_fields();
    let (fx, _, secs) = loaded(
        dir,
        "rights",
        &ManualClock::new(time::OffsetDateTime::now_utc()),
        others,
        "contact",
        &contact,
    )
    .await?;
    let (vault, tenant, ctx) = (fx.vault, fx.tenant, fx.ctx);
    println!(
        "rights: loaded {others} other records in {secs:.1} s ({:.0} records/s through the batch API)",
        others as f64 / secs
    );
    let target = subjects(&vault, &ctx, tenant, 1).await?;
    load(&vault, &ctx, tenant, &target, 1000, "contact", &contact).await?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let doc = vault.export_subject(&ctx, tenant, target[0]).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            doc["records"].as_array().map(Vec::len) == Some(1000),
            "export lost records"
        );
    }
    times.sort_by(f64::total_cmp);
    println!(
        "rights: export of a subject with 1,000 records among {others} others: median {:.1} ms (min {:.1}, max {:.1})",
        times[2], times[0], times[4]
    );
    for n in [1usize, 100, 1000, 10_000] {
        let s = subjects(&vault, &ctx, tenant, 1).await?;
        load(&vault, &ctx, tenant, &s, n, "contact", &contact).await?;
        let started = Instant::now();
        let out = vault.erase_subject(&ctx, tenant, s[0]).await?;
        println!(
            "rights: erasure of a subject with {n:>6} records: {:>7.1} ms ({} records erased)",
            started.elapsed().as_secs_f64() * 1000.0,
            out.records_erased
        );
    }
    Ok(Outcome::Ok)
}

/// Loads a tenant of `n` contact records over 1,000 subjects into the new data directory
/// `dir` and keeps it, for measuring a whole-tenant export in a process of its own (the load's
/// own memory would otherwise count in the export's peak).
pub(crate) async fn export_fixture(dir: &Path, n: usize) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        !dir.exists(),
        "{} exists; --fixture-dir must be a new directory",
        dir.display()
    );
    let settings = Settings {
        data_dir: dir.to_path_buf(),
        ..scratch(dir, "")
    };
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let fx = fixture(&settings, Arc::new(clock)).await?;
    let crowd = subjects(&fx.vault, &fx.ctx, fx.tenant, 1000).await?;
    let started = Instant::now();
    load(
        &fx.vault,
        &fx.ctx,
        fx.tenant,
        &crowd,
        n,
        "contact",
        &contact_fields(),
    )
    .await?;
    println!(
        "export fixture: {n} records over {} subjects in {:.1} s",
        crowd.len(),
        started.elapsed().as_secs_f64()
    );
    println!("tenant: {}", fx.tenant);
    println!("owner token: {}", fx.token);
    Ok(Outcome::Ok)
}

pub(crate) async fn retention(dir: &Path, n: usize) -> anyhow::Result<Outcome> {
    let start = time::OffsetDateTime::now_utc();
    let clock = ManualClock::new(start);
    let now = start.format(&time::format_description::well_known::Rfc3339)?;
    let log = json!({"ip": "203.0.113.9", "user_agent": "bench/1.0", "path": "/login", "at": now});
    let (fx, crowd, secs) = loaded(dir, "retention", &clock, n, "server_log", &log).await?;
    let (vault, tenant, ctx) = (fx.vault, fx.tenant, fx.ctx);
    println!("retention: loaded {n} server_log records in {secs:.1} s");
    let keeper = vault
        .create_record(
            &ctx,
            tenant,
            crowd[0],
            "contact",
            json!({"name": "Kept", "email": "kept@example.com"})
                .as_object()
                .context("object")?,
            &WriteOptions::default(),
        )
        .await?;
    clock.advance(time::Duration::days(15));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = read_continuously(&vault, &ctx, &keeper, &stop);
    let started = Instant::now();
    let report = vault
        .run_retention(&RetentionOptions::default(), |_| {})
        .await?;
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (worst, reads) = reader.await??;
    println!(
        "retention: swept {} expired records in {secs:.1} s ({:.0} records/s); a concurrent reader made {reads} reads, the slowest took {:.1} ms",
        report.total(),
        report.total() as f64 / secs,
        worst.as_secs_f64() * 1000.0
    );
    Ok(Outcome::Ok)
}

pub(crate) async fn rotation(dir: &Path, n: usize) -> anyhow::Result<Outcome> {
    let contact = contact_fields();
    let (fx, crowd, secs) = loaded(
        dir,
        "rotation",
        &ManualClock::new(time::OffsetDateTime::now_utc()),
        n,
        "contact",
        &contact,
    )
    .await?;
    let (vault, tenant, ctx) = (fx.vault, fx.tenant, fx.ctx);
    println!("rotation: loaded {n} records of 1,000 subjects in {secs:.1} s");
    let probe = vault
        .create_record(
            &ctx,
            tenant,
            crowd[0],
            "contact",
            contact.as_object().context("object")?,
            &WriteOptions::default(),
        )
        .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let reader = read_continuously(&vault, &ctx, &probe, &stop);
    let jobs = vault.start_record_rotation(None, Some(tenant)).await?;
    let job = jobs.first().context("no job started")?;
    let started = Instant::now();
    let done = vault.run_key_job(job.id, "bench", &|_| {}).await?;
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (worst, reads) = reader.await??;
    anyhow::ensure!(done.status == "done", "rotation ended {}", done.status);
    println!(
        "rotation: re-encrypted {} records of {} subjects under new subject keys in {secs:.1} s ({:.0} records/s); a concurrent reader made {reads} reads, the slowest took {:.1} ms",
        done.records_done,
        done.subjects_done,
        done.records_done as f64 / secs,
        worst.as_secs_f64() * 1000.0
    );
    Ok(Outcome::Ok)
}

//! Backups inside `ward serve`: a backup (then a prune) on the configured schedule, a data
//! backup after every completed record re-encryption (older data backups need the keys it
//! retires, ARCHITECTURE.md "Keys and encryption"), and a daily verification with a restore
//! drill. Each outcome is an audit event and a set of `/metrics` gauges, so an alert rule
//! can fire on `ward_backup_last_outcome{job="…"} == 0` or a stale
//! `ward_backup_last_success_timestamp_seconds`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;
use ward_backup::OpenMode;
use ward_store::Store;
use ward_vault::{BackupJob, Vault};

use crate::backup_cmd::Context;

/// How often completed key jobs are looked for.
const ROTATION_POLL: Duration = Duration::from_secs(60);

/// Runs the schedule until the task is aborted.
pub(crate) async fn run(ctx: Context, vault: Vault, store: Arc<dyn Store>) {
    let far = Duration::from_secs(100 * 365 * 86_400);
    let mut backups = tokio::time::interval(ctx.backup.every.unwrap_or(far));
    let mut verifications = tokio::time::interval(ctx.backup.verify_every);
    let mut rotations = tokio::time::interval(ROTATION_POLL);
    // The first verification waits a full period: a server that restarts often must not
    // restore-drill on every start.
    verifications.tick().await;
    if ctx.backup.every.is_none() {
        backups.tick().await;
    }
    let mut last_backup: Option<OffsetDateTime> = None;
    loop {
        tokio::select! {
            _ = backups.tick() => {
                backup_and_prune(&ctx, &vault, &store).await;
                last_backup = Some(vault.now());
            }
            _ = verifications.tick() => verify(&ctx, &vault).await,
            _ = rotations.tick() => {
                if rotation_finished_since(&vault, last_backup).await {
                    tracing::info!("a record re-encryption completed: taking a data backup");
                    backup_and_prune(&ctx, &vault, &store).await;
                    last_backup = Some(vault.now());
                }
            }
        }
    }
}

/// Whether a record rotation job finished after `since` (never backed up: any finished job
/// counts only once the server has taken its first backup, which the schedule does).
async fn rotation_finished_since(vault: &Vault, since: Option<OffsetDateTime>) -> bool {
    let Some(since) = since else { return false };
    match vault.key_jobs().await {
        Ok(jobs) => jobs
            .iter()
            .any(|j| j.status == "done" && j.finished_at.is_some_and(|f| f > since)),
        Err(e) => {
            tracing::error!(error = %e, "reading key jobs for the backup schedule");
            false
        }
    }
}

/// One scheduled backup, then a prune; both audited and measured.
pub(crate) async fn backup_and_prune(ctx: &Context, vault: &Vault, store: &Arc<dyn Store>) {
    let outcome = async {
        let repo = ctx.open(OpenMode::ReadWrite).await?;
        let report =
            crate::backup_cmd::backup_now(ctx, &repo, store.clone(), vault.now(), None).await?;
        Ok::<_, anyhow::Error>((repo, report))
    }
    .await;
    let (repo, report) = match outcome {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "scheduled backup failed");
            record(
                vault,
                BackupJob::Run,
                json!({ "result": "failed", "error": e.to_string() }),
            )
            .await;
            gauge_outcome("run", false, vault.now());
            return;
        }
    };
    let complete = report.complete();
    tracing::info!(data = %report.data.id, keys = %report.keys.id, complete, "scheduled backup");
    record(vault, BackupJob::Run, run_detail(&report)).await;
    gauge_outcome("run", complete, vault.now());
    gauge_sizes(&repo).await;
    match repo.prune(&ctx.backup.retention, vault.now()).await {
        Ok(p) if p.snapshots_deleted.is_empty() && p.objects_deleted == 0 => {}
        Ok(p) => {
            record(
                vault,
                BackupJob::Prune,
                json!({
                    "result": "ok",
                    "snapshots_deleted": p.snapshots_deleted,
                    "objects_deleted": p.objects_deleted,
                    "bytes_freed": p.bytes_freed,
                }),
            )
            .await;
            gauge_sizes(&repo).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "backup prune failed");
            record(
                vault,
                BackupJob::Prune,
                json!({ "result": "failed", "error": e.to_string() }),
            )
            .await;
        }
    }
}

/// The audit detail of a backup run: its outcome, snapshots, sizes and failed locations.
pub(crate) fn run_detail(report: &ward_backup::BackupReport) -> serde_json::Value {
    let failed: Vec<_> = [&report.data, &report.keys]
        .iter()
        .flat_map(|s| s.locations.iter())
        .filter(|l| l.error.is_some())
        .map(|l| json!({ "location": l.location, "error": l.error }))
        .collect();
    // Failed: a stream no location holds (the run took no usable backup); partial: held
    // somewhere, not everywhere.
    let held = [&report.data, &report.keys]
        .iter()
        .all(|s| s.locations.iter().any(|l| l.error.is_none()));
    let result = match (report.complete(), held) {
        (true, _) => "ok",
        (false, true) => "partial",
        (false, false) => "failed",
    };
    json!({
        "result": result,
        "data_snapshot": report.data.id,
        "keys_snapshot": report.keys.id,
        "bytes_read": report.data.bytes_read + report.keys.bytes_read,
        "bytes_written": report.data.bytes_written() + report.keys.bytes_written(),
        "failed_locations": failed,
    })
}

/// Verifies the newest data snapshot in every location and restore-drills it.
pub(crate) async fn verify(ctx: &Context, vault: &Vault) {
    let outcome = async {
        let repo = ctx.open(OpenMode::ReadOnly).await?;
        let id = repo.resolve("latest").await?;
        let report = repo.verify(&id).await?;
        let full = if report.ok() {
            Some(crate::backup_restore::full_check(ctx, &repo, &id).await?)
        } else {
            None
        };
        Ok::<_, anyhow::Error>((id, report, full))
    }
    .await;
    let (ok, detail) = match outcome {
        Ok((id, report, full)) => {
            let ok = report.ok()
                && full
                    .as_ref()
                    .is_some_and(crate::backup_restore::FullCheck::ok);
            (
                ok,
                json!({
                    "result": if ok { "ok" } else { "failed" },
                    "snapshot": id,
                    "objects_checked": report.objects_checked,
                    "problems": report.problems,
                    "restore_drill": full,
                }),
            )
        }
        Err(e) => (false, json!({ "result": "failed", "error": e.to_string() })),
    };
    if ok {
        tracing::info!("backup verification passed");
    } else {
        tracing::error!(detail = %detail, "backup verification failed");
    }
    record(vault, BackupJob::Verify, detail).await;
    gauge_outcome("verify", ok, vault.now());
}

async fn record(vault: &Vault, job: BackupJob, detail: serde_json::Value) {
    if let Err(e) = vault.record_backup_event(job, detail).await {
        tracing::error!(error = %e, "could not audit a backup job");
    }
}

fn gauge_outcome(job: &'static str, ok: bool, now: OffsetDateTime) {
    metrics::gauge!("ward_backup_last_outcome", "job" => job).set(if ok { 1.0 } else { 0.0 });
    if ok {
        metrics::gauge!("ward_backup_last_success_timestamp_seconds", "job" => job)
            .set(now.unix_timestamp() as f64);
    }
}

async fn gauge_sizes(repo: &ward_backup::Repository) {
    for (location, size) in repo.sizes().await {
        match size {
            Ok(bytes) => {
                metrics::gauge!("ward_backup_location_bytes", "location" => location.clone())
                    .set(bytes as f64);
                metrics::gauge!("ward_backup_location_up", "location" => location).set(1.0);
            }
            Err(_) => metrics::gauge!("ward_backup_location_up", "location" => location).set(0.0),
        }
    }
    for u in repo.unreachable() {
        metrics::gauge!("ward_backup_location_up", "location" => u.location.clone()).set(0.0);
    }
}

#[cfg(test)]
mod tests {
    use ward_testkit::TestServer;

    use super::*;
    use crate::backup_config::BackupSettings;
    use crate::config::{KeyProviderKind, Settings};

    fn context(srv: &TestServer, location: &std::path::Path) -> Context {
        let backup = BackupSettings::resolve(&[location.to_str().unwrap().to_owned()], None, None)
            .expect("backup settings");
        Context {
            settings: Settings {
                data_dir: srv.dir.path().to_path_buf(),
                database_url: None,
                policy: None,
                key_provider: KeyProviderKind::File,
                key_file: None,
                key_command: None,
                origin: "ward-test".into(),
                limits: ward_vault::Limits::default(),
            },
            backup,
            root: srv.root_keys.clone(),
            quiet: true,
        }
    }

    async fn backup_events(srv: &TestServer) -> Vec<(String, serde_json::Value)> {
        let head = srv.store.audit_head().await.unwrap();
        srv.store
            .audit_rows(0, u32::try_from(head.size).unwrap())
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.columns.action.starts_with("backup_"))
            .map(|r| {
                let e: serde_json::Value = serde_json::from_slice(&r.event).unwrap();
                (r.columns.action.clone(), e["detail"].clone())
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn scheduled_backups_and_verifications_are_audited_and_measured() {
        let srv = TestServer::start().await;
        let (t, s) = srv.tenant_and_subject("Acme").await;
        srv.contact(&t, &s, "Ada", "ada@example.com").await;
        let loc = tempfile::tempdir().unwrap();
        let ctx = context(&srv, loc.path());

        backup_and_prune(&ctx, &srv.vault, &srv.store).await;
        verify(&ctx, &srv.vault).await;
        let events = backup_events(&srv).await;
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].0, "backup_run");
        assert_eq!(events[0].1["result"], "ok");
        assert!(events[0].1["data_snapshot"].is_string());
        assert_eq!(events[1].0, "backup_verify");
        assert_eq!(events[1].1["result"], "ok", "{}", events[1].1);
        assert_eq!(events[1].1["restore_drill"]["decrypt_failures"], 0);

        let metrics = srv.metrics_text().await;
        for series in [
            "ward_backup_last_outcome{job=\"run\"} 1",
            "ward_backup_last_outcome{job=\"verify\"} 1",
            "ward_backup_last_success_timestamp_seconds{job=\"run\"}",
            "ward_backup_location_bytes{location=",
        ] {
            assert!(metrics.contains(series), "{series} missing from\n{metrics}");
        }

        // A corrupt object of the newest data snapshot fails the next verification.
        let repo = ctx.open(OpenMode::ReadOnly).await.unwrap();
        let latest = repo.resolve("latest").await.unwrap();
        let object = *repo
            .manifest(&latest)
            .await
            .unwrap()
            .objects()
            .first()
            .unwrap();
        let file = loc.path().join(object.path());
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[20] ^= 0x40;
        std::fs::write(&file, bytes).unwrap();
        verify(&ctx, &srv.vault).await;
        let events = backup_events(&srv).await;
        let last = &events.last().unwrap().1;
        assert_eq!(last["result"], "failed", "{last}");
        assert_eq!(last["problems"][0]["object"], object.path());
        let metrics = srv.metrics_text().await;
        assert!(
            metrics.contains("ward_backup_last_outcome{job=\"verify\"} 0"),
            "{metrics}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_completed_record_rotation_calls_for_a_data_backup() {
        let srv = TestServer::start().await;
        let (t, s) = srv.tenant_and_subject("Acme").await;
        srv.contact(&t, &s, "Ada", "ada@example.com").await;
        let loc = tempfile::tempdir().unwrap();
        let ctx = context(&srv, loc.path());
        backup_and_prune(&ctx, &srv.vault, &srv.store).await;
        let since = srv.vault.now();
        assert!(!rotation_finished_since(&srv.vault, Some(since)).await);

        srv.clock.advance(time::Duration::minutes(1));
        let (status, body) = srv
            .post(
                "/v1/keys/rotate-records",
                &srv.operator,
                serde_json::json!({"tenant": t.id}),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
        // The server's key-job worker runs the job; wait for it to finish.
        for _ in 0..2400 {
            let jobs = srv.vault.key_jobs().await.unwrap();
            if jobs.iter().all(|j| j.status != "running") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let jobs = srv.vault.key_jobs().await.unwrap();
        assert!(
            rotation_finished_since(&srv.vault, Some(since)).await,
            "{since} {jobs:?}"
        );
        // Before the server's first backup nothing is due yet (the schedule takes one).
        assert!(!rotation_finished_since(&srv.vault, None).await);

        let live = srv.vault.verify_decryption(100).await.unwrap();
        assert_eq!((live.records, live.failures), (1, 0), "live store");
        // The backup it triggers restores with every record readable under the new keys.
        backup_and_prune(&ctx, &srv.vault, &srv.store).await;
        assert!(!rotation_finished_since(&srv.vault, Some(srv.vault.now())).await);
        let repo = ctx.open(OpenMode::ReadOnly).await.unwrap();
        let latest = repo.resolve("latest").await.unwrap();
        let full = crate::backup_restore::full_check(&ctx, &repo, &latest)
            .await
            .unwrap();
        assert!(full.ok(), "{full:?}");
        assert_eq!(full.records_decrypted, 1);
    }
}

//! When the last backup and the last backup verification ran, and how they came out, from
//! their audit events (`backup_run`, `backup_verify`: system events that `ward serve`'s
//! schedule and `ward backup run|verify` append).

use std::time::Duration;

use time::OffsetDateTime;
use ward_store::AuditRow;

use crate::stored::{ago, human, not_checked, rfc3339};
use crate::{Context, Finding};

const NAME: &str = "backups";

/// The backup schedule a deployment is configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSchedule {
    /// How often `ward serve` takes a backup (`None`: backups are taken by hand or cron).
    pub every: Option<Duration>,
    /// How often `ward serve` verifies the newest snapshot with a restore drill.
    pub verify_every: Duration,
}

/// A backup job's last run, as its audit event tells it.
struct LastRun {
    at: OffsetDateTime,
    result: String,
    error: Option<String>,
}

impl LastRun {
    fn from_row(row: &AuditRow) -> Self {
        let event: serde_json::Value = serde_json::from_slice(&row.event).unwrap_or_default();
        let detail = &event["detail"];
        Self {
            at: ward_store::from_micros(row.columns.at),
            result: detail["result"].as_str().unwrap_or("unknown").to_owned(),
            error: detail["error"].as_str().map(str::to_owned),
        }
    }

    fn ago(&self, now: OffsetDateTime) -> String {
        ago(now - self.at)
    }

    fn failure(&self) -> String {
        match &self.error {
            Some(e) => format!("{} ({e})", self.result),
            None => self.result.clone(),
        }
    }
}

/// Backups ran recently and succeeded, and the newest was verified by a restore drill.
pub(crate) async fn check(ctx: &Context) -> Finding {
    let Some(store) = ctx.store() else {
        return not_checked(NAME, "the database is not open");
    };
    let (run, verify) = match (
        store.last_system_event("backup_run").await,
        store.last_system_event("backup_verify").await,
    ) {
        (Ok(r), Ok(v)) => (
            r.as_ref().map(LastRun::from_row),
            v.as_ref().map(LastRun::from_row),
        ),
        (Err(e), _) | (_, Err(e)) => {
            return Finding::fail(
                NAME,
                format!("the backup events cannot be read: {e}"),
                "check the database",
            );
        }
    };
    let schedule = ctx.setup.backup;
    let Some(run) = run else {
        return match schedule {
            None => Finding::ok(
                NAME,
                "no backup is configured and none was recorded (the [backup] table of the \
                 config file sets locations and a schedule)",
            ),
            Some(_) => Finding::warn(
                NAME,
                "backups are configured but none has been recorded yet",
                "run `ward backup run` now, or wait for `ward serve`'s first scheduled backup",
            ),
        };
    };
    let now = ctx.now;
    // Two periods: one run may be late, two missed means the schedule is not running.
    let every = schedule
        .and_then(|s| s.every)
        .unwrap_or(Duration::from_secs(86_400));
    let verify_every = schedule.map_or(Duration::from_secs(86_400), |s| s.verify_every);
    let late = |last: &LastRun, period: Duration| {
        time::Duration::try_from(period * 2).is_ok_and(|allowed| now - last.at > allowed)
    };
    if run.result == "failed" {
        return Finding::fail(
            NAME,
            format!(
                "the last backup, {} ago, failed: {}",
                run.ago(now),
                run.failure()
            ),
            "run `ward backup run` to see the error; check that every location is reachable \
             and writable, and the logs of `ward serve` for `scheduled backup failed`",
        );
    }
    if late(&run, every) {
        return Finding::fail(
            NAME,
            format!(
                "the last backup ran {} ago ({}), more than two periods of {}",
                run.ago(now),
                rfc3339(run.at),
                human(every)
            ),
            "check that `ward serve` runs with backup.every set (its log says `backup \
             schedule` at start), or the job that runs `ward backup run`",
        );
    }
    let verified = match verification(
        &run,
        verify.as_ref(),
        verify_every,
        schedule.is_some(),
        late,
        now,
    ) {
        Ok(v) => v,
        Err(finding) => return finding,
    };
    let partial = if run.result == "partial" {
        Some("some location did not take it")
    } else {
        None
    };
    match partial {
        Some(why) => Finding::warn(
            NAME,
            format!(
                "the last backup, {} ago, is partial: {why}; {verified}",
                run.ago(now)
            ),
            "run `ward backup run` to see which location failed, and make it reachable",
        ),
        None => Finding::ok(
            NAME,
            format!("the last backup ran {} ago; {verified}", run.ago(now)),
        ),
    }
}

/// What the newest verification says of backup `run`: a phrase for the summary, or the
/// finding that ends the check (failed, late, or never verified when it should have been).
fn verification(
    run: &LastRun,
    verify: Option<&LastRun>,
    verify_every: Duration,
    scheduled: bool,
    late: impl Fn(&LastRun, Duration) -> bool,
    now: OffsetDateTime,
) -> Result<String, Finding> {
    match verify {
        Some(v) if v.result != "ok" => Err(Finding::fail(
            NAME,
            format!(
                "the last backup verification, {} ago, failed: {}",
                v.ago(now),
                v.failure()
            ),
            "run `ward backup verify --full latest` to see the problems; `ward backup \
             repair` rewrites damaged objects from a healthy location",
        )),
        Some(v) if late(v, verify_every) => Err(Finding::warn(
            NAME,
            format!(
                "the last backup verification ran {} ago, more than two periods of {}",
                v.ago(now),
                human(verify_every)
            ),
            "check that `ward serve` runs (it verifies every backup.verify_every), or run \
             `ward backup verify --full latest`",
        )),
        Some(v) => Ok(format!("verified with a restore drill {} ago", v.ago(now))),
        None if late(run, verify_every) || !scheduled => Err(Finding::warn(
            NAME,
            format!(
                "the last backup ran {} ago, but no backup was ever verified",
                run.ago(now)
            ),
            "run `ward backup verify --full latest` (a restore drill); `ward serve` with a \
             [backup] table verifies every backup.verify_every",
        )),
        None => Ok("not verified yet (the first verification is due)".to_owned()),
    }
}

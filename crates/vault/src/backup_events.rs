//! Audit events for the server's backup jobs (schedule, verification, pruning), so that an
//! auditor sees every backup and every restore drill in the same tamper-evident log as
//! every access. Details hold counts, snapshot ids and location names: never data.

use ward_audit::{Action, Actor, AuditEvent};
use ward_store::Op;

use crate::{Result, Vault};

/// Which backup job an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupJob {
    /// A backup run.
    Run,
    /// A verification (with restore drill).
    Verify,
    /// A prune.
    Prune,
}

/// The audit event of a backup job that ended at `at`. `detail` says what happened
/// (`result`: ok, partial or failed, and counts); the event is a system event with no
/// tenant. Public so that `ward backup run|verify` record their runs beside a server's.
#[must_use]
pub fn backup_event(job: BackupJob, at: time::OffsetDateTime, detail: serde_json::Value) -> Op {
    Op::Audit(Box::new(
        AuditEvent::allowed(
            at,
            format!("backup-{}", at.unix_timestamp()),
            Actor::system("backup"),
            match job {
                BackupJob::Run => Action::BackupRun,
                BackupJob::Verify => Action::BackupVerify,
                BackupJob::Prune => Action::BackupPrune,
            },
            None,
        )
        .with_detail(detail),
    ))
}

impl Vault {
    /// Appends the outcome of a backup job to the audit log ([`backup_event`]).
    ///
    /// # Errors
    /// If the store refuses the commit.
    pub async fn record_backup_event(
        &self,
        job: BackupJob,
        detail: serde_json::Value,
    ) -> Result<()> {
        let event = backup_event(job, self.now(), detail);
        self.commit(vec![event]).await?;
        Ok(())
    }
}

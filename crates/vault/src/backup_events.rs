//! Audit events for the server's backup jobs (schedule, verification, pruning), so that an
//! auditor sees every backup and every restore drill in the same tamper-evident log as
//! every access. Details hold counts, snapshot ids and location names: never data.

use ward_audit::{Action, Actor, AuditEvent, Outcome};
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

impl Vault {
    /// Appends the outcome of a backup job to the audit log. `detail` says what happened
    /// (`result`: ok, partial or failed, and counts); the event is a system event with no
    /// tenant.
    ///
    /// # Errors
    /// If the store refuses the commit.
    pub async fn record_backup_event(
        &self,
        job: BackupJob,
        detail: serde_json::Value,
    ) -> Result<()> {
        let at = self.now();
        let event = AuditEvent {
            at,
            request_id: format!("backup-{}", at.unix_timestamp()),
            actor: Actor::system("backup"),
            tenant: None,
            subject: None,
            record: None,
            collection: None,
            purpose: None,
            action: match job {
                BackupJob::Run => Action::BackupRun,
                BackupJob::Verify => Action::BackupVerify,
                BackupJob::Prune => Action::BackupPrune,
            },
            outcome: Outcome::Allowed,
            reason: None,
            client: None,
            detail: Some(detail),
        };
        self.inner
            .store
            .commit(vec![Op::Audit(Box::new(event))])
            .await?;
        Ok(())
    }
}

//! The background worker that runs record rotation jobs while the API keeps serving.
//!
//! Jobs live in the database, so whichever server (or `ward keys rotate --records` in a
//! terminal) holds a job's lease runs it, and another takes it over if that one dies. The
//! worker wakes when this server starts a job and otherwise looks for orphaned or newly
//! queued jobs every few seconds.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use ward_vault::Vault;

/// How often an idle worker looks for jobs started elsewhere.
const POLL: Duration = Duration::from_secs(5);

/// A handle on this process's worker; the worker stops when the last handle is dropped.
#[derive(Clone)]
pub struct KeyJobs {
    wake: Arc<Notify>,
}

impl KeyJobs {
    /// Spawns the worker on the current tokio runtime.
    pub fn start(vault: Vault) -> Self {
        let wake = Arc::new(Notify::new());
        let owner = format!("server-{}-{}", std::process::id(), uuid::Uuid::now_v7());
        tokio::spawn(run(vault, Arc::downgrade(&wake), owner));
        Self { wake }
    }

    /// Runs pending jobs now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

async fn run(vault: Vault, wake: Weak<Notify>, owner: String) {
    loop {
        let Some(notify) = wake.upgrade() else {
            return; // the server is gone
        };
        let _ = tokio::time::timeout(POLL, notify.notified()).await;
        drop(notify);
        if wake.strong_count() == 0 {
            return;
        }
        match vault.run_pending_key_jobs(&owner).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "record rotation finished"),
            Err(e) => tracing::warn!(error = %e, "record rotation paused; retrying"),
        }
    }
}

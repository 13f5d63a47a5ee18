//! The stored state `/metrics` reports, read in one pass: tenant sizes, the audit log's size
//! and newest checkpoint, when retention last swept, deliveries waiting in the webhook outbox.
//!
//! Counts are cheap but not free (a `COUNT(*)` per tenant), so the server refreshes these
//! gauges at most every [`REFRESH`], whatever the scrape rate; a scrape in between sees the
//! values of the last refresh. Everything read here is a count or a time: no value, no name.
//! The retention time comes from the sweep's own audit event, so a sweep run by
//! `ward retention run` from cron counts as much as one run by `ward serve`.

use std::time::{Duration, Instant};

use ward_audit::Action;

use crate::{Result, Vault};

/// The shortest interval between two refreshes of the stored-state gauges.
pub const REFRESH: Duration = Duration::from_secs(15);

impl Vault {
    /// Sets the stored-state gauges unless they were set less than [`REFRESH`] ago. An error
    /// leaves the previous values (and is the caller's to log): a scrape still answers.
    pub async fn refresh_gauges(&self) -> Result<()> {
        {
            let mut last = self
                .inner
                .gauges_at
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < REFRESH) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let stats = self.inner.store.stats().await?;
        let head = self.inner.store.audit_head().await?;
        let swept = self
            .inner
            .store
            .last_system_event(Action::RetentionRun.as_str())
            .await?;
        for t in &stats.tenants {
            let tenant = t.tenant.to_string();
            metrics::gauge!("ward_tenant_subjects", "tenant" => tenant.clone())
                .set(t.subjects as f64);
            metrics::gauge!("ward_tenant_records", "tenant" => tenant).set(t.records as f64);
        }
        metrics::gauge!("ward_audit_tree_size").set(head.size as f64);
        if let Some((size, at)) = stats.last_checkpoint {
            metrics::gauge!("ward_audit_checkpoint_tree_size").set(size as f64);
            metrics::gauge!("ward_audit_last_checkpoint_timestamp_seconds")
                .set(at.unix_timestamp() as f64);
        }
        let pending = self.inner.store.webhook_outbox_pending().await?;
        #[allow(clippy::cast_precision_loss)] // a count of rows is far below 2^52
        metrics::gauge!("ward_webhook_outbox_pending").set(pending as f64);
        if let Some(row) = swept {
            metrics::gauge!("ward_retention_last_run_timestamp_seconds")
                .set((row.columns.at / 1_000_000) as f64);
        }
        Ok(())
    }
}

//! Deleting what the retention policy no longer keeps: whole snapshots first (their
//! manifests, in every location), then the objects no remaining snapshot references.
//! Never runs beside a `backup run` on the same repository (Ward's server runs them in one
//! task), since a running backup's new objects are not referenced yet.

use std::collections::BTreeSet;

use serde::Serialize;
use time::OffsetDateTime;

use crate::Result;
use crate::id::{OBJECTS_PREFIX, ObjectId, SnapshotId};
use crate::repository::Repository;
use crate::retention::Retention;

/// What `prune` deleted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    /// Snapshots deleted.
    pub snapshots_deleted: Vec<SnapshotId>,
    /// Snapshots kept.
    pub snapshots_kept: usize,
    /// Objects deleted, summed over locations.
    pub objects_deleted: u64,
    /// Bytes freed, summed over locations.
    pub bytes_freed: u64,
}

impl Repository {
    /// Applies `policy` at `now`.
    ///
    /// # Errors
    /// If a manifest cannot be read anywhere (nothing is deleted then: its objects must not
    /// be taken for unreferenced) or a location refuses a deletion.
    pub async fn prune(&self, policy: &Retention, now: OffsetDateTime) -> Result<PruneReport> {
        let manifests = self.manifests().await?;
        let dated: Vec<_> = manifests.iter().map(|m| (m.id.clone(), m.time)).collect();
        let expired: BTreeSet<SnapshotId> = policy.expired(now, &dated).into_iter().collect();
        let mut report = PruneReport::default();
        for id in &expired {
            for l in &self.locations {
                l.delete(&id.path()).await?;
            }
            report.snapshots_deleted.push(id.clone());
        }
        let referenced: BTreeSet<ObjectId> = manifests
            .iter()
            .filter(|m| !expired.contains(&m.id))
            .flat_map(crate::manifest::Manifest::objects)
            .collect();
        report.snapshots_kept = manifests.len() - expired.len();
        for l in &self.locations {
            for (path, size) in l.list(OBJECTS_PREFIX).await? {
                let Some(id) = ObjectId::from_path(&path) else {
                    continue;
                };
                if !referenced.contains(&id) {
                    l.delete(&path).await?;
                    report.objects_deleted += 1;
                    report.bytes_freed += size;
                }
            }
        }
        Ok(report)
    }
}

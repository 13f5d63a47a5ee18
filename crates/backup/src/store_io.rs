//! The store's side of a backup: each stream's dump (`Store::export_snapshot`) into a
//! snapshot, and a snapshot back into an empty store (`Store::import_snapshot`), followed by
//! the reconciliation that keeps erased subjects and destroyed tenants gone.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use ward_store::{Reconciliation, ReusePlan, SnapshotStream, SnapshotSummary, Store};

use crate::id::SnapshotId;
use crate::manifest::{Manifest, Summary};
use crate::repository::{Listing, Repository};
use crate::writer::{EntryInput, ProgressFn, ReusedChunks, SnapshotReport};
use crate::{BackupError, DUMP_ENTRY, Result, SIGNING_KEY_ENTRY, Stream};

/// Buffers in flight between the store and the repository.
const PIPE: usize = 8;

/// The two snapshots of one backup run.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// The data snapshot.
    pub data: SnapshotReport,
    /// The key snapshot (taken after the data one, so it holds every key the data needs).
    pub keys: SnapshotReport,
}

impl BackupReport {
    /// Both snapshots are in every location.
    #[must_use]
    pub fn complete(&self) -> bool {
        self.data.complete() && self.keys.complete()
    }
}

/// What a restore applied.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The data snapshot restored.
    pub data: SnapshotId,
    /// The key snapshot applied (always the newest).
    pub keys: SnapshotId,
    /// Rows imported per table, data stream.
    pub data_summary: Summary,
    /// Rows imported per table, key stream.
    pub keys_summary: Summary,
    /// What the reconciliation removed (erased or destroyed since the data snapshot).
    pub reconciliation: Reconciliation,
    /// The audit signing key file carried by the key snapshot, if any.
    #[serde(skip)]
    pub signing_key: Option<ward_crypto::Zeroizing<Vec<u8>>>,
}

impl From<Stream> for SnapshotStream {
    fn from(s: Stream) -> Self {
        match s {
            Stream::Data => Self::Data,
            Stream::Keys => Self::Keys,
        }
    }
}

impl From<SnapshotSummary> for Summary {
    fn from(s: SnapshotSummary) -> Self {
        Self {
            tables: s.tables,
            bytes: s.bytes,
        }
    }
}

impl Repository {
    /// Backs up `store`: a data snapshot, then a key snapshot carrying `signing_key` (the
    /// data directory's `audit-signing.key`, where the deployment keeps one).
    ///
    /// # Errors
    /// As [`Repository::write_snapshot`]; an export failure leaves no manifest.
    pub async fn backup_store(
        &self,
        store: Arc<dyn Store>,
        signing_key: Option<Bytes>,
        at: OffsetDateTime,
        progress: Option<ProgressFn>,
    ) -> Result<BackupReport> {
        // One listing for both snapshots: a key chunk the listing missed because the data
        // snapshot just wrote it is only offered again and found to exist (create-only).
        let listed = self.object_sets().await;
        let data = self
            .snapshot_stream(
                store.clone(),
                Stream::Data,
                None,
                at,
                progress.clone(),
                listed.clone(),
            )
            .await?;
        let keys = self
            .snapshot_stream(store, Stream::Keys, signing_key, at, progress, listed)
            .await?;
        Ok(BackupReport { data, keys })
    }

    async fn snapshot_stream(
        &self,
        store: Arc<dyn Store>,
        stream: Stream,
        extra: Option<Bytes>,
        at: OffsetDateTime,
        progress: Option<ProgressFn>,
        listed: Vec<Listing>,
    ) -> Result<SnapshotReport> {
        let (plan, reused) = self.reuse_plan(stream, &listed).await;
        let (tx, rx) = mpsc::channel(PIPE);
        let export =
            tokio::spawn(async move { store.export_sections(stream.into(), &plan, tx).await });
        let mut entries = vec![EntryInput {
            name: DUMP_ENTRY.into(),
            data: rx,
        }];
        if let Some(bytes) = extra {
            entries.push(EntryInput::from_bytes(SIGNING_KEY_ENTRY, bytes));
        }
        let summary = async move {
            let s = export
                .await
                .map_err(|e| BackupError::Task(e.to_string()))??;
            Ok(Summary::from(s))
        };
        self.write_snapshot_reusing(stream, at, entries, summary, progress, listed, reused)
            .await
    }

    /// The sections of the newest snapshot of `stream` that a new one may take over
    /// unread: those whose chunks every location that could be listed holds. Nothing when
    /// there is no earlier snapshot or its manifest cannot be read (the export then reads
    /// everything, as a first backup does).
    async fn reuse_plan(&self, stream: Stream, listed: &[Listing]) -> (ReusePlan, ReusedChunks) {
        let mut plan = ReusePlan::default();
        let mut reused = ReusedChunks::new();
        let Ok(Some(previous)) = self.newest(stream).await else {
            return (plan, reused);
        };
        let Ok(manifest) = self.manifest(&previous).await else {
            return (plan, reused);
        };
        let Some(entry) = manifest.entry(DUMP_ENTRY) else {
            return (plan, reused);
        };
        for section in &entry.sections {
            let Some(chunks) = entry.section_chunks(section) else {
                continue;
            };
            let everywhere = chunks.iter().all(|c| {
                listed
                    .iter()
                    .all(|set| set.as_ref().map_or(true, |set| set.contains(&c.id)))
            });
            if everywhere {
                plan.offer(section.section.clone());
                reused.insert(section.section.key.clone(), chunks.to_vec());
            }
        }
        (plan, reused)
    }

    /// Restores data snapshot `data` and the newest key snapshot into `target`, which must
    /// hold no row of either stream, then reconciles. The root key was already checked
    /// when the repository opened.
    ///
    /// # Errors
    /// [`BackupError::UnknownSnapshot`] if `data` is not a data snapshot or there is no key
    /// snapshot; store errors (a non-empty target); unreadable objects.
    pub async fn restore_into(
        &self,
        data: &SnapshotId,
        target: Arc<dyn Store>,
        progress: Option<ProgressFn>,
    ) -> Result<RestoreReport> {
        if data.stream() != Stream::Data {
            return Err(BackupError::UnknownSnapshot(format!(
                "{data} (a key snapshot; restore takes a data snapshot)"
            )));
        }
        let keys = self.newest(Stream::Keys).await?.ok_or_else(|| {
            BackupError::UnknownSnapshot("of the key stream (none was ever taken)".into())
        })?;
        let data_manifest = self.manifest(data).await?;
        let keys_manifest = self.manifest(&keys).await?;
        let data_summary = self
            .import_stream(&data_manifest, target.clone(), progress.clone())
            .await?;
        let keys_summary = self
            .import_stream(&keys_manifest, target.clone(), progress)
            .await?;
        let reconciliation = target.reconcile_restore().await?;
        let signing_key = match keys_manifest.entry(SIGNING_KEY_ENTRY) {
            Some(e) => Some(ward_crypto::Zeroizing::new(self.read_entry_bytes(e).await?)),
            None => None,
        };
        Ok(RestoreReport {
            data: data.clone(),
            keys,
            data_summary,
            keys_summary,
            reconciliation,
            signing_key,
        })
    }

    /// Imports one snapshot (of either stream) into `target`, without reconciliation:
    /// for tools and tests that pair a data snapshot with an older key snapshot.
    ///
    /// # Errors
    /// As [`Repository::restore_into`].
    pub async fn restore_stream(&self, id: &SnapshotId, target: Arc<dyn Store>) -> Result<Summary> {
        let manifest = self.manifest(id).await?;
        self.import_stream(&manifest, target, None).await
    }

    /// Streams a snapshot's dump into `target`'s import.
    async fn import_stream(
        &self,
        manifest: &Manifest,
        target: Arc<dyn Store>,
        progress: Option<ProgressFn>,
    ) -> Result<Summary> {
        let entry = manifest
            .entry(DUMP_ENTRY)
            .ok_or_else(|| BackupError::BadManifest(manifest.id.to_string()))?;
        let (tx, rx) = mpsc::channel(PIPE);
        let stream = manifest.stream;
        let import = tokio::spawn(async move { target.import_snapshot(stream.into(), rx).await });
        // A read failure drops the sender early; the dump format is self-delimiting, so the
        // import refuses the truncated stream and rolls back. The read error is the one to
        // report.
        let read = self.read_entry(entry, tx, progress).await;
        let imported = import.await.map_err(|e| BackupError::Task(e.to_string()))?;
        read?;
        Ok(Summary::from(imported?))
    }
}

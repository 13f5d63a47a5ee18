//! Taking a snapshot: byte streams in, chunks out to every location, manifest last.
//!
//! The chunker runs on a blocking thread (content-defined chunking and keyed hashing are CPU
//! work) and hands new chunks to the uploader, which compresses and encrypts each on a
//! blocking thread and writes it to the locations that lack it, several at a time. A
//! location that fails stops receiving objects and gets no manifest; the others complete.
//! The manifest is written only after every chunk and the store's summary are in, so an
//! interrupted snapshot leaves objects (reused by the next run) but never a manifest that
//! points at missing data.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf as _, Bytes};
use futures::StreamExt as _;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use ward_store::DumpPiece;

use crate::codec::encode_chunk;
use crate::id::{ObjectId, SnapshotId};
use crate::keys::FORMAT;
use crate::location::PutOutcome;
use crate::manifest::{ChunkRef, Entry, EntrySection, Manifest, Summary};
use crate::repository::Repository;
use crate::{BackupError, Result, Stream};

/// Objects uploaded at once (per snapshot, across locations).
const UPLOADS_IN_FLIGHT: usize = 8;

/// One named byte stream to back up.
#[derive(Debug)]
pub struct EntryInput {
    /// Entry name in the manifest.
    pub name: String,
    /// The bytes, in buffers of any size, with the cuts between the store dump's sections
    /// and the sections taken over from the previous snapshot; the stream ends when every
    /// sender is dropped.
    pub data: mpsc::Receiver<DumpPiece>,
}

impl EntryInput {
    /// An entry holding `bytes` (a small file such as the audit signing key).
    #[must_use]
    pub fn from_bytes(name: impl Into<String>, bytes: Bytes) -> Self {
        let (tx, rx) = mpsc::channel(1);
        // Capacity 1 and nothing sent yet: the send cannot fail for lack of room.
        let _ = tx.try_send(DumpPiece::Bytes(bytes));
        Self {
            name: name.into(),
            data: rx,
        }
    }
}

/// The chunks of the previous snapshot's sections that the store may hand back as
/// [`DumpPiece::Reused`], by section key.
pub(crate) type ReusedChunks = HashMap<String, Vec<ChunkRef>>;

/// Called with the number of bytes read, as reading goes (progress bars).
pub type ProgressFn = Arc<dyn Fn(u64) + Send + Sync>;

/// What one location got from a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LocationReport {
    /// The location.
    pub location: String,
    /// Objects written (new to this location).
    pub objects_written: u64,
    /// Bytes written (compressed, encrypted), manifest included.
    pub bytes_written: u64,
    /// Why this location's upload failed; `None` when it holds the snapshot.
    pub error: Option<String>,
}

/// What a snapshot run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotReport {
    /// The new snapshot.
    pub id: SnapshotId,
    /// Its stream.
    pub stream: Stream,
    /// Bytes read from the store (and files).
    pub bytes_read: u64,
    /// Bytes of sections the store left unread because they are unchanged since the
    /// previous snapshot, whose chunks the new one references as they are.
    pub bytes_reused: u64,
    /// Chunks in the snapshot.
    pub chunks: u64,
    /// Plaintext bytes of chunks no location had.
    pub bytes_new: u64,
    /// Plaintext bytes already stored (deduplicated).
    pub bytes_deduplicated: u64,
    /// Per location.
    pub locations: Vec<LocationReport>,
    /// Wall time.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl SnapshotReport {
    /// Whether every location holds the snapshot.
    #[must_use]
    pub fn complete(&self) -> bool {
        self.locations.iter().all(|l| l.error.is_none())
    }

    /// Bytes written to all locations together.
    #[must_use]
    pub fn bytes_written(&self) -> u64 {
        self.locations.iter().map(|l| l.bytes_written).sum()
    }
}

/// A chunk ready for upload.
struct Prepared {
    id: ObjectId,
    /// The plaintext; sealed by the uploader on a blocking thread, so compression and
    /// encryption of several chunks run in parallel with the chunker.
    plain: Vec<u8>,
    /// Indices of the locations that lack it.
    targets: Vec<usize>,
}

struct ChunkerOutput {
    entries: Vec<Entry>,
    bytes_read: u64,
    bytes_reused: u64,
    chunks: u64,
    bytes_new: u64,
}

impl Repository {
    /// Takes a snapshot of `stream` made of `entries` (consumed in order), dated `at`.
    /// `summary` resolves once the producer of the entries has finished (the store's row
    /// counts); if it fails, or an entry's producer stops early, no manifest is written.
    ///
    /// # Errors
    /// If chunking or the summary fails. Location failures are not errors: the report
    /// names each failed location, and [`SnapshotReport::complete`] says whether every
    /// location holds the snapshot.
    pub async fn write_snapshot(
        &self,
        stream: Stream,
        at: OffsetDateTime,
        entries: Vec<EntryInput>,
        summary: impl std::future::Future<Output = Result<Summary>>,
        progress: Option<ProgressFn>,
    ) -> Result<SnapshotReport> {
        let present = self.object_sets().await;
        self.write_snapshot_reusing(
            stream,
            at,
            entries,
            summary,
            progress,
            present,
            ReusedChunks::new(),
        )
        .await
    }

    /// [`Repository::write_snapshot`] with the objects each location holds already listed
    /// and the chunks of the previous snapshot's sections the entries may reuse.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn write_snapshot_reusing(
        &self,
        stream: Stream,
        at: OffsetDateTime,
        entries: Vec<EntryInput>,
        summary: impl std::future::Future<Output = Result<Summary>>,
        progress: Option<ProgressFn>,
        listed: Vec<crate::repository::Listing>,
        reused: ReusedChunks,
    ) -> Result<SnapshotReport> {
        let started = Instant::now();
        let existing = self.snapshot_ids().await.unwrap_or_default();
        let id = SnapshotId::next(at, stream, &existing)?;
        let previous = existing
            .iter()
            .rev()
            .find(|s| s.stream() == stream)
            .cloned();
        let (mut reports, failed, present) = self.location_states(listed);

        let (tx, rx) = mpsc::channel::<Prepared>(UPLOADS_IN_FLIGHT * 2);
        let keys = self.keys.clone();
        let params = self.config.chunking;
        let chunk_failed = failed.clone();
        let chunker = tokio::task::spawn_blocking(move || {
            chunk_entries(
                &keys,
                params,
                entries,
                &reused,
                &present,
                &chunk_failed,
                &tx,
                progress,
            )
        });

        let uploads =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) })
                .map(|p| self.upload(p, failed.clone()))
                .buffer_unordered(UPLOADS_IN_FLIGHT);
        futures::pin_mut!(uploads);
        while let Some(results) = uploads.next().await {
            for (i, outcome) in results {
                match outcome {
                    Ok((PutOutcome::Created, n)) => {
                        reports[i].objects_written += 1;
                        reports[i].bytes_written += n;
                    }
                    Ok((PutOutcome::Existed, _)) => {}
                    Err(e) => {
                        failed[i].store(true, Ordering::Relaxed);
                        reports[i].error.get_or_insert(e.to_string());
                    }
                }
            }
        }
        let out = chunker
            .await
            .map_err(|e| BackupError::Task(e.to_string()))??;
        let summary = summary.await?;

        let manifest = Manifest {
            format: FORMAT,
            id: id.clone(),
            stream,
            time: at,
            previous,
            entries: out.entries,
            summary,
            ward_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let sealed = Bytes::from(manifest.seal(&self.keys)?);
        self.put_manifest(&id, &sealed, &failed, &mut reports).await;
        for u in self.unreachable() {
            reports.push(LocationReport {
                location: u.location.clone(),
                error: Some(u.error.clone()),
                ..LocationReport::default()
            });
        }
        Ok(SnapshotReport {
            id,
            stream,
            bytes_read: out.bytes_read,
            bytes_reused: out.bytes_reused,
            chunks: out.chunks,
            bytes_new: out.bytes_new,
            bytes_deduplicated: out.bytes_read - out.bytes_new,
            locations: reports,
            elapsed: started.elapsed(),
        })
    }

    /// Each location's report, failure flag and listed objects before a snapshot is written:
    /// a location that could not be listed starts failed, with its error, and holds nothing.
    fn location_states(
        &self,
        listed: Vec<crate::repository::Listing>,
    ) -> (
        Vec<LocationReport>,
        Arc<Vec<AtomicBool>>,
        Vec<HashSet<ObjectId>>,
    ) {
        let mut reports: Vec<LocationReport> = self
            .locations
            .iter()
            .map(|l| LocationReport {
                location: l.name().to_owned(),
                ..LocationReport::default()
            })
            .collect();
        let failed: Arc<Vec<AtomicBool>> = Arc::new(
            self.locations
                .iter()
                .map(|_| AtomicBool::new(false))
                .collect(),
        );
        let mut present = Vec::new();
        for (i, set) in listed.into_iter().enumerate() {
            match set {
                Ok(s) => present.push(s),
                Err(e) => {
                    failed[i].store(true, Ordering::Relaxed);
                    reports[i].error = Some(e);
                    present.push(HashSet::new());
                }
            }
        }
        (reports, failed, present)
    }

    /// Writes the sealed manifest, last, to every location that took all its objects: a
    /// snapshot exists at a location only once everything it names is there.
    async fn put_manifest(
        &self,
        id: &SnapshotId,
        sealed: &Bytes,
        failed: &[AtomicBool],
        reports: &mut [LocationReport],
    ) {
        for (i, location) in self.locations.iter().enumerate() {
            if failed[i].load(Ordering::Relaxed) {
                continue;
            }
            match location.put_new(&id.path(), sealed.clone()).await {
                Ok(_) => reports[i].bytes_written += sealed.len() as u64,
                Err(e) => reports[i].error = Some(e.to_string()),
            }
        }
    }

    /// Writes one object to each target location still healthy.
    async fn upload(
        &self,
        p: Prepared,
        failed: Arc<Vec<AtomicBool>>,
    ) -> Vec<(usize, Result<(PutOutcome, u64)>)> {
        let path = p.id.path();
        let (keys, id, plain) = (self.keys.clone(), p.id, p.plain);
        let sealed = tokio::task::spawn_blocking(move || encode_chunk(&keys, &id, &plain))
            .await
            .map_err(|e| BackupError::Task(e.to_string()))
            .and_then(|r| r);
        let sealed = match sealed {
            Ok(s) => Bytes::from(s),
            Err(e) => {
                let msg = e.to_string();
                return p
                    .targets
                    .iter()
                    .map(|&i| (i, Err(BackupError::Task(msg.clone()))))
                    .collect();
            }
        };
        let len = sealed.len() as u64;
        let puts = p
            .targets
            .iter()
            .filter(|i| !failed[**i].load(Ordering::Relaxed))
            .map(|&i| {
                let (path, bytes) = (&path, sealed.clone());
                async move {
                    let r = self.locations[i].put_new(path, bytes).await;
                    (i, r.map(|o| (o, len)))
                }
            });
        futures::future::join_all(puts).await
    }
}

/// The chunker thread: reads each entry, cuts it into content-defined chunks, names them,
/// and hands on the chunks some healthy location lacks. A cut in the input ends a chunk
/// there (so a section of the store's dump is whole chunks, which the next snapshot can
/// take over); a reused section adds the previous snapshot's chunks unread.
#[allow(clippy::too_many_arguments)]
fn chunk_entries(
    keys: &crate::keys::RepoKeys,
    params: crate::keys::ChunkingParams,
    entries: Vec<EntryInput>,
    reused: &ReusedChunks,
    present: &[HashSet<ObjectId>],
    failed: &[AtomicBool],
    tx: &mpsc::Sender<Prepared>,
    progress: Option<ProgressFn>,
) -> Result<ChunkerOutput> {
    let mut seen = HashSet::new();
    let mut out = ChunkerOutput {
        entries: Vec::with_capacity(entries.len()),
        bytes_read: 0,
        bytes_reused: 0,
        chunks: 0,
        bytes_new: 0,
    };
    for input in entries {
        let mut entry = Entry {
            name: input.name,
            size: 0,
            chunks: Vec::new(),
            sections: Vec::new(),
        };
        let mut reader = ChannelReader {
            rx: input.data,
            buf: Bytes::new(),
            marker: None,
        };
        loop {
            let first = entry.chunks.len();
            let chunker = fastcdc::v2020::StreamCDC::new(
                &mut reader,
                params.min as usize,
                params.avg as usize,
                params.max as usize,
            );
            for chunk in chunker {
                let chunk = chunk.map_err(|e| {
                    BackupError::io("reading the snapshot stream", std::io::Error::other(e))
                })?;
                let len = chunk.data.len() as u64;
                let id = keys.chunk_id(&chunk.data);
                entry.size += len;
                entry.chunks.push(ChunkRef {
                    id,
                    len: chunk.data.len() as u32,
                });
                out.chunks += 1;
                out.bytes_read += len;
                if let Some(p) = &progress {
                    p(len);
                }
                if !seen.insert(id) {
                    continue;
                }
                let targets: Vec<usize> = (0..present.len())
                    .filter(|&i| !failed[i].load(Ordering::Relaxed) && !present[i].contains(&id))
                    .collect();
                if targets.is_empty() {
                    continue;
                }
                out.bytes_new += len;
                if tx
                    .blocking_send(Prepared {
                        id,
                        plain: chunk.data,
                        targets,
                    })
                    .is_err()
                {
                    return Err(BackupError::Task("the uploader stopped".into()));
                }
            }
            let section = match reader.marker.take() {
                None => break,
                Some(DumpPiece::Cut(None) | DumpPiece::Bytes(_)) => continue,
                Some(DumpPiece::Cut(Some(section))) => section,
                Some(DumpPiece::Reused(section)) => {
                    let chunks = reused.get(&section.key).ok_or_else(|| {
                        BackupError::Task(format!(
                            "the store reused section {} that the backup did not offer",
                            section.key
                        ))
                    })?;
                    let len: u64 = chunks.iter().map(|c| u64::from(c.len)).sum();
                    if len != section.section.bytes {
                        return Err(BackupError::Task(format!(
                            "section {} is {} bytes in the store's plan but {len} in the \
                             previous snapshot",
                            section.key, section.section.bytes
                        )));
                    }
                    entry.chunks.extend_from_slice(chunks);
                    entry.size += len;
                    out.chunks += chunks.len() as u64;
                    out.bytes_reused += len;
                    if let Some(p) = &progress {
                        p(len);
                    }
                    section
                }
            };
            entry.sections.push(EntrySection {
                section,
                first_chunk: first as u64,
                chunks: (entry.chunks.len() - first) as u64,
            });
        }
        out.entries.push(entry);
    }
    Ok(out)
}

/// `std::io::Read` over a channel of dump pieces, for the synchronous chunker: it reads
/// the bytes and reports the end of input at each cut or reused section, which it keeps in
/// `marker` until the caller takes it; then reading goes on after it.
struct ChannelReader {
    rx: mpsc::Receiver<DumpPiece>,
    buf: Bytes,
    marker: Option<DumpPiece>,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            if self.marker.is_some() {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(DumpPiece::Bytes(b)) => self.buf = b,
                Some(other) => {
                    self.marker = Some(other);
                    return Ok(0);
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf.advance(n);
        Ok(n)
    }
}

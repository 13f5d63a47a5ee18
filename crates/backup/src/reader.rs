//! Reading a snapshot back: each chunk from the first location where it opens and checks.

use bytes::Bytes;
use futures::StreamExt as _;
use tokio::sync::mpsc;

use crate::codec::decode_chunk;
use crate::id::ObjectId;
use crate::manifest::Entry;
use crate::repository::Repository;
use crate::{BackupError, Result};

/// Chunks fetched ahead of the consumer.
const READ_AHEAD: usize = 8;

impl Repository {
    /// Sends `entry`'s bytes, in order, into `out`. Stops early (without error) if the
    /// receiver goes away: the consumer has its own error to report.
    ///
    /// # Errors
    /// [`BackupError::ObjectUnavailable`] if a chunk opens in no location.
    pub async fn read_entry(
        &self,
        entry: &Entry,
        out: mpsc::Sender<Bytes>,
        progress: Option<crate::ProgressFn>,
    ) -> Result<()> {
        let chunks = futures::stream::iter(entry.chunks.iter().map(|c| self.fetch(c.id)))
            .buffered(READ_AHEAD);
        futures::pin_mut!(chunks);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            if let Some(p) = &progress {
                p(chunk.len() as u64);
            }
            if out.send(chunk).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Reads a whole (small) entry into memory.
    ///
    /// # Errors
    /// As [`Self::read_entry`].
    pub async fn read_entry_bytes(&self, entry: &Entry) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0));
        for c in &entry.chunks {
            out.extend_from_slice(&self.fetch(c.id).await?);
        }
        Ok(out)
    }

    /// One chunk's plaintext, from the first location that has a good copy.
    pub(crate) async fn fetch(&self, id: ObjectId) -> Result<Bytes> {
        for l in &self.locations {
            let Ok(Some(stored)) = l.get(&id.path()).await else {
                continue;
            };
            if let Some(plain) = self.decode(id, stored).await? {
                return Ok(plain);
            }
            tracing::warn!(object = %id.path(), location = l.name(), "corrupt backup object; trying the next location");
        }
        Err(BackupError::ObjectUnavailable { object: id.path() })
    }

    /// Decrypts, decompresses and checks an object off the async threads.
    pub(crate) async fn decode(&self, id: ObjectId, stored: Bytes) -> Result<Option<Bytes>> {
        let keys = self.keys.clone();
        tokio::task::spawn_blocking(move || decode_chunk(&keys, &id, &stored).map(Bytes::from))
            .await
            .map_err(|e| BackupError::Task(e.to_string()))
    }
}

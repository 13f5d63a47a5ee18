//! The SHA-256 of each section's bytes, computed where the encoder is or on a thread beside it.
//!
//! Digesting is about a fifth of what a SQLite export spends on its own thread (the rest is
//! walking the b-trees and encoding rows), and the export is a backup's critical path: on a
//! thread of its own the digest runs beside the walk, on a core the rest of the backup does
//! not keep busy. The thread receives the buffers the encoder hands out (shared, not copied)
//! and answers each end of section with that section's digest, so the encoder sees the same
//! digests in the same order as inline hashing would give.

use std::sync::mpsc;

use aws_lc_rs::digest::{Context, SHA256};
use bytes::Bytes;

use super::DIGEST_LEN;
use crate::{Result, StoreError};

/// Buffers queued for the digest thread: with [`super::BUFFER`]-sized buffers, at most this
/// many MiB wait, so a thread that falls behind slows the encoder rather than filling memory.
const QUEUE: usize = 8;

enum Job {
    Update(Bytes),
    Finish,
}

/// Digests of consecutive sections.
pub(super) struct SectionDigest(Mode);

enum Mode {
    Inline(Context),
    Beside {
        jobs: mpsc::SyncSender<Job>,
        digests: mpsc::Receiver<[u8; DIGEST_LEN]>,
    },
}

impl SectionDigest {
    pub(super) fn inline() -> Self {
        Self(Mode::Inline(Context::new(&SHA256)))
    }

    /// Digests on a thread of its own; inline if no thread can be started. The thread ends
    /// when this value is dropped.
    pub(super) fn beside() -> Self {
        let (jobs, inbox) = mpsc::sync_channel::<Job>(QUEUE);
        let (reply, digests) = mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("ward-dump-digest".into())
            .spawn(move || {
                let mut section = Context::new(&SHA256);
                while let Ok(job) = inbox.recv() {
                    match job {
                        Job::Update(bytes) => section.update(&bytes),
                        Job::Finish => {
                            let done = std::mem::replace(&mut section, Context::new(&SHA256));
                            if reply.send(array(done.finish().as_ref())).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        match spawned {
            Ok(_) => Self(Mode::Beside { jobs, digests }),
            Err(_) => Self::inline(),
        }
    }

    /// Adds bytes of the current section.
    pub(super) fn update(&mut self, bytes: &Bytes) -> Result<()> {
        match &mut self.0 {
            Mode::Inline(context) => {
                context.update(bytes);
                Ok(())
            }
            Mode::Beside { jobs, .. } => jobs.send(Job::Update(bytes.clone())).map_err(|_| gone()),
        }
    }

    /// Ends the current section: its digest; the next bytes begin another.
    pub(super) fn finish(&mut self) -> Result<[u8; DIGEST_LEN]> {
        match &mut self.0 {
            Mode::Inline(context) => {
                let done = std::mem::replace(context, Context::new(&SHA256));
                Ok(array(done.finish().as_ref()))
            }
            Mode::Beside { jobs, digests } => {
                jobs.send(Job::Finish).map_err(|_| gone())?;
                digests.recv().map_err(|_| gone())
            }
        }
    }
}

fn gone() -> StoreError {
    StoreError::Snapshot("the dump's digest thread stopped".into())
}

/// A SHA-256 digest as an array.
pub(super) fn array(digest: &[u8]) -> [u8; DIGEST_LEN] {
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(&digest[..DIGEST_LEN]);
    out
}

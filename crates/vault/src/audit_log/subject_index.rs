//! `ward audit verify`'s check of the store's subject index.
//!
//! A subject's access log (the audit view filtered by subject, and the log in a subject's
//! export) is read through the store's postings of sealed segments on SQLite, a table an
//! edit could change to drop a subject's events from those reads. Verification rebuilds
//! each segment's postings from the events it has just authenticated (their filter columns
//! are checked against the signed bytes too) and compares them with the stored ones.

use std::collections::HashMap;

use uuid::Uuid;
use ward_store::{SUBJECT_SEGMENT_BITS, Store};

use super::LogVerifyError;

/// The postings one segment's events give: each (tenant, subject) and its events.
pub(super) struct Segment {
    number: u64,
    /// The first event of the log (events before it were pruned; stored postings may
    /// still name them).
    first: u64,
    events: HashMap<(Uuid, Uuid), Vec<u64>>,
}

/// Gathers the postings of the segment being verified.
pub(super) struct Gather {
    current: Segment,
}

impl Gather {
    pub(super) fn new(first: u64) -> Self {
        Self {
            current: Segment {
                number: first >> SUBJECT_SEGMENT_BITS,
                first,
                events: HashMap::new(),
            },
        }
    }

    /// Adds a verified event; returns the segment it completes the one before of, if any.
    pub(super) fn feed(
        &mut self,
        idx: u64,
        tenant: Option<Uuid>,
        subject: Option<Uuid>,
    ) -> Option<Segment> {
        let (number, first) = (idx >> SUBJECT_SEGMENT_BITS, self.current.first);
        let done = (number != self.current.number).then(|| {
            std::mem::replace(
                &mut self.current,
                Segment {
                    number,
                    first,
                    events: HashMap::new(),
                },
            )
        });
        if let (Some(tenant), Some(subject)) = (tenant, subject) {
            self.current
                .events
                .entry((tenant, subject))
                .or_default()
                .push(idx);
        }
        done
    }

    /// The segment of the newest events (the store answers for it only if it is complete
    /// and sealed).
    pub(super) fn finish(self) -> Segment {
        self.current
    }
}

/// Checks each segment against the store's postings of it, if the store has sealed it.
pub(super) async fn check(store: &dyn Store, segments: Vec<Segment>) -> Result<(), LogVerifyError> {
    for segment in segments {
        let Some(stored) = store.audit_subject_postings(segment.number).await? else {
            continue;
        };
        // Each stored subject's events (those not pruned) must be exactly the ones the
        // events give, and no subject of the events may be left over.
        let mut events = segment.events;
        let mut matches = true;
        for p in stored {
            let indices: Vec<u64> = p
                .indices
                .into_iter()
                .filter(|i| *i >= segment.first)
                .collect();
            if indices.is_empty() {
                continue;
            }
            if events.remove(&(p.tenant, p.subject)).as_ref() != Some(&indices) {
                matches = false;
                break;
            }
        }
        if !matches || !events.is_empty() {
            let first = segment.number << SUBJECT_SEGMENT_BITS;
            return Err(LogVerifyError::SubjectIndexMismatch {
                first: first.max(segment.first),
                last: first + (1 << SUBJECT_SEGMENT_BITS) - 1,
            });
        }
    }
    Ok(())
}

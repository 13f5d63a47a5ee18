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

/// Most subject numbers [`Numbers`] keeps; past this it starts over, so a log naming
/// millions of subjects costs a lookup per subject and segment, not memory.
const NUMBERS_KEPT: usize = 1 << 21;

/// The pairs of the subject numbers seen so far: a verification asks the store for each
/// number once, not once per segment it appears in.
#[derive(Default)]
pub(super) struct Numbers(HashMap<u64, (Uuid, Uuid)>);

/// Checks each segment against the store's postings of it, if the store has sealed it;
/// hands `numbers` back, grown, for the next check.
pub(super) async fn check(
    store: &dyn Store,
    segments: Vec<Segment>,
    mut numbers: Numbers,
) -> Result<Numbers, LogVerifyError> {
    for segment in segments {
        let Some(stored) = store.audit_subject_postings(segment.number).await? else {
            continue;
        };
        let unknown: Vec<u64> = stored
            .iter()
            .map(|p| p.number)
            .filter(|n| !numbers.0.contains_key(n))
            .collect();
        if !unknown.is_empty() {
            if numbers.0.len() + unknown.len() > NUMBERS_KEPT {
                numbers.0.clear();
            }
            let named = store.audit_subject_numbers(unknown).await?;
            numbers.0.extend(
                named
                    .into_iter()
                    .map(|(n, tenant, subject)| (n, (tenant, subject))),
            );
        }
        // Each stored subject's events (those not pruned) must be exactly the ones the
        // events give, and no subject of the events may be left over. A number without a
        // pair finds nothing: a read could not find its events either.
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
            let found = numbers
                .0
                .get(&p.number)
                .and_then(|pair| events.remove(pair));
            if found.as_ref() != Some(&indices) {
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
    Ok(numbers)
}

/// A batch of segments being checked.
type Running<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<Numbers, LogVerifyError>> + Send + 'a>>;

/// A check under way while verification goes on: segments are checked one batch at a time,
/// each batch moved forward between pages (its reads run on the store's threads meanwhile),
/// so the check costs verification little wall time. A mismatch is reported when its
/// batch finishes, a few pages after the segment's end.
pub(super) struct Checking<'a> {
    store: &'a dyn Store,
    running: Option<Running<'a>>,
    numbers: Option<Numbers>,
    waiting: Vec<Segment>,
}

impl<'a> Checking<'a> {
    pub(super) fn new(store: &'a dyn Store) -> Self {
        Self {
            store,
            running: None,
            numbers: Some(Numbers::default()),
            waiting: Vec::new(),
        }
    }

    /// Queues completed segments and moves the running check forward without waiting.
    pub(super) fn advance(&mut self, segments: Vec<Segment>) -> Result<(), LogVerifyError> {
        use futures::FutureExt as _;
        self.waiting.extend(segments);
        if let Some(running) = self.running.as_mut()
            && let Some(done) = running.now_or_never()
        {
            self.numbers = Some(done?);
            self.running = None;
        }
        if self.running.is_none() && !self.waiting.is_empty() {
            let numbers = self.numbers.take().unwrap_or_default();
            let mut running = Box::pin(check(
                self.store,
                std::mem::take(&mut self.waiting),
                numbers,
            ));
            match running.as_mut().now_or_never() {
                Some(done) => self.numbers = Some(done?),
                None => self.running = Some(running),
            }
        }
        Ok(())
    }

    /// Waits for the running check, then checks what is queued and `last`.
    pub(super) async fn finish(mut self, last: Segment) -> Result<(), LogVerifyError> {
        let numbers = match self.running.take() {
            Some(running) => running.await?,
            None => self.numbers.take().unwrap_or_default(),
        };
        self.waiting.push(last);
        check(self.store, self.waiting, numbers).await?;
        Ok(())
    }
}

//! The audit log as the store keeps it: rows, pages of rows packed for streaming, the head,
//! checkpoints and queries.

use super::*;

/// One stored audit event.
#[derive(Debug, Clone)]
pub struct AuditRow {
    /// Position in the log (0-based, gap-free).
    pub idx: u64,
    /// Canonical event bytes (the Merkle leaf data).
    pub event: Vec<u8>,
    /// Hash chain value after this event.
    pub chain: [u8; 32],
    /// The columns copied out of the event for filtering; the verifier checks them against
    /// the event, since the tenant view selects on them.
    pub columns: AuditColumns,
}

/// Filterable copies of event fields stored beside each audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditColumns {
    /// Event time, Unix microseconds.
    pub at: i64,
    /// Tenant.
    pub tenant: Option<Uuid>,
    /// Subject.
    pub subject: Option<Uuid>,
    /// Actor id.
    pub actor: String,
    /// Action name.
    pub action: String,
    /// Outcome name.
    pub outcome: String,
}

/// Consecutive audit rows packed into two buffers. Verification reads every row of the log,
/// and allocating an [`AuditRow`] (four heap buffers each) cost as much as hashing it; a page
/// costs four allocations however many rows it holds.
#[derive(Debug, Default)]
pub struct AuditPage {
    events: Vec<u8>,
    text: String,
    rows: Vec<PagedAuditRow>,
}

#[derive(Debug)]
struct PagedAuditRow {
    idx: u64,
    chain: [u8; 32],
    at: i64,
    tenant: Option<Uuid>,
    subject: Option<Uuid>,
    /// Where the event ends in `events` (it starts where the previous row's ends).
    event_end: usize,
    /// Where actor, action and outcome end in `text`.
    text_ends: [usize; 3],
}

/// One row of an [`AuditPage`], borrowed from it.
#[derive(Debug, Clone, Copy)]
pub struct AuditRowRef<'a> {
    /// Position in the log.
    pub idx: u64,
    /// Canonical event bytes (the Merkle leaf data).
    pub event: &'a [u8],
    /// Hash chain value after this event.
    pub chain: &'a [u8; 32],
    /// Event time column, Unix microseconds.
    pub at: i64,
    /// Tenant column.
    pub tenant: Option<Uuid>,
    /// Subject column.
    pub subject: Option<Uuid>,
    /// Actor id column.
    pub actor: &'a str,
    /// Action column.
    pub action: &'a str,
    /// Outcome column.
    pub outcome: &'a str,
}

impl AuditPage {
    /// An empty page with room for `rows` rows of about `event_bytes` bytes each.
    #[must_use]
    pub fn with_capacity(rows: usize, event_bytes: usize) -> Self {
        Self {
            events: Vec::with_capacity(rows * event_bytes),
            text: String::with_capacity(rows * 48),
            rows: Vec::with_capacity(rows),
        }
    }

    /// Appends a row.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        idx: u64,
        event: &[u8],
        chain: [u8; 32],
        at: i64,
        tenant: Option<Uuid>,
        subject: Option<Uuid>,
        text: [&str; 3],
    ) {
        self.events.extend_from_slice(event);
        let mut text_ends = [0; 3];
        for (end, t) in text_ends.iter_mut().zip(text) {
            self.text.push_str(t);
            *end = self.text.len();
        }
        self.rows.push(PagedAuditRow {
            idx,
            chain,
            at,
            tenant,
            subject,
            event_end: self.events.len(),
            text_ends,
        });
    }

    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the page holds no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Index of the last row.
    #[must_use]
    pub fn last_idx(&self) -> Option<u64> {
        self.rows.last().map(|r| r.idx)
    }

    /// Index of the first row.
    #[must_use]
    pub fn first_idx(&self) -> Option<u64> {
        self.rows.first().map(|r| r.idx)
    }

    /// Appends the rows of `next`, which must follow this page's in log order.
    pub fn append(&mut self, next: Self) {
        let (events, text) = (self.events.len(), self.text.len());
        self.events.extend_from_slice(&next.events);
        self.text.push_str(&next.text);
        self.rows.extend(next.rows.into_iter().map(|mut r| {
            r.event_end += events;
            for end in &mut r.text_ends {
                *end += text;
            }
            r
        }));
    }

    /// The rows in log order.
    pub fn iter(&self) -> impl Iterator<Item = AuditRowRef<'_>> {
        let (mut event_start, mut text_start) = (0, 0);
        self.rows.iter().map(move |r| {
            let event = &self.events[event_start..r.event_end];
            let [actor_end, action_end, outcome_end] = r.text_ends;
            let row = AuditRowRef {
                idx: r.idx,
                event,
                chain: &r.chain,
                at: r.at,
                tenant: r.tenant,
                subject: r.subject,
                actor: &self.text[text_start..actor_end],
                action: &self.text[actor_end..action_end],
                outcome: &self.text[action_end..outcome_end],
            };
            (event_start, text_start) = (r.event_end, outcome_end);
            row
        })
    }
}

impl FromIterator<AuditRow> for AuditPage {
    fn from_iter<I: IntoIterator<Item = AuditRow>>(rows: I) -> Self {
        let mut page = Self::default();
        for r in rows {
            let c = &r.columns;
            page.push(
                r.idx,
                &r.event,
                r.chain,
                c.at,
                c.tenant,
                c.subject,
                [&c.actor, &c.action, &c.outcome],
            );
        }
        page
    }
}

/// The audit tree head.
#[derive(Debug, Clone)]
pub struct AuditHead {
    /// Number of events.
    pub size: u64,
    /// Merkle root over all events.
    pub root: ward_audit::Hash,
    /// Hash chain value after the last event.
    pub chain: ward_audit::Hash,
    /// Persistable frontier.
    pub frontier: Vec<u8>,
}

/// A stored signed checkpoint.
#[derive(Debug, Clone)]
pub struct CheckpointRow {
    /// Tree size it commits to.
    pub tree_size: u64,
    /// The checkpoint as JSON.
    pub checkpoint: String,
    /// Frontier at that size (lets verification resume after pruning).
    pub frontier: Vec<u8>,
    /// When it was made.
    pub created_at: OffsetDateTime,
}

/// Filters of the tenant audit view.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Tenant whose events are listed.
    pub tenant: Uuid,
    /// Only events at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only events before this time.
    pub until: Option<OffsetDateTime>,
    /// Only this actor id.
    pub actor: Option<String>,
    /// Only this subject.
    pub subject: Option<Uuid>,
    /// Only this action (snake_case).
    pub action: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// Cursor: only indices greater than this.
    pub after: Option<u64>,
    /// Page size.
    pub limit: u32,
}

/// Bits of the log index one segment of a store's subject index spans (65,536 events): the
/// SQLite store seals each complete segment into one postings row per subject present.
pub const SUBJECT_SEGMENT_BITS: u32 = 16;

/// One subject's events in a sealed segment of the subject index, as the store keeps them:
/// under the number the store gave the (tenant, subject) pair
/// ([`crate::Store::audit_subject_numbers`] names the pair).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectPostings {
    /// The pair's number.
    pub number: u64,
    /// Indices of the subject's events in the segment, ascending.
    pub indices: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn row(idx: u64, event: Vec<u8>, text: [String; 3], ids: [Option<u128>; 2]) -> AuditRow {
        let [actor, action, outcome] = text;
        AuditRow {
            idx,
            chain: [idx as u8; 32],
            event,
            columns: AuditColumns {
                at: idx as i64 * 7,
                tenant: ids[0].map(Uuid::from_u128),
                subject: ids[1].map(Uuid::from_u128),
                actor,
                action,
                outcome,
            },
        }
    }

    proptest! {
        /// A page hands back exactly the rows packed into it, in order, whatever their sizes
        /// (empty strings and events included), also when it was put together from two.
        #[test]
        fn a_page_returns_the_rows_packed_into_it(
            rows in proptest::collection::vec(
                (
                    proptest::collection::vec(any::<u8>(), 0..600),
                    ["\\PC{0,12}", "\\PC{0,12}", "\\PC{0,12}"],
                    [any::<Option<u128>>(), any::<Option<u128>>()],
                ),
                0..40,
            ),
            cut in any::<usize>(),
        ) {
            let rows: Vec<AuditRow> = rows
                .into_iter()
                .enumerate()
                .map(|(i, (event, text, ids))| row(i as u64 + 5, event, text, ids))
                .collect();
            // Packed as two pages cut anywhere (one of them maybe empty) and appended.
            let mut page: AuditPage = rows[..cut % (rows.len() + 1)].iter().cloned().collect();
            page.append(rows[cut % (rows.len() + 1)..].iter().cloned().collect());
            prop_assert_eq!(page.first_idx(), rows.first().map(|r| r.idx));
            prop_assert_eq!(page.len(), rows.len());
            prop_assert_eq!(page.last_idx(), rows.last().map(|r| r.idx));
            for (got, want) in page.iter().zip(&rows) {
                let c = &want.columns;
                prop_assert_eq!(got.idx, want.idx);
                prop_assert_eq!(got.event, &want.event[..]);
                prop_assert_eq!(got.chain, &want.chain);
                prop_assert_eq!((got.at, got.tenant, got.subject), (c.at, c.tenant, c.subject));
                prop_assert_eq!([got.actor, got.action, got.outcome], [&c.actor[..], &c.action, &c.outcome]);
            }
            prop_assert_eq!(page.iter().count(), rows.len());
        }
    }
}

//! The subject index of the audit log's sealed segments (migration 0016).
//!
//! A subject's access log is found through two indexes. The per-event chunk index
//! (`audit_events_subject_chunk`, migration 0005) is cheap to write, since a group commit's
//! entries land in the newest chunk's few pages, but a read seeks once per 1,024 events of
//! the log: about 10,000 seeks, 50 ms, for one page of a subject's events at 10 M events.
//! So once a *segment* of 65,536 events is complete, the writer thread seals it: one row per
//! subject present, `(segment, subject number, offsets)`, written in key order at the end of
//! `audit_subject_postings`. A subject's log then costs one seek per sealed segment (153 at
//! 10 M events) plus the chunk walk of the unsealed rest (at most two segments).
//!
//! Invariants:
//! - Postings are derived from the events' `tenant` and `subject` columns, like the chunk
//!   index, and are no more trusted than it: a read fetches each event by index with the
//!   query's tenant and subject as conditions, and the vault checks the event's own content.
//! - Readers use postings only below the mark `audit_sealed.segments`, which is raised in
//!   the transaction that writes a segment's last rows. Rows of a segment above the mark
//!   (a seal cut short by a crash, or under way in another process) are never read, and the
//!   next seal of that segment overwrites them with the same values.
//! - Sealing never delays a commit by more than one step: the writer runs a step (a few
//!   milliseconds: 8,192 events read, or 4,096 subjects numbered or rows written, each
//!   write step its own transaction) after a group commit, or while it has nothing to commit.

use std::collections::HashMap;

use super::*;
use crate::decode::u64_at;

/// Bits of the log index one segment spans: 65,536 events.
pub(super) const SEGMENT_BITS: u32 = crate::SUBJECT_SEGMENT_BITS;

/// Events read per step of sealing.
const READ_STEP: u64 = 8_192;

/// Subjects numbered, or posting rows written, per step (one transaction each).
const WRITE_STEP: usize = 4_096;

/// Subject numbers the writer keeps in memory; past this the cache starts over at the next
/// segment, so a log naming millions of subjects costs a lookup per subject, not memory.
const CACHE_LIMIT: usize = 1 << 20;

/// Segments one statement of a subject's walk covers: one seek each, inside one statement.
const SEGMENTS_PER_STEP: u64 = 64;

/// A tenant and one of its subjects.
type Pair = (Uuid, Uuid);

/// Segments below the mark are sealed.
pub(super) fn sealed_segments(conn: &Connection) -> Result<u64> {
    let n: Option<i64> = conn
        .prepare_cached("SELECT segments FROM audit_sealed WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// The writer thread's sealing: which segments are sealed and the one being sealed.
pub(super) struct Sealer {
    /// Segments below this are sealed, as this writer last read or wrote the mark.
    sealed: u64,
    job: Option<Job>,
    numbers: HashMap<Pair, i64>,
    /// After a step failed, no retry before the log reaches this size (a warning per
    /// segment, not per commit).
    retry_at: u64,
    /// Whether rows of sealed segments may be left to move into bundles (`audit_bundles`):
    /// at open, and after each seal, until a step finds none.
    bundling: bool,
}

/// The segment being sealed.
struct Job {
    seg: u64,
    phase: Phase,
}

enum Phase {
    /// Reading the segment's events; `next` is the first index not read yet.
    Reading {
        next: u64,
        offsets: HashMap<Pair, Vec<u16>>,
    },
    /// Numbering the subjects present, in pair order; `pairs[done..]` are still to number.
    Numbering {
        pairs: Vec<(Pair, Vec<u16>)>,
        done: usize,
    },
    /// Writing the rows in subject-number order; `rows[done..]` are still to write.
    Writing {
        rows: Vec<(i64, Vec<u8>)>,
        done: usize,
    },
}

impl Sealer {
    pub(super) fn load(conn: &Connection) -> Result<Self> {
        Ok(Self {
            sealed: sealed_segments(conn)?,
            job: None,
            numbers: HashMap::new(),
            retry_at: 0,
            bundling: true,
        })
    }

    /// Whether a step is owed: sealing a complete segment of a log of `size` events, or
    /// bundling the rows of sealed ones.
    pub(super) fn owed(&self, size: u64) -> bool {
        self.bundling || self.seal_owed(size)
    }

    /// Whether a complete segment of a log of `size` events is not sealed yet.
    fn seal_owed(&self, size: u64) -> bool {
        size >= self.retry_at && size >> SEGMENT_BITS > self.sealed
    }

    /// One step of sealing, or else of bundling, if one is owed; a failure is logged. A
    /// segment whose sealing failed is sealed again from its start once the log has grown by
    /// another segment; bundling that failed is tried again after the next seal.
    pub(super) fn step(&mut self, conn: &mut Connection, size: u64) {
        if !self.seal_owed(size) {
            if self.bundling
                && let Err(e) = self.bundle_step(conn)
            {
                tracing::warn!(error = %e, "moving the audit log's sealed rows into bundles");
                self.bundling = false;
            }
            return;
        }
        if let Err(e) = self.try_step(conn, size) {
            tracing::warn!(error = %e, segment = self.sealed, "sealing the audit log's subject index");
            self.job = None;
            self.retry_at = size.saturating_add(1 << SEGMENT_BITS);
        }
    }

    /// Seals every complete segment of a log of `size` events and bundles their rows;
    /// returns the mark.
    pub(super) fn finish(&mut self, conn: &mut Connection, size: u64) -> Result<u64> {
        self.retry_at = 0;
        while self.seal_owed(size) {
            if let Err(e) = self.try_step(conn, size) {
                self.job = None;
                return Err(e);
            }
        }
        self.bundling = true;
        while self.bundling {
            self.bundle_step(conn)?;
        }
        Ok(self.sealed)
    }

    /// Moves a step's worth of sealed rows into bundles.
    fn bundle_step(&mut self, conn: &mut Connection) -> Result<()> {
        self.bundling = super::audit_bundles::step(conn, self.sealed << SEGMENT_BITS)?;
        Ok(())
    }

    fn try_step(&mut self, conn: &mut Connection, size: u64) -> Result<()> {
        let job = match self.job.take() {
            Some(job) => job,
            None => match self.start(conn, size)? {
                Some(job) => job,
                None => return Ok(()),
            },
        };
        let seg = job.seg;
        let base = seg << SEGMENT_BITS;
        let phase = match job.phase {
            Phase::Reading { next, mut offsets } => {
                let end = base + (1 << SEGMENT_BITS);
                let to = (next + READ_STEP).min(end);
                read(conn, next..to, base, &mut offsets)?;
                if to < end {
                    Phase::Reading { next: to, offsets }
                } else {
                    let mut pairs: Vec<_> = offsets.into_iter().collect();
                    pairs.sort_unstable_by_key(|(pair, _)| *pair);
                    Phase::Numbering { pairs, done: 0 }
                }
            }
            Phase::Numbering { pairs, done } => {
                let to = (done + WRITE_STEP).min(pairs.len());
                self.number(conn, pairs[done..to].iter().map(|(pair, _)| pair))?;
                if to < pairs.len() {
                    Phase::Numbering { pairs, done: to }
                } else {
                    let mut rows = Vec::with_capacity(pairs.len());
                    for (pair, offsets) in pairs {
                        let sno = self.numbers.get(&pair).copied().ok_or_else(|| {
                            StoreError::Corrupt("a subject lost its number while sealing".into())
                        })?;
                        rows.push((sno, encode_offsets(&offsets)));
                    }
                    rows.sort_unstable_by_key(|(sno, _)| *sno);
                    Phase::Writing { rows, done: 0 }
                }
            }
            Phase::Writing { rows, done } => {
                let to = (done + WRITE_STEP).min(rows.len());
                let last = to == rows.len();
                write(conn, seg, &rows[done..to], last)?;
                if last {
                    self.sealed = self.sealed.max(seg + 1);
                    self.bundling = true;
                    return Ok(());
                }
                Phase::Writing { rows, done: to }
            }
        };
        self.job = Some(Job { seg, phase });
        Ok(())
    }

    /// The next segment to seal, skipping segments another process sealed and segments
    /// whose events were all pruned.
    fn start(&mut self, conn: &Connection, size: u64) -> Result<Option<Job>> {
        self.sealed = self.sealed.max(sealed_segments(conn)?);
        if !self.seal_owed(size) {
            return Ok(None);
        }
        let (oldest, _) = super::audit_bundles::index_range(conn)?;
        // Never past the last complete segment: when pruning emptied every complete segment
        // not sealed yet, the last of them is sealed (with no rows), which raises the mark
        // over all of them, and the segment still filling is left alone.
        let seg = self
            .sealed
            .max(oldest.unwrap_or(0).max(0) as u64 >> SEGMENT_BITS)
            .min((size >> SEGMENT_BITS).saturating_sub(1));
        if self.numbers.len() > CACHE_LIMIT {
            self.numbers.clear();
        }
        Ok(Some(Job {
            seg,
            phase: Phase::Reading {
                next: seg << SEGMENT_BITS,
                offsets: HashMap::new(),
            },
        }))
    }

    /// Gives each pair a number (its existing one, or a new one), in one transaction.
    fn number<'a>(
        &mut self,
        conn: &mut Connection,
        pairs: impl Iterator<Item = &'a Pair>,
    ) -> Result<()> {
        let missing: Vec<Pair> = pairs
            .filter(|pair| !self.numbers.contains_key(pair))
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut numbered = Vec::with_capacity(missing.len());
        {
            let mut find = tx.prepare_cached(
                "SELECT sno FROM audit_subject_ids WHERE tenant = ?1 AND subject = ?2",
            )?;
            let mut add = tx.prepare_cached(
                "INSERT INTO audit_subject_ids (tenant, subject) VALUES (?1, ?2) RETURNING sno",
            )?;
            for (tenant, subject) in missing {
                let ids = params![tenant.as_bytes(), subject.as_bytes()];
                let sno: i64 = match find.query_row(ids, |r| r.get(0)).optional()? {
                    Some(sno) => sno,
                    None => add.query_row(ids, |r| r.get(0))?,
                };
                numbered.push(((tenant, subject), sno));
            }
        }
        tx.commit()?;
        self.numbers.extend(numbered);
        Ok(())
    }
}

/// Adds the offsets (from `base`) of the events in `range` to their subjects' lists: those
/// bundled (a segment sealed again, its postings lost), then the rows.
fn read(
    conn: &Connection,
    range: std::ops::Range<u64>,
    base: u64,
    offsets: &mut HashMap<Pair, Vec<u16>>,
) -> Result<()> {
    let offset_of = |idx: u64| {
        u16::try_from(idx - base)
            .map_err(|_| StoreError::Corrupt(format!("event {idx} outside its segment")))
    };
    super::read::audit::in_snapshot(conn, |conn| {
        super::audit_bundles::each_from(conn, range.start, |bundle| {
            bundle.each(range.start, |idx, event, _| {
                if idx >= range.end {
                    return Ok(false);
                }
                if let Some(c) = crate::audit_columns::Columns::of(event)
                    && let (Some(tenant), Some(subject)) = (c.tenant, c.subject)
                {
                    offsets
                        .entry((tenant, subject))
                        .or_default()
                        .push(offset_of(idx)?);
                }
                Ok(true)
            })
        })?;
        read_rows(conn, range, offsets, offset_of)
    })
}

/// [`read`] of the events stored as rows.
fn read_rows(
    conn: &Connection,
    range: std::ops::Range<u64>,
    offsets: &mut HashMap<Pair, Vec<u16>>,
    offset_of: impl Fn(u64) -> Result<u16>,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT idx, tenant, subject FROM audit_events WHERE idx >= ?1 AND idx < ?2 \
         AND tenant IS NOT NULL AND subject IS NOT NULL ORDER BY idx",
    )?;
    let mut rows = stmt.query(params![range.start as i64, range.end as i64])?;
    while let Some(row) = rows.next()? {
        offsets
            .entry((uuid_at(row, 1)?, uuid_at(row, 2)?))
            .or_default()
            .push(offset_of(u64_at(row, 0)?)?);
    }
    Ok(())
}

/// Writes posting rows of `seg` in one transaction, raising the mark with the last of them.
fn write(conn: &mut Connection, seg: u64, rows: &[(i64, Vec<u8>)], last: bool) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO audit_subject_postings (seg, sno, offsets) \
             VALUES (?1, ?2, ?3)",
        )?;
        for (sno, offsets) in rows {
            insert.execute(params![seg as i64, sno, offsets])?;
        }
        if last {
            tx.prepare_cached("UPDATE audit_sealed SET segments = MAX(segments, ?1) WHERE id = 1")?
                .execute([(seg + 1) as i64])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Ascending offsets as LEB128 deltas (the first from zero).
pub(super) fn encode_offsets(offsets: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(offsets.len() * 2);
    let mut prev = 0u16;
    for &offset in offsets {
        crate::audit_codec::push_leb128(&mut out, usize::from(offset.saturating_sub(prev)));
        prev = offset;
    }
    out
}

/// The offsets [`encode_offsets`] wrote; anything else is corruption.
pub(super) fn decode_offsets(bytes: &[u8]) -> Result<Vec<u16>> {
    let corrupt = || StoreError::Corrupt("audit subject postings: bad offsets".into());
    let mut out = Vec::with_capacity(bytes.len());
    let (mut prev, mut delta, mut shift) = (0u32, 0u32, 0u32);
    for &byte in bytes {
        if shift > 14 {
            return Err(corrupt());
        }
        delta |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 != 0 {
            shift += 7;
            continue;
        }
        prev += delta;
        out.push(u16::try_from(prev).map_err(|_| corrupt())?);
        (delta, shift) = (0, 0);
    }
    if shift != 0 {
        return Err(corrupt());
    }
    Ok(out)
}

/// The postings of sealed segment `seg`, by subject number (one range scan: resolving the
/// numbers row by row would cost more than the scan); `None` if it is not sealed.
pub(super) fn segment(conn: &Connection, seg: u64) -> Result<Option<Vec<SubjectPostings>>> {
    if seg >= sealed_segments(conn)? {
        return Ok(None);
    }
    let base = seg << SEGMENT_BITS;
    let mut stmt =
        conn.prepare_cached("SELECT sno, offsets FROM audit_subject_postings WHERE seg = ?1")?;
    let mut rows = stmt.query([seg as i64])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(SubjectPostings {
            number: u64_at(row, 0)?,
            indices: decode_offsets(blob_at(row, 1)?)?
                .into_iter()
                .map(|o| base + u64::from(o))
                .collect(),
        });
    }
    Ok(Some(out))
}

/// The pair of each subject number that has one.
pub(super) fn pairs(conn: &Connection, numbers: &[u64]) -> Result<Vec<(u64, Uuid, Uuid)>> {
    let mut stmt =
        conn.prepare_cached("SELECT tenant, subject FROM audit_subject_ids WHERE sno = ?1")?;
    let mut out = Vec::with_capacity(numbers.len());
    for &n in numbers {
        let pair = stmt
            .query_row([n as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((tenant, subject)) = pair {
            out.push((n, tenant, subject));
        }
    }
    Ok(out)
}

/// Walks `tenant`'s `subject` through the sealed segments' postings from index `from` on,
/// calling `f` with each index in order until it returns false. Returns where the sealed
/// segments end: the caller walks the chunk index from there.
pub(super) fn walk(
    conn: &Connection,
    (tenant, subject): Pair,
    from: u64,
    mut f: impl FnMut(u64) -> Result<bool>,
) -> Result<u64> {
    let sealed = sealed_segments(conn)?;
    let end = sealed << SEGMENT_BITS;
    if from >= end {
        return Ok(end);
    }
    let sno: Option<i64> = conn
        .prepare_cached("SELECT sno FROM audit_subject_ids WHERE tenant = ?1 AND subject = ?2")?
        .query_row(params![tenant.as_bytes(), subject.as_bytes()], |r| r.get(0))
        .optional()?;
    let Some(sno) = sno else {
        return Ok(end);
    };
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE segs(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM segs WHERE n < ?2) \
         SELECT seg, offsets FROM audit_subject_postings WHERE seg IN segs AND sno = ?3 \
         ORDER BY seg",
    )?;
    let mut seg = from >> SEGMENT_BITS;
    while seg < sealed {
        let to = (seg + SEGMENTS_PER_STEP - 1).min(sealed - 1);
        let mut rows = stmt.query(params![seg as i64, to as i64, sno])?;
        while let Some(row) = rows.next()? {
            let base = u64_at(row, 0)? << SEGMENT_BITS;
            for offset in decode_offsets(blob_at(row, 1)?)? {
                let idx = base + u64::from(offset);
                if idx >= from && !f(idx)? {
                    return Ok(end);
                }
            }
        }
        seg = to + 1;
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn offsets_round_trip(mut offsets in proptest::collection::vec(any::<u16>(), 0..300)) {
            offsets.sort_unstable();
            let bytes = encode_offsets(&offsets);
            prop_assert_eq!(decode_offsets(&bytes).unwrap(), offsets);
        }

        #[test]
        fn any_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(offsets) = decode_offsets(&bytes) {
                prop_assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
            }
        }
    }

    #[test]
    fn a_truncated_delta_is_corrupt() {
        assert!(decode_offsets(&[0x80]).is_err());
        assert!(decode_offsets(&[0xff, 0xff, 0xff, 0x01]).is_err());
    }
}

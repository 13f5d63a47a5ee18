//! The audit log's sealed history, stored in bundles (migration 0017).
//!
//! One audit event stored as a row costs about 400 bytes on disk: its packed JSON (~140
//! bytes), its chain value, six filter columns copied out of it, and an entry in each of two
//! indexes. Most of that serves the newest events (appends, the unsealed subject walk); the
//! sealed history only needs to be read in order, by tenant, and by index through the subject
//! postings. So once a segment is sealed, the writer thread moves its rows into bundles of up
//! to 16 consecutive events ([`BUNDLE_BITS`]): one row holding their canonical bytes as one
//! compressed frame, the chain value after the first of them, and the latest event time, plus
//! a summary row per tenant present in each block of 256 events. The filter columns are not stored: a read takes them
//! from the events themselves ([`crate::audit_columns`]), so they cannot disagree with what
//! was signed.
//!
//! Why 16 events: a read of one event (a subject's page finds its events through the
//! postings, scattered over the whole log) inflates its bundle and hashes the events before it
//! for its chain value; at 16 that is about 7 KB and up to 15 hashes. Bundles of 32 took a
//! page of 100 such events to a p99 of 6.2 ms at 10 M events (BENCHMARKS.md) for 5 bytes an
//! event less; 256, as tlog-tiles stores, would take eight times that again.
//!
//! Invariants:
//! - Every bundled event precedes every event still stored as a row: bundling takes the
//!   oldest rows and only rows below the sealed mark, and rows are appended at the end. Reads
//!   read the bundles first, then the rows.
//! - A bundle holds consecutive events whose stored chain values follow one from the other:
//!   bundling starts a new bundle at a gap in the indices or at a chain value that does not
//!   follow, so a bundled log reads, and verifies, exactly as its rows did, damage included.
//! - A bundle never spans two blocks of 16 events (by index), so bundles line up with
//!   the log's blocks whatever the prune left.
//! - Moving rows into bundles is one transaction a step: an event is a row or in a bundle,
//!   never both and never neither.

use std::collections::BTreeSet;

use super::*;
use crate::audit_codec::{self, Unbundled};
use crate::audit_columns::Columns;
use crate::decode::u64_at;

/// Bits of the log index one bundle spans at most.
pub(super) const BUNDLE_BITS: u32 = 4;

/// Bits of the log index one summary row of `audit_bundle_tenants` covers: 256 events (the 8
/// written out in the join of `tenant_bundles!`).
const SUMMARY_BITS: u32 = 8;

// A bundle never spans two summary blocks.
const _: () = assert!(SUMMARY_BITS >= BUNDLE_BITS);

/// Rows moved into bundles per step (one transaction, a few milliseconds).
const BUNDLE_STEP: u64 = 2_048;

/// An index as SQLite stores it (past `i64::MAX` means "after every event").
pub(super) fn sql_index(i: u64) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

/// The key of a tenant in `audit_bundle_tenants` (Ward's own events have no tenant).
fn tenant_key(tenant: Option<Uuid>) -> Vec<u8> {
    tenant.map(|t| t.as_bytes().to_vec()).unwrap_or_default()
}

/// A bundle, unpacked.
pub(super) struct Bundle {
    first: u64,
    /// The chain value after the first event.
    chain: Hash,
    events: Unbundled,
}

/// The columns [`Bundle::from_row`] reads.
macro_rules! bundle_columns {
    () => {
        "first, count, chain, body"
    };
}

impl Bundle {
    fn from_row(row: &Row<'_>) -> Result<Self> {
        let first = u64_at(row, 0)?;
        let count = u64_at(row, 1)?;
        let corrupt =
            || StoreError::Corrupt(format!("the audit bundle at event {first} does not unpack"));
        let chain = hash_at(row, 2).map_err(|_| corrupt())?;
        let events = audit_codec::unpack_bundle(blob_at(row, 3)?)
            .filter(|e| e.len() as u64 == count && count > 0)
            .ok_or_else(corrupt)?;
        Ok(Self {
            first,
            chain,
            events,
        })
    }

    /// Index of the first event.
    pub(super) fn first(&self) -> u64 {
        self.first
    }

    /// One past the index of the last event.
    pub(super) fn end(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    /// Calls `f` with each event from index `from` on (its index, canonical bytes and chain
    /// value) until `f` returns false; returns false if it did.
    pub(super) fn each(
        &self,
        from: u64,
        mut f: impl FnMut(u64, &[u8], &Hash) -> Result<bool>,
    ) -> Result<bool> {
        let mut chain = self.chain;
        for (i, event) in self.events.iter().enumerate() {
            let idx = self.first + i as u64;
            if i > 0 {
                chain = chain_hash(&chain, &leaf_hash(event));
            }
            if idx >= from && !f(idx, event, &chain)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The bundle holding event `idx`, if it is bundled.
pub(super) fn containing(c: &Connection, idx: u64) -> Result<Option<Bundle>> {
    let found = first(
        c,
        concat!(
            "SELECT ",
            bundle_columns!(),
            " FROM audit_bundles WHERE first = (SELECT MAX(first) FROM audit_bundles \
             WHERE first <= ?1) AND first + count > ?1"
        ),
        [sql_index(idx)],
        Bundle::from_row,
    )?;
    Ok(found)
}

/// Runs a statement listing bundles and calls `f` with each holding events from `from` on,
/// until `f` returns false; returns false if it did.
fn each_listed<P: Params>(
    c: &Connection,
    sql: &str,
    params: P,
    from: u64,
    mut f: impl FnMut(&Bundle) -> Result<bool>,
) -> Result<bool> {
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    while let Some(row) = rows.next()? {
        // A bundle wholly before `from` (the first ones of a tenant's block) is not inflated.
        if u64_at(row, 0)?.saturating_add(u64_at(row, 1)?) <= from {
            continue;
        }
        if !f(&Bundle::from_row(row)?)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Calls `f` with each bundle that meets `condition` (binding `?1` to `param`) and holds
/// events from `from` on, in log order, until `f` returns false; returns false if it did.
fn each_in_order(
    c: &Connection,
    condition: &str,
    param: i64,
    from: u64,
    f: impl FnMut(&Bundle) -> Result<bool>,
) -> Result<bool> {
    let sql = format!(
        concat!(
            "SELECT ",
            bundle_columns!(),
            " FROM audit_bundles WHERE {} ORDER BY first"
        ),
        condition
    );
    each_listed(c, &sql, [param], from, f)
}

/// Calls `f` with each bundle holding events from `from` on, in log order, until `f` returns
/// false; returns false if it did.
pub(super) fn each_from(
    c: &Connection,
    from: u64,
    f: impl FnMut(&Bundle) -> Result<bool>,
) -> Result<bool> {
    each_in_order(
        c,
        "first >= COALESCE((SELECT MAX(first) FROM audit_bundles WHERE first <= ?1), 0)",
        sql_index(from),
        from,
        f,
    )
}

/// The bundles of the blocks that hold events of `tenant`: the join that
/// [`each_of_tenant`] and [`each_of_tenant_newest_first`] order. A bundle never spans two
/// blocks, so each is found by a range of the primary key inside its block.
macro_rules! tenant_bundles {
    () => {
        "SELECT b.first, b.count, b.chain, b.body FROM audit_bundle_tenants t \
         JOIN audit_bundles b ON b.first >= (t.block << 8) AND b.first < ((t.block + 1) << 8) \
         WHERE t.tenant = ?1"
    };
}

/// [`each_from`] over the bundles in blocks that hold events of `tenant` (`None`: Ward's
/// own); the caller filters their events.
pub(super) fn each_of_tenant(
    c: &Connection,
    tenant: Option<Uuid>,
    from: u64,
    f: impl FnMut(&Bundle) -> Result<bool>,
) -> Result<bool> {
    each_listed(
        c,
        concat!(tenant_bundles!(), " AND t.block >= ?2 ORDER BY b.first"),
        params![tenant_key(tenant), sql_index(from >> SUMMARY_BITS)],
        from,
        f,
    )
}

/// The bundles in blocks that hold events of `tenant`, newest first, until `f` returns false.
pub(super) fn each_of_tenant_newest_first(
    c: &Connection,
    tenant: Option<Uuid>,
    f: impl FnMut(&Bundle) -> Result<bool>,
) -> Result<bool> {
    each_listed(
        c,
        concat!(tenant_bundles!(), " ORDER BY b.first DESC"),
        [tenant_key(tenant)],
        0,
        f,
    )
}

/// The first bundle (in log order) holding an event at or after `at` (Unix µs), by the
/// bundles' latest times, then each later one until `f` returns false.
pub(super) fn each_reaching(
    c: &Connection,
    at: i64,
    f: impl FnMut(&Bundle) -> Result<bool>,
) -> Result<bool> {
    each_in_order(c, "at_max >= ?1", at, 0, f)
}

/// Where the bundled history ends: every stored event below this index is in a bundle, every
/// one at or above it a row.
pub(super) fn end(c: &Connection) -> Result<u64> {
    let end: Option<i64> = c
        .prepare_cached("SELECT first + count FROM audit_bundles ORDER BY first DESC LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(end.unwrap_or(0).max(0) as u64)
}

/// The lowest and the highest event index stored, bundles and rows together.
pub(super) fn index_range(c: &Connection) -> Result<(Option<i64>, Option<i64>)> {
    // Each MIN or MAX in a subquery of its own: SQLite answers a lone one from the end of the
    // primary key.
    Ok(c.prepare_cached(
        "SELECT COALESCE((SELECT MIN(first) FROM audit_bundles), \
         (SELECT MIN(idx) FROM audit_events)), COALESCE((SELECT MAX(idx) FROM audit_events), \
         (SELECT first + count - 1 FROM audit_bundles ORDER BY first DESC LIMIT 1))",
    )?
    .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// The newest event's index and stored chain value.
pub(super) fn newest(c: &Connection) -> Result<Option<(u64, Vec<u8>)>> {
    let row: Option<(i64, Vec<u8>)> = c
        .prepare_cached("SELECT idx, chain FROM audit_events ORDER BY idx DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((idx, chain)) = row {
        return Ok(Some((idx.max(0) as u64, chain)));
    }
    let bundle = first(
        c,
        concat!(
            "SELECT ",
            bundle_columns!(),
            " FROM audit_bundles ORDER BY first DESC LIMIT 1"
        ),
        [],
        Bundle::from_row,
    )?;
    let mut last = None;
    if let Some(b) = bundle {
        b.each(0, |idx, _, chain| {
            last = Some((idx, chain.to_vec()));
            Ok(true)
        })?;
    }
    Ok(last)
}

/// The stored chain value of event `idx`.
pub(super) fn chain_at(c: &Connection, idx: u64) -> Result<Option<Vec<u8>>> {
    let row: Option<Vec<u8>> = c
        .prepare_cached("SELECT chain FROM audit_events WHERE idx = ?1")?
        .query_row([sql_index(idx)], |r| r.get(0))
        .optional()?;
    if row.is_some() {
        return Ok(row);
    }
    let mut found = None;
    if let Some(b) = containing(c, idx)? {
        b.each(idx, |_, _, chain| {
            found = Some(chain.to_vec());
            Ok(false)
        })?;
    }
    Ok(found)
}

// ---- writing --------------------------------------------------------------------------------

/// Consecutive events about to become one bundle.
struct Run {
    first: u64,
    chain: Hash,
    events: Vec<Vec<u8>>,
    last_chain: Hash,
}

/// Stores `events` (canonical bytes, consecutive from index `first`) as one bundle whose first
/// event's chain value is `chain`, with its summary rows.
fn insert_bundle(conn: &Connection, first: u64, chain: &Hash, events: &[Vec<u8>]) -> Result<()> {
    let mut at_max = i64::MIN;
    let mut tenants = BTreeSet::new();
    for event in events {
        // An event that does not read is stored all the same (verification names it); it is
        // in no tenant's view, as a row whose columns do not match its event is not.
        if let Some(c) = Columns::of(event) {
            at_max = at_max.max(c.at);
            tenants.insert(tenant_key(c.tenant));
        }
    }
    run(
        conn,
        "INSERT INTO audit_bundles (first, count, at_max, chain, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            sql_index(first),
            events.len() as i64,
            at_max,
            chain.as_slice(),
            audit_codec::pack_bundle(events.iter().map(Vec::as_slice)),
        ],
    )?;
    let mut summary = conn.prepare_cached(
        "INSERT OR IGNORE INTO audit_bundle_tenants (tenant, block) VALUES (?1, ?2)",
    )?;
    for tenant in tenants {
        summary.execute(params![tenant, sql_index(first >> SUMMARY_BITS)])?;
    }
    Ok(())
}

/// Moves up to a step's worth of the oldest rows below index `limit` (the end of the sealed
/// segments) into bundles, in one transaction. Returns whether rows below `limit` are left.
pub(super) fn step(conn: &mut Connection, limit: u64) -> Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let oldest: Option<i64> = tx
        .prepare_cached("SELECT idx FROM audit_events ORDER BY idx LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let Some(from) = oldest.map(|i| i.max(0) as u64).filter(|&i| i < limit) else {
        return Ok(false);
    };
    // Steps end on a block boundary, so that a step never leaves a block's events in two
    // bundles (the one after a pruned start ends at the first boundary past it).
    let to = (((from + BUNDLE_STEP) >> BUNDLE_BITS) << BUNDLE_BITS).min(limit);
    let mut runs: Vec<Run> = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT idx, event, chain FROM audit_events WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
        )?;
        let mut rows = stmt.query(params![sql_index(from), sql_index(to)])?;
        while let Some(row) = rows.next()? {
            let idx = u64_at(row, 0)?;
            let event = audit_codec::unpack(blob_at(row, 1)?).into_owned();
            let chain = hash_at(row, 2).map_err(|_| {
                StoreError::Corrupt(format!("audit event {idx} has a malformed chain value"))
            })?;
            let follows = runs.last().is_some_and(|r| {
                r.first + r.events.len() as u64 == idx
                    && r.first >> BUNDLE_BITS == idx >> BUNDLE_BITS
                    && chain_hash(&r.last_chain, &leaf_hash(&event)) == chain
            });
            match runs.last_mut() {
                Some(r) if follows => {
                    r.events.push(event);
                    r.last_chain = chain;
                }
                _ => runs.push(Run {
                    first: idx,
                    chain,
                    events: vec![event],
                    last_chain: chain,
                }),
            }
        }
    }
    for r in &runs {
        insert_bundle(&tx, r.first, &r.chain, &r.events)?;
    }
    run(
        &tx,
        "DELETE FROM audit_events WHERE idx >= ?1 AND idx < ?2",
        params![sql_index(from), sql_index(to)],
    )?;
    tx.commit()?;
    Ok(to < limit)
}

/// Prunes the bundled events below `before`: whole bundles go; the bundle `before` falls in
/// is stored again from `before` on, so the log starts exactly where the prune says.
pub(super) fn prune(conn: &Connection, before: u64) -> Result<()> {
    // Summary rows of blocks wholly pruned; the block the cut falls in keeps its rows (a
    // tenant whose events there were all pruned costs a read that finds none).
    run(
        conn,
        "DELETE FROM audit_bundle_tenants WHERE block < ?1",
        [sql_index(before >> SUMMARY_BITS)],
    )?;
    // `first < ?1`: a range of the primary key, not a scan of the whole log.
    run(
        conn,
        "DELETE FROM audit_bundles WHERE first < ?1 AND first + count <= ?1",
        [sql_index(before)],
    )?;
    if let Some(b) = containing(conn, before)?
        && b.first() < before
    {
        let (mut chain, mut events) = (None, Vec::new());
        b.each(before, |_, event, c| {
            chain.get_or_insert(*c);
            events.push(event.to_vec());
            Ok(true)
        })?;
        run(
            conn,
            "DELETE FROM audit_bundles WHERE first = ?1",
            [sql_index(b.first())],
        )?;
        if let Some(chain) = chain {
            insert_bundle(conn, before, &chain, &events)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_join_spans_the_summary_block() {
        let block = format!("(t.block << {SUMMARY_BITS})");
        assert!(tenant_bundles!().contains(&block));
    }
}

//! Logical snapshots of a store, for backups and for moving between backends.
//!
//! A snapshot is one consistent point-in-time dump of one of two **streams**, which backups
//! keep for different lengths of time:
//!
//! - [`SnapshotStream::Data`]: tenants, API keys, invitations, users (sealed e-mails and TOTP
//!   secrets, password hashes), recovery codes, sessions, support grants, subjects, records, the blind
//!   index, anonymized records, holds and held records, data-subject requests, key jobs, audit
//!   checkpoints, the audit log and its head. Everything except key material. Kept up to
//!   12 months.
//! - [`SnapshotStream::Keys`]: wrapped tenant, subject, retired subject and hold keys, and the
//!   erasure ledger. Kept only for the key window (30 days by default), so a subject erased
//!   today is undecryptable in every backup once the window has passed.
//!
//! A backup dumps the data stream first and the key stream after it, so every key a data row
//! needs is in the key snapshot. A restore imports a data snapshot, then the newest key
//! snapshot, then runs [`crate::Store::reconcile_restore`]: whatever the ledger lists, or the
//! newest keys no longer hold a key for, is erased or destroyed again.
//!
//! Every table of both schemas belongs to exactly one stream ([`SnapshotStream::tables`]);
//! migration bookkeeping (`_ward_migrations`, `_sqlx_migrations`) belongs to none, since an
//! importing store has its own.
//!
//! # The format (version 2)
//!
//! The dump is the same whichever backend wrote it, so a SQLite dump imports into PostgreSQL
//! and back. It carries logical values, not a backend's column types: ids are 16-byte UUIDs,
//! times are Unix microseconds, key versions are the versions of the wrapped key (taken from
//! the key rows on SQLite and from the rows they protect on PostgreSQL).
//!
//! ```text
//! dump   = "WARDSNAP" version:u8 stream:u8 frame*      (stream: 1 data, 2 keys)
//! frame  = len:varint kind:u8 payload                  (len counts kind and payload)
//! 'T'    table   name:str ncols:varint (name:str type:u8 nullable:u8)*
//! 'R'    row     one value per column
//! 'E'    end     rows:varint                           (rows of the table just ended)
//! 'S'    section (no payload)                          (ends a section; version 2)
//! 'Z'    trailer tables:varint rows:varint sha256:[32]
//! value  = [present:u8 if nullable] int:zigzag-varint | uuid:[16] | bytes:len-prefixed
//! ```
//!
//! **Sections.** Version 2 cuts the dump into sections: the first begins with the header,
//! each `S` frame ends one (and belongs to it), the trailer ends the last. The trailer's
//! digest is SHA-256 over the SHA-256 of each section's bytes, in order. An export puts each
//! large data table ([`MARKED_TABLES`]) in a section of its own and the audit log in
//! sections of [`AUDIT_SECTION_EVENTS`] event indices, and reports each with a key and a
//! **mark** ([`DumpPiece::Cut`]). A later export offered those sections ([`ReusePlan`])
//! compares marks inside its own read transaction and, for a section still the same, hands
//! back [`DumpPiece::Reused`] without reading a row: its digest and row count come from
//! the plan, its bytes from the consumer (a backup's earlier chunks). Marks are kept by the
//! database: every insert, update or delete on a marked table replaces its random token in
//! `dump_marks` by trigger (per row on SQLite, per statement and writer slot on
//! PostgreSQL), so no write path can forget to; an audit section's mark is its first and
//! last index and the chain value of its last event, which commits to every event before
//! it, and events never change once appended. A corrupt reused section fails the trailer's
//! digest at import like any other corruption.
//!
//! Version 1 (one digest over every byte before the trailer, no sections) is still read,
//! so backups taken before sections existed restore.
//!
//! Varints are LEB128; strings and byte strings are a varint length then the bytes. The
//! tables of a stream appear in a fixed order (parents before children), each once, with the
//! column list above so a reader can refuse a dump whose shape it does not know; rows are in
//! primary-key order (byte order for ids and text), so two dumps of the same content are
//! byte-identical whichever backend wrote them, which is what lets a backup repository
//! deduplicate one day's dump against the day before's. A frame is at most
//! [`format::MAX_FRAME`] bytes. Anything else (a bad magic, an unknown version, the other
//! stream, an unexpected table or column, a short or overlong frame, a count or digest that
//! does not match, bytes after the trailer, input that ends before it) is refused with
//! [`crate::StoreError::Snapshot`]; an import runs in one transaction, so a refused dump
//! leaves the target as empty as it was.
//!
//! The audit head (size, chain value, Merkle frontier) travels as the one row of
//! `audit_head`. An import rebuilds the head from the checkpoint at the start of the stored
//! log and every event after it, and refuses a dump whose head disagrees: a restored store
//! appends its next event at the right index and the chain continues.

mod audit_tail;
pub mod format;
pub(crate) mod reconcile;
pub(crate) mod tables;

pub(crate) use audit_tail::AuditRebuild;

use std::collections::BTreeMap;

/// The two backup streams: they are kept for different lengths of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotStream {
    /// Ciphertext records, subjects, blind index, audit log and checkpoints, tenants,
    /// api keys, invitations, requests, holds, anonymized records, key jobs: everything
    /// that is not key material. Kept up to 12 months.
    Data,
    /// Wrapped tenant, subject, retired and hold keys, the erasure ledger, and the
    /// deployment's audit signing key. Kept only for the key window (default 30 days).
    Keys,
}

impl SnapshotStream {
    /// Both streams, data first (the order a restore imports them in).
    pub const ALL: [Self; 2] = [Self::Data, Self::Keys];

    /// The logical tables of this stream, in the order a dump holds them.
    pub fn tables(self) -> Vec<&'static str> {
        tables::of(self).iter().map(|t| t.name).collect()
    }

    /// The stream's name: `data` or `keys`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Keys => "keys",
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::Data => 1,
            Self::Keys => 2,
        }
    }
}

impl std::fmt::Display for SnapshotStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Rows per table in one snapshot, for summaries and `verify --full` count checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotSummary {
    /// Rows of each table of the stream (every table is listed, also when empty).
    pub tables: BTreeMap<String, u64>,
    /// Bytes of the dump.
    pub bytes: u64,
}

impl SnapshotSummary {
    /// Rows in all tables together.
    pub fn rows(&self) -> u64 {
        self.tables.values().sum()
    }
}

/// Decodes a whole dump of `stream` without a database: every frame, row and count, and the
/// trailer's digest. What `import_snapshot` would refuse, this refuses with the same error;
/// what it accepts has the summary an import would report. For checking a dump (a backup's,
/// a fuzzer's input) before anything is written.
///
/// # Errors
/// [`crate::StoreError::Snapshot`] naming what is wrong.
pub fn check_dump(stream: SnapshotStream, dump: &[u8]) -> crate::Result<SnapshotSummary> {
    let mut decoder = format::Decoder::new(stream);
    decoder.feed(dump)?;
    while let Some(item) = decoder.next()? {
        if let format::Item::Row(table, payload) = item {
            format::decode_row(table, &payload)?;
        }
    }
    decoder.finish()
}

/// What the reconciliation after a restore removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reconciliation {
    /// Subjects erased since the data snapshot (in the ledger, or without a key) that the
    /// restore had brought back and that are now erased again.
    pub erased_subjects: u64,
    /// Tenants destroyed since the data snapshot (or without a tenant key) whose data the
    /// restore had brought back and that are now destroyed again.
    pub destroyed_tenants: u64,
    /// Records, held records and anonymized records removed with them.
    pub records_removed: u64,
}

/// One piece of a dump as an export hands it out: bytes, or where a section ends, or a
/// section taken from an earlier dump in place of its bytes.
///
/// A dump (format version 2) is cut into **sections**, each digested on its own, and the
/// trailer carries the digest of the section digests. That is what lets an export skip a
/// large table (or a range of the audit log) whose content has not changed since an earlier
/// dump: it hands out [`DumpPiece::Reused`] with that dump's section, and the consumer (a
/// backup) supplies the section's bytes from where it keeps them. Concatenating every
/// piece's bytes, reused ones included, gives exactly the dump a full export would have
/// written.
#[derive(Debug, Clone)]
pub enum DumpPiece {
    /// Bytes of the dump, in order.
    Bytes(bytes::Bytes),
    /// The section the bytes since the previous cut belong to ends here; `Some` when a
    /// later export may reuse it (see [`ReusePlan`]).
    Cut(Option<SectionInfo>),
    /// The earlier dump's section goes here, unchanged; its bytes are not handed out.
    Reused(SectionInfo),
}

/// A section of a dump that a later export may reuse, as that export needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlannedSection {
    /// What the store said about the section's content when it was written: the same mark
    /// means the same content (a random token that every write to the table replaces; for
    /// the audit log, the range of event indices and the chain value of the last one).
    pub mark: String,
    /// SHA-256 of the section's bytes.
    #[serde(with = "hex_digest")]
    pub digest: [u8; 32],
    /// Rows the section holds.
    pub rows: u64,
    /// Bytes the section holds.
    pub bytes: u64,
}

/// A reusable section and its name (`records`, `audit_events/12`, …).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SectionInfo {
    /// The section's name, stable from one dump to the next.
    pub key: String,
    /// Its content.
    #[serde(flatten)]
    pub section: PlannedSection,
}

/// The sections of an earlier dump an export may reuse when their mark has not moved.
#[derive(Debug, Clone, Default)]
pub struct ReusePlan {
    sections: std::collections::HashMap<String, PlannedSection>,
}

impl ReusePlan {
    /// Offers `section` for reuse.
    pub fn offer(&mut self, section: SectionInfo) {
        self.sections.insert(section.key, section.section);
    }

    /// The earlier section `key` if its content is what `mark` says the store holds now.
    pub(crate) fn reusable(&self, key: &str, mark: &str) -> Option<&PlannedSection> {
        self.sections.get(key).filter(|s| s.mark == mark)
    }
}

/// Data-stream tables large enough to be sections of their own, each with a mark that every
/// write to it replaces (a trigger on both backends, table `dump_marks`). Smaller tables are
/// dumped every time.
pub(crate) const MARKED_TABLES: &[&str] = &[
    "subjects",
    "records",
    "blind_index",
    "anonymized_records",
    "held_records",
];

/// Audit events per section of the audit log: events never change once appended (pruning
/// removes a prefix), so every section but the newest is reused until pruning reaches it.
pub(crate) const AUDIT_SECTION_EVENTS: i64 = 1 << 14;

/// The audit log's sections in a dump: for each, its key, the first and last event index it
/// holds, given the lowest and highest index stored.
pub(crate) fn audit_sections(lowest: i64, highest: i64) -> Vec<(String, i64, i64)> {
    if lowest > highest || lowest < 0 {
        return Vec::new();
    }
    (lowest / AUDIT_SECTION_EVENTS..=highest / AUDIT_SECTION_EVENTS)
        .map(|n| {
            let first = (n * AUDIT_SECTION_EVENTS).max(lowest);
            let last = ((n + 1) * AUDIT_SECTION_EVENTS - 1).min(highest);
            (format!("audit_events/{n}"), first, last)
        })
        .collect()
}

/// The mark of a section of the audit log: the chain value at its last event commits to
/// every event up to it, and the first index says whether pruning took any.
pub(crate) fn audit_mark(first: i64, last: i64, chain: Option<&[u8]>) -> String {
    format!("{first}-{last}:{}", hex::encode(chain.unwrap_or_default()))
}

/// The mark of a marked table whose `dump_marks` row is missing (a damaged schema): one
/// that no earlier section carries, so the table is read.
pub(crate) fn unmarked() -> String {
    format!("unmarked-{}", uuid::Uuid::new_v4())
}

/// How an export writes a table.
pub(crate) enum TableLayout {
    /// Its own section, reused while the table's mark stays.
    Marked,
    /// Sections of [`AUDIT_SECTION_EVENTS`] events each, reused while their marks stay.
    AuditLog,
    /// The audit log's head (a table on PostgreSQL, the writer's memory on SQLite).
    AuditHead,
    /// Dumped every time.
    Plain,
}

impl TableLayout {
    pub(crate) fn of(stream: SnapshotStream, table: &tables::Table) -> Self {
        match (stream, table.name) {
            (SnapshotStream::Data, "audit_events") => Self::AuditLog,
            (SnapshotStream::Data, "audit_head") => Self::AuditHead,
            (SnapshotStream::Data, name) if MARKED_TABLES.contains(&name) => Self::Marked,
            _ => Self::Plain,
        }
    }
}

mod hex_digest {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(d))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(String::deserialize(d)?, &mut out)
            .map_err(|_| serde::de::Error::custom("a digest is 64 hexadecimal digits"))?;
        Ok(out)
    }
}

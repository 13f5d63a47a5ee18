//! The snapshot format's encoder and decoder (described in the parent module).
//!
//! The encoder fills buffers of about [`BUFFER`] bytes that the caller sends on as they fill;
//! the decoder takes input in pieces of any size (a frame may straddle any number of them)
//! and hands out one frame at a time. Neither panics on any input: every malformation is a
//! [`StoreError::Snapshot`].

use aws_lc_rs::digest::{Context, SHA256};
use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::tables::{self, Column, Table, Type};
use super::{DumpPiece, PlannedSection, SectionInfo, SnapshotStream, SnapshotSummary};
use crate::{Result, StoreError};

mod digest;

use digest::SectionDigest;

/// The first bytes of every dump.
pub(crate) const MAGIC: &[u8; 8] = b"WARDSNAP";
/// The format version this code writes.
pub(crate) const VERSION: u8 = 2;
/// Version 1: one digest over the whole dump, no sections. Still read (older backups).
const VERSION_1: u8 = 1;
/// The largest frame accepted: far above any row Ward writes (a record's ciphertext is
/// bounded by the API's body limit), low enough that a corrupt length cannot exhaust memory.
pub const MAX_FRAME: usize = 64 << 20;
/// The size of the buffers the encoder hands out.
pub const BUFFER: usize = 1 << 20;

const HEADER_LEN: usize = MAGIC.len() + 2;
const TABLE: u8 = b'T';
const ROW: u8 = b'R';
const END: u8 = b'E';
const TRAILER: u8 = b'Z';
const SECTION: u8 = b'S';
const DIGEST_LEN: usize = 32;

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Snapshot(msg.into())
}

/// One value of a row, borrowed from the store's row or from the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Null,
    /// An integer or a time (Unix microseconds).
    Int(i64),
    Uuid([u8; 16]),
    Bytes(&'a [u8]),
    Text(&'a str),
}

impl Value<'_> {
    fn fits(&self, ty: Type) -> bool {
        matches!(
            (self, ty),
            (Self::Int(_), Type::Int | Type::Time)
                | (Self::Uuid(_), Type::Uuid)
                | (Self::Bytes(_), Type::Bytes)
                | (Self::Text(_), Type::Text)
        )
    }
}

/// A 16-byte id read from a store, or a clear error naming where it was.
pub(crate) fn uuid_value<'a>(bytes: &[u8], table: &str, column: &str) -> Result<Value<'a>> {
    <[u8; 16]>::try_from(bytes)
        .map(Value::Uuid)
        .map_err(|_| StoreError::Corrupt(format!("{table}.{column} is not a 16-byte id")))
}

// ---- primitives -----------------------------------------------------------------------------

fn put_varint(out: &mut impl BufMut, mut n: u64) {
    while n >= 0x80 {
        out.put_u8((n as u8) | 0x80);
        n >>= 7;
    }
    out.put_u8(n as u8);
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn put_bytes(out: &mut impl BufMut, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.put_slice(bytes);
}

/// Reads a varint from the front of `input`: `Ok(None)` if `input` ends inside it.
fn peek_varint(input: &[u8]) -> Result<Option<(u64, usize)>> {
    let mut n = 0u64;
    for (i, byte) in input.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 1 {
            return Err(invalid("a length or number overflows 64 bits"));
        }
        n |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((n, i + 1)));
        }
    }
    if input.len() >= 10 {
        Err(invalid("a length or number overflows 64 bits"))
    } else {
        Ok(None)
    }
}

/// A cursor over one frame's payload that refuses to read past it.
struct Reader<'a> {
    input: &'a [u8],
    what: &'a str,
}

impl<'a> Reader<'a> {
    fn short(&self) -> StoreError {
        invalid(format!("{} ends early", self.what))
    }

    fn varint(&mut self) -> Result<u64> {
        let (n, len) = peek_varint(self.input)?.ok_or_else(|| self.short())?;
        self.input = &self.input[len..];
        Ok(n)
    }

    fn u8(&mut self) -> Result<u8> {
        let (&first, rest) = self.input.split_first().ok_or_else(|| self.short())?;
        self.input = rest;
        Ok(first)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        if self.input.len() < len {
            return Err(self.short());
        }
        let (head, rest) = self.input.split_at(len);
        self.input = rest;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = usize::try_from(self.varint()?).map_err(|_| self.short())?;
        self.take(len)
    }

    fn str(&mut self) -> Result<&'a str> {
        let what = self.what;
        std::str::from_utf8(self.bytes()?)
            .map_err(|_| invalid(format!("{what}: text is not UTF-8")))
    }

    fn done(&self) -> Result<()> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(invalid(format!("{} has trailing bytes", self.what)))
        }
    }
}

/// Encodes one value (already checked against its column) into `out`.
fn put_value(out: &mut Vec<u8>, column: &Column, value: &Value<'_>) {
    if column.nullable {
        out.push(u8::from(*value != Value::Null));
    }
    match value {
        Value::Null => {}
        Value::Int(n) => put_varint(out, zigzag(*n)),
        Value::Uuid(id) => out.extend_from_slice(id),
        Value::Bytes(b) => put_bytes(out, b),
        Value::Text(t) => put_bytes(out, t.as_bytes()),
    }
}

/// Decodes one row frame's payload into its values, in column order.
pub(crate) fn decode_row<'a>(table: &'a Table, payload: &'a [u8]) -> Result<Vec<Value<'a>>> {
    let mut r = Reader {
        input: payload,
        what: table.name,
    };
    let mut values = Vec::with_capacity(table.columns.len());
    for (i, column) in table.columns.iter().enumerate() {
        // A dump written before the table's last nullable columns were added ends its rows
        // early (its table header said so, `check_table`); they restore as NULL.
        if r.input.is_empty() && table.columns[i..].iter().all(|c| c.nullable) {
            values.resize(table.columns.len(), Value::Null);
            break;
        }
        if column.nullable {
            match r.u8()? {
                0 => {
                    values.push(Value::Null);
                    continue;
                }
                1 => {}
                _ => {
                    return Err(invalid(format!(
                        "{}.{}: bad null marker",
                        table.name, column.name
                    )));
                }
            }
        }
        values.push(match column.ty {
            Type::Int | Type::Time => Value::Int(unzigzag(r.varint()?)),
            Type::Uuid => Value::Uuid(r.take(16)?.try_into().map_err(|_| r.short())?),
            Type::Bytes => Value::Bytes(r.bytes()?),
            Type::Text => Value::Text(r.str()?),
        });
    }
    r.done()?;
    Ok(values)
}

fn put_table(out: &mut Vec<u8>, table: &Table) {
    put_bytes(out, table.name.as_bytes());
    put_varint(out, table.columns.len() as u64);
    for column in table.columns {
        put_bytes(out, column.name.as_bytes());
        out.push(column.ty.code());
        out.push(u8::from(column.nullable));
    }
}

/// The name a table frame announces.
fn table_name(payload: &[u8]) -> Result<&str> {
    Reader {
        input: payload,
        what: "a table header",
    }
    .str()
}

/// Checks that a table frame describes `expected`, or `expected` as an older Ward wrote it:
/// its columns in order, possibly without trailing nullable ones added since.
fn check_table(payload: &[u8], expected: &Table) -> Result<()> {
    let mut r = Reader {
        input: payload,
        what: "a table header",
    };
    let name = r.str()?;
    if name != expected.name {
        return Err(invalid(format!(
            "expected table {} next, found {name:?}",
            expected.name
        )));
    }
    let count = usize::try_from(r.varint()?).unwrap_or(usize::MAX);
    let known = expected.columns.len();
    if count > known
        || expected.columns[count.min(known)..]
            .iter()
            .any(|c| !c.nullable)
    {
        return Err(invalid(format!(
            "table {name} has {count} columns, this Ward knows {known}"
        )));
    }
    for column in &expected.columns[..count] {
        let found = r.str()?;
        let ty = r.u8()?;
        let nullable = r.u8()?;
        if found != column.name || ty != column.ty.code() || nullable != u8::from(column.nullable) {
            return Err(invalid(format!(
                "table {name}: column {found:?} does not match {} as this Ward knows it",
                column.name
            )));
        }
    }
    r.done()
}

/// Whether a dump may lack `table` (it was added after dumps without it were written).
fn added_later(table: &Table) -> bool {
    tables::ADDED_LATER.contains(&table.name)
}

// ---- the encoder ----------------------------------------------------------------------------

/// Writes one dump, table by table, into buffers of about [`BUFFER`] bytes.
pub(crate) struct Encoder {
    tables: &'static [Table],
    buf: BytesMut,
    scratch: Vec<u8>,
    /// The digest of the section digests (what the trailer carries).
    outer: Context,
    /// The digest of the current section's bytes so far.
    section: SectionDigest,
    /// Where the current section began (bytes from the start of the dump).
    section_start: u64,
    /// The current section, when the caller named it for reuse, and its rows so far.
    named: Option<(String, String, u64)>,
    /// The table being written and its rows so far.
    current: Option<(&'static Table, u64)>,
    next_table: usize,
    summary: SnapshotSummary,
}

impl Encoder {
    /// Starts a dump of `stream` (writes the header).
    pub(crate) fn new(stream: SnapshotStream) -> Self {
        Self::digesting(stream, SectionDigest::inline())
    }

    /// Starts a dump of `stream` whose sections are digested on a thread beside the caller's
    /// (see [`digest`]): for a caller on a blocking thread of its own, as a SQLite export is.
    /// The digests and the dump are the same as [`Encoder::new`]'s.
    pub(crate) fn digest_beside(stream: SnapshotStream) -> Self {
        Self::digesting(stream, SectionDigest::beside())
    }

    fn digesting(stream: SnapshotStream, section: SectionDigest) -> Self {
        let mut buf = BytesMut::with_capacity(BUFFER + BUFFER / 4);
        buf.put_slice(MAGIC);
        buf.put_u8(VERSION);
        buf.put_u8(stream.code());
        Self {
            tables: tables::of(stream),
            buf,
            scratch: Vec::new(),
            outer: Context::new(&SHA256),
            section,
            section_start: 0,
            named: None,
            current: None,
            next_table: 0,
            summary: SnapshotSummary::default(),
        }
    }

    /// Bytes written so far, buffered ones included.
    fn position(&self) -> u64 {
        self.summary.bytes + self.buf.len() as u64
    }

    /// Ends the current section with a section frame: hands out its bytes and the cut.
    fn cut(&mut self, pieces: &mut Vec<DumpPiece>) -> Result<()> {
        self.frame(SECTION);
        let bytes = self.take()?;
        let len = self.summary.bytes - self.section_start;
        if !bytes.is_empty() {
            pieces.push(DumpPiece::Bytes(bytes));
        }
        let digest = self.section.finish()?;
        self.outer.update(&digest);
        let info = self.named.take().map(|(key, mark, rows)| SectionInfo {
            key,
            section: PlannedSection {
                mark,
                digest,
                rows,
                bytes: len,
            },
        });
        pieces.push(DumpPiece::Cut(info));
        self.section_start = self.summary.bytes;
        Ok(())
    }

    /// Starts a section a later dump may reuse (see [`Encoder::reuse`]): `key` names it
    /// among the dump's sections, `mark` changes whenever its content may have. Ends the
    /// section before it if that holds anything. Returns the pieces to send on.
    pub(crate) fn begin_section(&mut self, key: String, mark: String) -> Result<Vec<DumpPiece>> {
        if self.named.is_some() {
            return Err(invalid("a section begun inside another"));
        }
        let mut pieces = Vec::new();
        if self.position() > self.section_start {
            self.cut(&mut pieces)?;
        }
        self.named = Some((key, mark, 0));
        Ok(pieces)
    }

    /// Ends the section [`Encoder::begin_section`] began.
    pub(crate) fn end_section(&mut self) -> Result<Vec<DumpPiece>> {
        if self.named.is_none() {
            return Err(invalid("a section ended that was not begun"));
        }
        let mut pieces = Vec::new();
        self.cut(&mut pieces)?;
        Ok(pieces)
    }

    /// Puts the section `key` of an earlier dump in place of writing it, its content known
    /// unchanged (same mark): the consumer supplies its bytes. With `whole`, the section was
    /// that whole table (begun and ended in it); without, rows of the current table.
    pub(crate) fn reuse(
        &mut self,
        key: &str,
        planned: &PlannedSection,
        whole: Option<&Table>,
    ) -> Result<Vec<DumpPiece>> {
        if self.named.is_some() {
            return Err(invalid("a section reused inside another"));
        }
        let mut pieces = Vec::new();
        if self.position() > self.section_start {
            self.cut(&mut pieces)?;
        }
        match (whole, self.current.as_mut()) {
            (Some(table), None) => {
                let expected = self
                    .tables
                    .get(self.next_table)
                    .filter(|t| t.name == table.name)
                    .ok_or_else(|| invalid(format!("table {} reused out of order", table.name)))?;
                self.next_table += 1;
                self.summary
                    .tables
                    .insert(expected.name.to_owned(), planned.rows);
            }
            (None, Some((_, rows))) => *rows += planned.rows,
            _ => return Err(invalid(format!("section {key} reused out of place"))),
        }
        self.outer.update(&planned.digest);
        self.summary.bytes += planned.bytes;
        self.section_start = self.summary.bytes;
        pieces.push(DumpPiece::Reused(SectionInfo {
            key: key.to_owned(),
            section: planned.clone(),
        }));
        Ok(pieces)
    }

    fn frame(&mut self, kind: u8) {
        put_varint(&mut self.buf, self.scratch.len() as u64 + 1);
        self.buf.put_u8(kind);
        self.buf.put_slice(&self.scratch);
        self.scratch.clear();
    }

    /// Starts the next table of the stream, which must be `table`.
    pub(crate) fn begin(&mut self, table: &Table) -> Result<&'static Table> {
        let expected = self
            .tables
            .get(self.next_table)
            .filter(|t| t.name == table.name && self.current.is_none())
            .ok_or_else(|| invalid(format!("table {} written out of order", table.name)))?;
        put_table(&mut self.scratch, expected);
        self.frame(TABLE);
        self.current = Some((expected, 0));
        self.next_table += 1;
        Ok(expected)
    }

    /// Writes one row of the current table.
    pub(crate) fn row(&mut self, values: &[Value<'_>]) -> Result<()> {
        let table = self.current_table()?;
        if values.len() != table.columns.len() {
            return Err(invalid(format!("{}: wrong number of values", table.name)));
        }
        self.row_with(|i, _| Ok(values[i]))
    }

    /// Writes one row of the current table, each column's value as `value(index, column)`
    /// gives it. The values are encoded as they come: an export writes millions of rows, and
    /// a vector per row was a tenth of its time.
    pub(crate) fn row_with<'v>(
        &mut self,
        mut value: impl FnMut(usize, &Column) -> Result<Value<'v>>,
    ) -> Result<()> {
        let table = self.current_table()?;
        for (i, column) in table.columns.iter().enumerate() {
            let value = match value(i, column) {
                Ok(value) => value,
                Err(e) => {
                    self.scratch.clear();
                    return Err(e);
                }
            };
            let fits = if value == Value::Null {
                column.nullable
            } else {
                value.fits(column.ty)
            };
            if !fits {
                self.scratch.clear();
                return Err(StoreError::Corrupt(format!(
                    "{}.{}: {value:?} does not fit the column",
                    table.name, column.name
                )));
            }
            put_value(&mut self.scratch, column, &value);
        }
        if self.scratch.len() + 1 > MAX_FRAME {
            self.scratch.clear();
            return Err(StoreError::Corrupt(format!(
                "a row of {} is larger than a snapshot frame may be",
                table.name
            )));
        }
        if let Some((_, rows)) = self.current.as_mut() {
            *rows += 1;
        }
        if let Some((_, _, section_rows)) = self.named.as_mut() {
            *section_rows += 1;
        }
        self.frame(ROW);
        Ok(())
    }

    fn current_table(&self) -> Result<&'static Table> {
        self.current
            .map(|(table, _)| table)
            .ok_or_else(|| invalid("a row written outside a table"))
    }

    /// Ends the current table.
    pub(crate) fn end(&mut self) -> Result<()> {
        let (table, rows) = self
            .current
            .take()
            .ok_or_else(|| invalid("a table ended that was not begun"))?;
        put_varint(&mut self.scratch, rows);
        self.frame(END);
        self.summary.tables.insert(table.name.to_owned(), rows);
        Ok(())
    }

    /// A full buffer to send on, if there is one.
    pub(crate) fn take_full(&mut self) -> Result<Option<Bytes>> {
        if self.buf.len() >= BUFFER {
            self.take().map(Some)
        } else {
            Ok(None)
        }
    }

    fn take(&mut self) -> Result<Bytes> {
        let out = self.buf.split().freeze();
        self.section.update(&out)?;
        self.summary.bytes += out.len() as u64;
        self.buf.reserve(BUFFER + BUFFER / 4);
        Ok(out)
    }

    /// Writes the trailer once every table was written; returns the last buffer and the
    /// summary.
    pub(crate) fn finish(mut self) -> Result<(Bytes, SnapshotSummary)> {
        if self.current.is_some() || self.named.is_some() || self.next_table != self.tables.len() {
            return Err(invalid(
                "the dump was finished before every table was written",
            ));
        }
        let last = self.take()?;
        if self.summary.bytes > self.section_start {
            self.outer.update(&self.section.finish()?);
        }
        let mut tail = BytesMut::from(last.as_ref());
        let digest = self.outer.finish();
        put_varint(&mut self.scratch, self.tables.len() as u64);
        put_varint(&mut self.scratch, self.summary.rows());
        self.scratch.extend_from_slice(digest.as_ref());
        put_varint(&mut tail, self.scratch.len() as u64 + 1);
        tail.put_u8(TRAILER);
        tail.put_slice(&self.scratch);
        self.summary.bytes += (tail.len() - last.len()) as u64;
        Ok((tail.freeze(), self.summary))
    }
}

// ---- the decoder ----------------------------------------------------------------------------

/// What the decoder found next.
#[derive(Debug)]
pub(crate) enum Item {
    /// A table starts.
    Table(&'static Table),
    /// A row of the current table: decode it with [`decode_row`].
    Row(&'static Table, Bytes),
    /// The current table ended (its row count checked).
    End,
    /// The trailer was read and checked: the dump is complete.
    Done,
}

/// Reads one dump of a known stream from pieces of input.
pub(crate) struct Decoder {
    stream: SnapshotStream,
    tables: &'static [Table],
    pending: BytesMut,
    /// Version 1: the digest of every byte. Version 2: the digest of the section digests.
    digest: Context,
    /// Version 2: the digest of the current section's bytes, and their count.
    section: Context,
    section_len: u64,
    version: u8,
    header_read: bool,
    current: Option<(&'static Table, u64)>,
    next_table: usize,
    /// Tables the dump held (fewer than the stream's when it predates some).
    tables_read: u64,
    done: bool,
    summary: SnapshotSummary,
}

impl Decoder {
    pub(crate) fn new(stream: SnapshotStream) -> Self {
        Self {
            stream,
            tables: tables::of(stream),
            pending: BytesMut::new(),
            digest: Context::new(&SHA256),
            section: Context::new(&SHA256),
            section_len: 0,
            version: VERSION,
            header_read: false,
            current: None,
            next_table: 0,
            tables_read: 0,
            done: false,
            summary: SnapshotSummary::default(),
        }
    }

    /// Adds the next piece of input.
    pub(crate) fn feed(&mut self, input: &[u8]) -> Result<()> {
        if self.done && !input.is_empty() {
            return Err(invalid("bytes follow the end of the dump"));
        }
        self.summary.bytes += input.len() as u64;
        self.pending.extend_from_slice(input);
        Ok(())
    }

    /// The next item, or `None` when more input is needed to complete it.
    pub(crate) fn next(&mut self) -> Result<Option<Item>> {
        loop {
            if self.done {
                if !self.pending.is_empty() {
                    return Err(invalid("bytes follow the end of the dump"));
                }
                return Ok(None);
            }
            if !self.header_read {
                if !self.read_header()? {
                    return Ok(None);
                }
                continue;
            }
            let Some((len, prefix)) = peek_varint(&self.pending)? else {
                return Ok(None);
            };
            let len = usize::try_from(len)
                .ok()
                .filter(|len| (1..=MAX_FRAME).contains(len))
                .ok_or_else(|| invalid(format!("a frame of {len} bytes is out of bounds")))?;
            if self.pending.len() < prefix + len {
                return Ok(None);
            }
            let mut frame = self.pending.split_to(prefix + len);
            let kind = frame[prefix];
            if kind == SECTION && (self.version == VERSION_1 || len != 1) {
                return Err(invalid(if len == 1 {
                    "a section frame in a version 1 dump"
                } else {
                    "a section frame with a payload"
                }));
            }
            if kind != TRAILER {
                self.absorb(&frame, kind == SECTION);
            }
            if kind == SECTION {
                continue;
            }
            frame.advance(prefix + 1);
            return self.frame(kind, frame.freeze()).map(Some);
        }
    }

    /// Adds a frame's bytes to the digest; a section frame ends a section (version 2).
    fn absorb(&mut self, bytes: &[u8], ends_section: bool) {
        if self.version == VERSION_1 {
            self.digest.update(bytes);
            return;
        }
        self.section.update(bytes);
        self.section_len += bytes.len() as u64;
        if ends_section {
            self.close_section();
        }
    }

    fn close_section(&mut self) {
        let digest = std::mem::replace(&mut self.section, Context::new(&SHA256)).finish();
        self.digest.update(digest.as_ref());
        self.section_len = 0;
    }

    /// Reads the header: `false` if more input is needed.
    fn read_header(&mut self) -> Result<bool> {
        let have = self.pending.len().min(MAGIC.len());
        if self.pending[..have] != MAGIC[..have] {
            return Err(invalid("not a Ward snapshot (bad magic)"));
        }
        if self.pending.len() < HEADER_LEN {
            return Ok(false);
        }
        let header = self.pending.split_to(HEADER_LEN);
        self.version = header[MAGIC.len()];
        if !(VERSION_1..=VERSION).contains(&self.version) {
            return Err(invalid(format!(
                "snapshot format version {} is not supported (this Ward reads versions \
                 {VERSION_1} to {VERSION})",
                self.version
            )));
        }
        self.absorb(&header, false);
        if header[MAGIC.len() + 1] != self.stream.code() {
            return Err(invalid(format!(
                "this dump is not of the {} stream",
                self.stream
            )));
        }
        self.header_read = true;
        Ok(true)
    }

    fn frame(&mut self, kind: u8, payload: Bytes) -> Result<Item> {
        match (kind, self.current.as_mut()) {
            (TABLE, None) => {
                // Tables a dump from before they existed lacks are skipped (and restore
                // empty); any other table must come in the stream's order.
                let name = table_name(&payload)?;
                while let Some(skipped) = self.tables.get(self.next_table)
                    && skipped.name != name
                    && added_later(skipped)
                {
                    self.next_table += 1;
                }
                let table = self
                    .tables
                    .get(self.next_table)
                    .ok_or_else(|| invalid("more tables than the stream has"))?;
                check_table(&payload, table)?;
                self.next_table += 1;
                self.tables_read += 1;
                self.current = Some((table, 0));
                Ok(Item::Table(table))
            }
            (ROW, Some((table, rows))) => {
                *rows += 1;
                Ok(Item::Row(table, payload))
            }
            (END, Some((table, rows))) => {
                let mut r = Reader {
                    input: &payload,
                    what: "a table end",
                };
                let count = r.varint()?;
                r.done()?;
                if count != *rows {
                    return Err(invalid(format!(
                        "table {} ends with a count of {count} rows but holds {rows}",
                        table.name
                    )));
                }
                let table: &'static Table = table;
                self.summary.tables.insert(table.name.to_owned(), count);
                self.current = None;
                Ok(Item::End)
            }
            (TRAILER, None) => {
                self.check_trailer(&payload)?;
                self.done = true;
                Ok(Item::Done)
            }
            (TABLE | TRAILER, Some((table, _))) => Err(invalid(format!(
                "table {} does not end before the next frame",
                table.name
            ))),
            (ROW | END, None) => Err(invalid("a row or table end outside a table")),
            (other, _) => Err(invalid(format!("unknown frame kind {other:#04x}"))),
        }
    }

    fn check_trailer(&mut self, payload: &[u8]) -> Result<()> {
        if self.tables[self.next_table..]
            .iter()
            .any(|t| !added_later(t))
        {
            return Err(invalid(format!(
                "the dump ends after {} of the stream's {} tables",
                self.next_table,
                self.tables.len()
            )));
        }
        let mut r = Reader {
            input: payload,
            what: "the trailer",
        };
        let tables = r.varint()?;
        let rows = r.varint()?;
        let digest = r.take(DIGEST_LEN)?;
        r.done()?;
        if tables != self.tables_read || rows != self.summary.rows() {
            return Err(invalid("the trailer's counts do not match the dump"));
        }
        if self.version != VERSION_1 && self.section_len > 0 {
            self.close_section();
        }
        let computed = std::mem::replace(&mut self.digest, Context::new(&SHA256)).finish();
        if computed.as_ref() != digest {
            return Err(invalid(
                "the dump's digest does not match its content (corrupted)",
            ));
        }
        Ok(())
    }

    /// Ends the input: the summary if the dump was complete, else the error saying it is
    /// truncated.
    pub(crate) fn finish(self) -> Result<SnapshotSummary> {
        if !self.done {
            return Err(invalid(
                "the dump is truncated (its input ended before the trailer)",
            ));
        }
        if !self.pending.is_empty() {
            return Err(invalid("bytes follow the end of the dump"));
        }
        Ok(self.summary)
    }
}

#[cfg(test)]
mod tests;

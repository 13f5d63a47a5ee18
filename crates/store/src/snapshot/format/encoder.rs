//! The encoder: writes one dump, table by table and section by section, into buffers of about
//! [`BUFFER`] bytes that the caller sends on as they fill, digesting each section as it goes.

use super::*;

/// Writes one dump, table by table, into buffers of about [`BUFFER`] bytes.
pub(crate) struct Encoder {
    pub(super) tables: &'static [Table],
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

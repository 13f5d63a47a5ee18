//! The decoder: takes input in pieces of any size (a frame may straddle any number of them)
//! and hands out one frame at a time, checking row counts, section digests and the trailer.
//! Every malformation is a [`StoreError::Snapshot`].

use super::*;

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

//! The encoding round-trips any values, across any split of the input into pieces, and
//! refuses truncated, altered or misplaced input without panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use super::*;
use crate::snapshot::tables::{Column, KEYS};

/// Owned values, for generating rows.
#[derive(Debug, Clone)]
enum Owned {
    Null,
    Int(i64),
    Uuid([u8; 16]),
    Bytes(Vec<u8>),
    Text(String),
}

impl Owned {
    fn borrow(&self) -> Value<'_> {
        match self {
            Self::Null => Value::Null,
            Self::Int(n) => Value::Int(*n),
            Self::Uuid(id) => Value::Uuid(*id),
            Self::Bytes(b) => Value::Bytes(b),
            Self::Text(t) => Value::Text(t),
        }
    }
}

fn value_for(column: &Column) -> BoxedStrategy<Owned> {
    let value = match column.ty {
        Type::Int | Type::Time => any::<i64>().prop_map(Owned::Int).boxed(),
        Type::Uuid => any::<[u8; 16]>().prop_map(Owned::Uuid).boxed(),
        Type::Bytes => proptest::collection::vec(any::<u8>(), 0..300)
            .prop_map(Owned::Bytes)
            .boxed(),
        Type::Text => any::<String>().prop_map(Owned::Text).boxed(),
    };
    if column.nullable {
        prop_oneof![1 => Just(Owned::Null), 3 => value].boxed()
    } else {
        value
    }
}

fn row_for(table: &'static Table) -> BoxedStrategy<Vec<Owned>> {
    table
        .columns
        .iter()
        .map(value_for)
        .collect::<Vec<_>>()
        .prop_map(|values| values)
        .boxed()
}

/// Rows for every table of the data stream (audit tables included: the format does not care
/// what they mean).
fn data_rows() -> impl Strategy<Value = Vec<Vec<Vec<Owned>>>> {
    tables::DATA
        .iter()
        .map(|t| proptest::collection::vec(row_for(t), 0..4))
        .collect::<Vec<_>>()
}

fn encode(stream: SnapshotStream, rows: &[Vec<Vec<Owned>>]) -> Vec<u8> {
    let mut enc = Encoder::new(stream);
    let mut out = Vec::new();
    for (table, rows) in tables::of(stream).iter().zip(rows) {
        enc.begin(table).unwrap();
        for row in rows {
            let values: Vec<Value<'_>> = row.iter().map(Owned::borrow).collect();
            enc.row(&values).unwrap();
            if let Some(buf) = enc.take_full().unwrap() {
                out.extend_from_slice(&buf);
            }
        }
        enc.end().unwrap();
    }
    let (last, summary) = enc.finish().unwrap();
    out.extend_from_slice(&last);
    assert_eq!(summary.bytes, out.len() as u64);
    out
}

/// Decodes `dump` fed in pieces of `piece` bytes; the rows per table.
fn decode(
    stream: SnapshotStream,
    dump: &[u8],
    piece: usize,
) -> Result<Vec<(&'static str, Vec<String>)>> {
    let mut dec = Decoder::new(stream);
    let mut out: Vec<(&'static str, Vec<String>)> = Vec::new();
    for chunk in dump.chunks(piece.max(1)) {
        dec.feed(chunk)?;
        while let Some(item) = dec.next()? {
            match item {
                Item::Table(t) => out.push((t.name, Vec::new())),
                Item::Row(t, payload) => {
                    let values = decode_row(t, &payload)?;
                    out.last_mut().unwrap().1.push(format!("{values:?}"));
                }
                Item::End | Item::Done => {}
            }
        }
    }
    dec.finish()?;
    Ok(out)
}

fn expected(stream: SnapshotStream, rows: &[Vec<Vec<Owned>>]) -> Vec<(&'static str, Vec<String>)> {
    tables::of(stream)
        .iter()
        .zip(rows)
        .map(|(t, rows)| {
            let rows = rows
                .iter()
                .map(|r| format!("{:?}", r.iter().map(Owned::borrow).collect::<Vec<_>>()))
                .collect();
            (t.name, rows)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn values_round_trip_across_any_split(rows in data_rows(), piece in 1usize..4096) {
        let dump = encode(SnapshotStream::Data, &rows);
        let decoded = decode(SnapshotStream::Data, &dump, piece).unwrap();
        prop_assert_eq!(decoded, expected(SnapshotStream::Data, &rows));
    }

    #[test]
    fn every_truncation_is_refused(rows in data_rows(), cut in any::<prop::sample::Index>()) {
        let dump = encode(SnapshotStream::Data, &rows);
        let cut = cut.index(dump.len());
        let err = decode(SnapshotStream::Data, &dump[..cut], 7).unwrap_err();
        prop_assert!(matches!(err, StoreError::Snapshot(_)), "{err}");
    }

    #[test]
    fn every_flipped_byte_is_refused(
        rows in data_rows(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut dump = encode(SnapshotStream::Data, &rows);
        let at = at.index(dump.len());
        dump[at] ^= 1 << bit;
        let err = decode(SnapshotStream::Data, &dump, 1000).unwrap_err();
        prop_assert!(matches!(err, StoreError::Snapshot(_)), "{err}");
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut input = MAGIC.to_vec();
        input.extend_from_slice(&[VERSION, 1]);
        input.extend_from_slice(&bytes);
        prop_assert!(decode(SnapshotStream::Data, &input, 13).is_err());
        prop_assert!(decode(SnapshotStream::Keys, &bytes, 13).is_err());
    }

    #[test]
    fn varints_and_zigzag_round_trip(n in any::<i64>()) {
        let mut out = Vec::new();
        put_varint(&mut out, zigzag(n));
        let (back, len) = peek_varint(&out).unwrap().unwrap();
        prop_assert_eq!(len, out.len());
        prop_assert_eq!(unzigzag(back), n);
    }
}

fn empty_keys_dump() -> Vec<u8> {
    encode(SnapshotStream::Keys, &vec![Vec::new(); KEYS.len()])
}

#[test]
fn a_dump_of_the_other_stream_is_refused() {
    let err = decode(SnapshotStream::Data, &empty_keys_dump(), 64).unwrap_err();
    assert!(err.to_string().contains("not of the data stream"), "{err}");
}

#[test]
fn another_format_version_is_refused() {
    let mut dump = empty_keys_dump();
    dump[MAGIC.len()] = VERSION + 1;
    let err = decode(SnapshotStream::Keys, &dump, 64).unwrap_err();
    assert!(
        err.to_string().contains("version 3 is not supported"),
        "{err}"
    );
}

#[test]
fn something_else_is_not_a_snapshot() {
    let err = decode(SnapshotStream::Keys, b"SQLite format 3\0", 64).unwrap_err();
    assert!(err.to_string().contains("bad magic"), "{err}");
}

#[test]
fn bytes_after_the_trailer_are_refused() {
    let mut dump = empty_keys_dump();
    dump.push(0);
    let err = decode(SnapshotStream::Keys, &dump, 5).unwrap_err();
    assert!(err.to_string().contains("follow the end"), "{err}");
}

#[test]
fn an_oversized_frame_is_refused_before_it_is_buffered() {
    let mut dump = empty_keys_dump()[..HEADER_LEN].to_vec();
    put_varint(&mut dump, MAX_FRAME as u64 + 1);
    let mut dec = Decoder::new(SnapshotStream::Keys);
    dec.feed(&dump).unwrap();
    let err = dec.next().unwrap_err();
    assert!(err.to_string().contains("out of bounds"), "{err}");
}

#[test]
fn a_value_that_does_not_fit_its_column_is_not_written() {
    let mut enc = Encoder::new(SnapshotStream::Keys);
    let table = enc.begin(&KEYS[0]).unwrap();
    assert_eq!(table.name, "tenant_keys");
    let err = enc
        .row(&[
            Value::Null,
            Value::Bytes(b"k"),
            Value::Int(1),
            Value::Int(1),
        ])
        .unwrap_err();
    assert!(err.to_string().contains("tenant_keys.tenant"), "{err}");
    let err = enc.begin(&KEYS[2]).unwrap_err();
    assert!(err.to_string().contains("out of order"), "{err}");
}

#[test]
fn a_dump_is_about_a_mebibyte_per_buffer() {
    let big = vec![7u8; 10_000];
    let mut enc = Encoder::new(SnapshotStream::Keys);
    enc.begin(&KEYS[0]).unwrap();
    let mut buffers = Vec::new();
    for _ in 0..500 {
        enc.row(&[
            Value::Uuid([1; 16]),
            Value::Bytes(&big),
            Value::Int(1),
            Value::Int(2),
        ])
        .unwrap();
        buffers.extend(enc.take_full().unwrap());
    }
    assert_eq!(buffers.len(), 4);
    for buf in &buffers {
        assert!(
            (BUFFER..BUFFER + 11_000).contains(&buf.len()),
            "{}",
            buf.len()
        );
    }
}

/// The data stream as a Ward from before `memberships` and the invitation's person columns
/// wrote it (`drop_table` left out, `trim` trailing columns cut from `trim_table`).
fn older_data_tables(drop_table: &str, trim_table: &str, trim: usize) -> &'static [Table] {
    let tables: Vec<Table> = tables::DATA
        .iter()
        .filter(|t| t.name != drop_table)
        .map(|t| Table {
            name: t.name,
            columns: if t.name == trim_table {
                &t.columns[..t.columns.len() - trim]
            } else {
                t.columns
            },
            key: t.key,
        })
        .collect();
    Box::leak(tables.into_boxed_slice())
}

/// A value of every column's type, never NULL (so a NULL read back was filled in).
fn filled(column: &Column) -> Owned {
    match column.ty {
        Type::Int | Type::Time => Owned::Int(7),
        Type::Uuid => Owned::Uuid([7; 16]),
        Type::Bytes => Owned::Bytes(vec![7; 3]),
        Type::Text => Owned::Text("seven".into()),
    }
}

/// One row per table of `tables`, written as a dump of the data stream.
fn encode_with(tables: &'static [Table]) -> Vec<u8> {
    let mut enc = Encoder::new(SnapshotStream::Data);
    enc.tables = tables;
    let mut out = Vec::new();
    for table in tables {
        enc.begin(table).unwrap();
        let row: Vec<Owned> = table.columns.iter().map(filled).collect();
        enc.row(&row.iter().map(Owned::borrow).collect::<Vec<_>>())
            .unwrap();
        if let Some(buf) = enc.take_full().unwrap() {
            out.extend_from_slice(&buf);
        }
        enc.end().unwrap();
    }
    let (last, _) = enc.finish().unwrap();
    out.extend_from_slice(&last);
    out
}

#[test]
fn a_dump_from_before_a_table_and_columns_were_added_restores_them_empty() {
    let dump = encode_with(older_data_tables("memberships", "invitations", 3));
    let decoded = decode(SnapshotStream::Data, &dump, 1000).expect("an older dump restores");
    let names: Vec<&str> = decoded.iter().map(|(n, _)| *n).collect();
    assert!(!names.contains(&"memberships"), "{names:?}");
    assert_eq!(names.len(), tables::DATA.len() - 1);
    let invitations = &decoded.iter().find(|(n, _)| *n == "invitations").unwrap().1;
    assert_eq!(invitations.len(), 1);
    assert!(
        invitations[0].ends_with("Null, Null, Null]"),
        "the three person columns restore as NULL: {}",
        invitations[0]
    );
    assert!(
        !invitations[0].contains("Null, Null, Null, Null"),
        "{}",
        invitations[0]
    );
}

#[test]
fn a_dump_missing_a_table_or_column_that_was_always_there_is_refused() {
    // `records` was never added later: a dump without it is damaged, not old.
    let err = decode(
        SnapshotStream::Data,
        &encode_with(older_data_tables("records", "", 0)),
        1000,
    )
    .unwrap_err();
    assert!(err.to_string().contains("records"), "{err}");
    // Cutting a column that is not nullable (the invitation's expiry, with what follows it).
    let err = decode(
        SnapshotStream::Data,
        &encode_with(older_data_tables("", "invitations", 5)),
        1000,
    )
    .unwrap_err();
    assert!(err.to_string().contains("columns"), "{err}");
}

// ---- sections (format version 2) ------------------------------------------------------------

/// A dump cut into sections: every table of `stream` its own section (key = its name),
/// reusing from `plan` what it offers. The pieces' bytes and reused keys, and where each
/// section lies in the whole dump (reused ones spliced in from `earlier`).
struct Sectioned {
    whole: Vec<u8>,
    handed_out: usize,
    reused: Vec<String>,
    sections: Vec<(SectionInfo, std::ops::Range<usize>)>,
}

fn encode_sectioned(
    stream: SnapshotStream,
    rows: &[Vec<Vec<Owned>>],
    plan: &crate::ReusePlan,
    earlier: Option<&Sectioned>,
    mark: &dyn Fn(&str) -> String,
) -> Sectioned {
    encode_sectioned_by(Encoder::new(stream), stream, rows, plan, earlier, mark)
}

fn encode_sectioned_by(
    mut enc: Encoder,
    stream: SnapshotStream,
    rows: &[Vec<Vec<Owned>>],
    plan: &crate::ReusePlan,
    earlier: Option<&Sectioned>,
    mark: &dyn Fn(&str) -> String,
) -> Sectioned {
    let mut out = Sectioned {
        whole: Vec::new(),
        handed_out: 0,
        reused: Vec::new(),
        sections: Vec::new(),
    };
    let take = |pieces: Vec<DumpPiece>, out: &mut Sectioned| {
        for piece in pieces {
            match piece {
                DumpPiece::Bytes(b) => {
                    out.handed_out += b.len();
                    out.whole.extend_from_slice(&b);
                }
                DumpPiece::Cut(None) => {}
                DumpPiece::Cut(Some(info)) => {
                    let end = out.whole.len();
                    let start = end - usize::try_from(info.section.bytes).unwrap();
                    out.sections.push((info, start..end));
                }
                DumpPiece::Reused(info) => {
                    let (_, range) = earlier
                        .unwrap()
                        .sections
                        .iter()
                        .find(|(s, _)| s.key == info.key)
                        .unwrap();
                    let start = out.whole.len();
                    out.whole
                        .extend_from_slice(&earlier.unwrap().whole[range.clone()]);
                    out.reused.push(info.key.clone());
                    out.sections.push((info, start..out.whole.len()));
                }
            }
        }
    };
    for (table, rows) in tables::of(stream).iter().zip(rows) {
        let m = mark(table.name);
        if let Some(planned) = plan.reusable(table.name, &m) {
            take(
                enc.reuse(table.name, planned, Some(table)).unwrap(),
                &mut out,
            );
            continue;
        }
        take(
            enc.begin_section(table.name.to_owned(), m).unwrap(),
            &mut out,
        );
        enc.begin(table).unwrap();
        for row in rows {
            let values: Vec<Value<'_>> = row.iter().map(Owned::borrow).collect();
            enc.row(&values).unwrap();
            if let Some(buf) = enc.take_full().unwrap() {
                take(vec![DumpPiece::Bytes(buf)], &mut out);
            }
        }
        enc.end().unwrap();
        take(enc.end_section().unwrap(), &mut out);
    }
    let (last, summary) = enc.finish().unwrap();
    take(vec![DumpPiece::Bytes(last)], &mut out);
    assert_eq!(summary.bytes, out.whole.len() as u64);
    out
}

fn plan_of(dump: &Sectioned) -> crate::ReusePlan {
    let mut plan = crate::ReusePlan::default();
    for (info, _) in &dump.sections {
        plan.offer(info.clone());
    }
    plan
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Reusing every section of an earlier dump of the same rows gives that dump byte for
    /// byte without handing out a row; a section whose mark moved is written again, and the
    /// result is the dump a full export would write.
    /// Digesting on a thread beside the encoder gives the same dump, sections and digests
    /// as digesting inline, reused sections included.
    #[test]
    fn sections_digested_beside_are_digested_alike(
        rows in data_rows(),
        changed in any::<prop::sample::Index>(),
    ) {
        let same = |_: &str| "m1".to_owned();
        let stream = SnapshotStream::Data;
        let inline = encode_sectioned(stream, &rows, &Default::default(), None, &same);
        let beside = encode_sectioned_by(Encoder::digest_beside(stream), stream, &rows,
            &Default::default(), None, &same);
        prop_assert_eq!(&beside.whole, &inline.whole);
        prop_assert_eq!(&beside.sections, &inline.sections);
        let moved = tables::DATA[changed.index(tables::DATA.len())].name;
        let marks = |t: &str| if t == moved { "m2".to_owned() } else { "m1".to_owned() };
        let again = encode_sectioned_by(Encoder::digest_beside(stream), stream, &rows,
            &plan_of(&inline), Some(&inline), &marks);
        prop_assert_eq!(&again.whole, &inline.whole);
        prop_assert_eq!(again.reused.len(), tables::DATA.len() - 1);
    }

    #[test]
    fn reused_sections_give_the_same_dump(
        rows in data_rows(),
        changed in any::<prop::sample::Index>(),
        piece in 1usize..4096,
    ) {
        let same = |_: &str| "m1".to_owned();
        let first = encode_sectioned(SnapshotStream::Data, &rows, &Default::default(), None, &same);
        prop_assert_eq!(decode(SnapshotStream::Data, &first.whole, piece).unwrap(),
            expected(SnapshotStream::Data, &rows));
        let again = encode_sectioned(SnapshotStream::Data, &rows, &plan_of(&first), Some(&first), &same);
        prop_assert_eq!(&again.whole, &first.whole);
        prop_assert_eq!(again.reused.len(), tables::DATA.len());
        prop_assert!(again.handed_out < 64, "{} bytes handed out", again.handed_out);

        // One table changes (its mark moves): only it is written again.
        let mut rows2 = rows.clone();
        let at = changed.index(rows2.len());
        rows2[at] = Vec::new();
        let moved = tables::DATA[at].name.to_owned();
        let marks = |t: &str| if t == moved { "m2".to_owned() } else { "m1".to_owned() };
        let third = encode_sectioned(SnapshotStream::Data, &rows2, &plan_of(&first), Some(&first), &marks);
        let fresh = encode_sectioned(SnapshotStream::Data, &rows2, &Default::default(), None, &marks);
        prop_assert_eq!(&third.whole, &fresh.whole);
        prop_assert!(!third.reused.contains(&moved));
        prop_assert_eq!(third.reused.len(), tables::DATA.len() - 1);
        prop_assert_eq!(decode(SnapshotStream::Data, &third.whole, piece).unwrap(),
            expected(SnapshotStream::Data, &rows2));
    }

    /// A flipped byte inside a reused section is caught by the trailer's digest of the
    /// section digests.
    #[test]
    fn a_corrupt_reused_section_is_refused(
        rows in data_rows(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let same = |_: &str| "m".to_owned();
        let first = encode_sectioned(SnapshotStream::Data, &rows, &Default::default(), None, &same);
        let mut again = encode_sectioned(SnapshotStream::Data, &rows, &plan_of(&first), Some(&first), &same);
        let (_, range) = &again.sections[at.index(again.sections.len())];
        let at = range.start + at.index(range.len());
        again.whole[at] ^= 1 << bit;
        let err = decode(SnapshotStream::Data, &again.whole, 999).unwrap_err();
        prop_assert!(matches!(err, StoreError::Snapshot(_)), "{err}");
    }
}

#[test]
fn a_section_is_reused_only_where_it_belongs() {
    let empty = vec![Vec::new(); tables::DATA.len()];
    let same = |_: &str| "m".to_owned();
    let first = encode_sectioned(
        SnapshotStream::Data,
        &empty,
        &Default::default(),
        None,
        &same,
    );
    let (records, _) = first
        .sections
        .iter()
        .find(|(s, _)| s.key == "records")
        .unwrap();
    // Out of the stream's table order.
    let mut enc = Encoder::new(SnapshotStream::Data);
    let records_table = tables::DATA.iter().find(|t| t.name == "records").unwrap();
    assert!(
        enc.reuse("records", &records.section, Some(records_table))
            .is_err()
    );
    // Inside a named section, and a section ended that was not begun.
    let mut enc = Encoder::new(SnapshotStream::Data);
    enc.begin_section("a".into(), "m".into()).unwrap();
    assert!(enc.begin_section("b".into(), "m".into()).is_err());
    assert!(enc.reuse("records", &records.section, None).is_err());
    let mut enc = Encoder::new(SnapshotStream::Data);
    assert!(enc.end_section().is_err());
    // Rows of a table reused with no table begun.
    assert!(enc.reuse("records", &records.section, None).is_err());
}

/// The same rows as version 1 wrote them: no section frames, one digest over every byte.
fn as_version_1(stream: SnapshotStream, rows: &[Vec<Vec<Owned>>]) -> Vec<u8> {
    let v2 = encode(stream, rows);
    // Without sections, a version 2 dump differs from version 1 only in its version byte
    // and its trailer's digest (of the one section's digest).
    let mut counts = Vec::new();
    put_varint(&mut counts, stream_tables(stream));
    put_varint(
        &mut counts,
        rows.iter().map(|r| r.len() as u64).sum::<u64>(),
    );
    // Length prefix (one byte: the payload is short), kind, counts, digest.
    let trailer_len = 2 + counts.len() + DIGEST_LEN;
    assert_eq!(v2[v2.len() - trailer_len + 1], TRAILER);
    assert!(trailer_len > 0);
    let mut v1 = v2[..v2.len() - trailer_len].to_vec();
    v1[MAGIC.len()] = VERSION_1;
    let digest = aws_lc_rs::digest::digest(&SHA256, &v1);
    let mut payload = Vec::new();
    put_varint(&mut payload, stream_tables(stream));
    put_varint(
        &mut payload,
        rows.iter().map(|r| r.len() as u64).sum::<u64>(),
    );
    payload.extend_from_slice(digest.as_ref());
    put_varint(&mut v1, payload.len() as u64 + 1);
    v1.push(TRAILER);
    v1.extend_from_slice(&payload);
    v1
}

fn stream_tables(stream: SnapshotStream) -> u64 {
    tables::of(stream).len() as u64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Backups written before sections existed still restore.
    #[test]
    fn version_1_dumps_still_decode(rows in data_rows(), piece in 1usize..4096) {
        let v1 = as_version_1(SnapshotStream::Data, &rows);
        prop_assert_eq!(decode(SnapshotStream::Data, &v1, piece).unwrap(),
            expected(SnapshotStream::Data, &rows));
        // A section frame has no place in version 1.
        let mut with_section = v1.clone();
        with_section.splice(HEADER_LEN..HEADER_LEN, [1u8, SECTION]);
        prop_assert!(decode(SnapshotStream::Data, &with_section, piece).is_err());
    }
}

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
            if let Some(buf) = enc.take_full() {
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
        err.to_string().contains("version 2 is not supported"),
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
        buffers.extend(enc.take_full());
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
        if let Some(buf) = enc.take_full() {
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

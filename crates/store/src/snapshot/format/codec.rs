//! The row codec both directions share: values and their varint, zigzag and length-prefixed
//! encodings, the bounds-checked reader that decodes them, and the table frames. A read past
//! the end of its input is a [`StoreError::Snapshot`], never a panic.

use super::*;

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
    pub(super) fn fits(&self, ty: Type) -> bool {
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

pub(super) fn put_varint(out: &mut impl BufMut, mut n: u64) {
    while n >= 0x80 {
        out.put_u8((n as u8) | 0x80);
        n >>= 7;
    }
    out.put_u8(n as u8);
}

pub(super) fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

pub(super) fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

pub(super) fn put_bytes(out: &mut impl BufMut, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.put_slice(bytes);
}

/// Reads a varint from the front of `input`: `Ok(None)` if `input` ends inside it.
pub(super) fn peek_varint(input: &[u8]) -> Result<Option<(u64, usize)>> {
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
pub(super) struct Reader<'a> {
    pub(super) input: &'a [u8],
    pub(super) what: &'a str,
}

impl<'a> Reader<'a> {
    pub(super) fn short(&self) -> StoreError {
        invalid(format!("{} ends early", self.what))
    }

    pub(super) fn varint(&mut self) -> Result<u64> {
        let (n, len) = peek_varint(self.input)?.ok_or_else(|| self.short())?;
        self.input = &self.input[len..];
        Ok(n)
    }

    pub(super) fn u8(&mut self) -> Result<u8> {
        let (&first, rest) = self.input.split_first().ok_or_else(|| self.short())?;
        self.input = rest;
        Ok(first)
    }

    pub(super) fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        if self.input.len() < len {
            return Err(self.short());
        }
        let (head, rest) = self.input.split_at(len);
        self.input = rest;
        Ok(head)
    }

    pub(super) fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = usize::try_from(self.varint()?).map_err(|_| self.short())?;
        self.take(len)
    }

    pub(super) fn str(&mut self) -> Result<&'a str> {
        let what = self.what;
        std::str::from_utf8(self.bytes()?)
            .map_err(|_| invalid(format!("{what}: text is not UTF-8")))
    }

    pub(super) fn done(&self) -> Result<()> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(invalid(format!("{} has trailing bytes", self.what)))
        }
    }
}

/// Encodes one value (already checked against its column) into `out`.
pub(super) fn put_value(out: &mut Vec<u8>, column: &Column, value: &Value<'_>) {
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

pub(super) fn put_table(out: &mut Vec<u8>, table: &Table) {
    put_bytes(out, table.name.as_bytes());
    put_varint(out, table.columns.len() as u64);
    for column in table.columns {
        put_bytes(out, column.name.as_bytes());
        out.push(column.ty.code());
        out.push(u8::from(column.nullable));
    }
}

/// The name a table frame announces.
pub(super) fn table_name(payload: &[u8]) -> Result<&str> {
    Reader {
        input: payload,
        what: "a table header",
    }
    .str()
}

/// Checks that a table frame describes `expected`, or `expected` as an older Ward wrote it:
/// its columns in order, possibly without trailing nullable ones added since.
pub(super) fn check_table(payload: &[u8], expected: &Table) -> Result<()> {
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
pub(super) fn added_later(table: &Table) -> bool {
    tables::ADDED_LATER.contains(&table.name)
}

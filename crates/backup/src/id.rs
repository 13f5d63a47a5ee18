//! Names of things in a repository: objects are named by the keyed hash of their plaintext,
//! snapshots by their time, stream and a random suffix.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::Stream;

/// A chunk's id: keyed BLAKE3 of its plaintext (the key derives from the repository key,
/// so ids reveal nothing about content to someone without it, yet equal chunks get equal
/// ids and are stored once).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    /// Lower-case hex, 64 characters.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }

    /// The object's path in a location: `objects/<first two hex>/<hex>`, so no directory
    /// of a local location holds more than a few thousand files.
    #[must_use]
    pub fn path(&self) -> String {
        let h = self.to_hex();
        format!("{OBJECTS_PREFIX}/{}/{h}", &h[..2])
    }

    /// The id named by an object path, if it is one.
    #[must_use]
    pub fn from_path(path: &str) -> Option<Self> {
        let rest = path.strip_prefix(OBJECTS_PREFIX)?.strip_prefix('/')?;
        let (dir, name) = rest.split_once('/')?;
        let id = Self::parse(name)?;
        (dir == &name[..2]).then_some(id)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.to_hex())
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom("object id must be 64 hex digits"))
    }
}

/// Where chunk objects live in a location.
pub(crate) const OBJECTS_PREFIX: &str = "objects";
/// Where snapshot manifests live in a location.
pub(crate) const SNAPSHOTS_PREFIX: &str = "snapshots";

/// A snapshot's id, e.g. `20261204T074000Z-data-00011f3a`: sorts by time, says its stream,
/// and ends with a sequence number (four hex digits: snapshots taken within the same second
/// sort in the order they were taken) and a random part that keeps it unique.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SnapshotId(String);

impl SnapshotId {
    /// A new id for a snapshot of `stream` taken at `at`, sorting after every id in
    /// `existing`.
    ///
    /// # Errors
    /// If the system random generator fails.
    pub fn next(at: OffsetDateTime, stream: Stream, existing: &[Self]) -> crate::Result<Self> {
        let first = Self::new(at, stream, 0)?;
        let stamp = first.stamp();
        let seq = existing
            .iter()
            .filter(|id| id.stamp() >= stamp)
            .filter_map(Self::sequence)
            .max()
            .map_or(0, |s| s.saturating_add(1));
        Self::new(at, stream, seq)
    }

    /// The id for a snapshot of `stream` taken at `at` with sequence number `seq`.
    ///
    /// # Errors
    /// If the system random generator fails.
    pub fn new(at: OffsetDateTime, stream: Stream, seq: u16) -> crate::Result<Self> {
        let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
        let stamp = at
            .to_offset(time::UtcOffset::UTC)
            .format(&fmt)
            .map_err(|e| crate::BackupError::Task(format!("formatting a snapshot time: {e}")))?;
        let random = ward_crypto::random_bytes::<2>()?;
        Ok(Self(format!(
            "{stamp}-{}-{seq:04x}{}",
            stream.as_str(),
            hex::encode(random)
        )))
    }

    /// Parses an id as printed by `ward backup list`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('-');
        let (Some(stamp), Some(stream), Some(suffix), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let ok = stamp.len() == 16
            && stamp.as_bytes()[8] == b'T'
            && stamp.ends_with('Z')
            && Stream::parse(stream).is_some()
            && suffix.len() == 8
            && suffix.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| Self(s.to_owned()))
    }

    fn stamp(&self) -> &str {
        self.0.split('-').next().unwrap_or("")
    }

    fn sequence(&self) -> Option<u16> {
        let suffix = self.0.rsplit('-').next()?;
        u16::from_str_radix(suffix.get(..4)?, 16).ok()
    }

    /// The stream named in the id.
    #[must_use]
    pub fn stream(&self) -> Stream {
        self.0
            .split('-')
            .nth(1)
            .and_then(Stream::parse)
            .unwrap_or(Stream::Data)
    }

    /// The manifest's path in a location.
    #[must_use]
    pub fn path(&self) -> String {
        format!("{SNAPSHOTS_PREFIX}/{}", self.0)
    }

    /// The id named by a manifest path, if it is one.
    #[must_use]
    pub fn from_path(path: &str) -> Option<Self> {
        Self::parse(path.strip_prefix(SNAPSHOTS_PREFIX)?.strip_prefix('/')?)
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SnapshotId({})", self.0)
    }
}

impl TryFrom<String> for SnapshotId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("{s:?} is not a snapshot id"))
    }
}

impl From<SnapshotId> for String {
    fn from(id: SnapshotId) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_round_trip_through_hex_and_paths() {
        let id = ObjectId([0xab; 32]);
        assert_eq!(ObjectId::parse(&id.to_hex()), Some(id));
        assert_eq!(id.path(), format!("objects/ab/{}", "ab".repeat(32)));
        assert_eq!(ObjectId::from_path(&id.path()), Some(id));
        assert_eq!(ObjectId::from_path("objects/cd/".to_owned().as_str()), None);
        assert_eq!(ObjectId::parse("zz"), None);
    }

    #[test]
    fn snapshot_ids_sort_by_time_and_name_their_stream() {
        let t = time::macros::datetime!(2026-12-04 07:40:00 UTC);
        let a = SnapshotId::new(t, Stream::Data, 0).unwrap();
        let b = SnapshotId::new(t + time::Duration::seconds(1), Stream::Keys, 0).unwrap();
        assert!(a < b);
        assert!(a.as_str().starts_with("20261204T074000Z-data-"));
        assert_eq!(b.stream(), Stream::Keys);
        assert_eq!(SnapshotId::parse(a.as_str()), Some(a.clone()));
        assert_eq!(SnapshotId::from_path(&a.path()), Some(a.clone()));
        // Taken within the same second: the sequence orders them.
        let c = SnapshotId::next(t, Stream::Data, std::slice::from_ref(&a)).unwrap();
        let d = SnapshotId::next(t, Stream::Keys, &[a.clone(), c.clone()]).unwrap();
        assert!(a < c && c < d, "{a} {c} {d}");
        for bad in [
            "",
            "latest",
            "20261204T074000Z-other-00000000",
            "x-data-00000000",
        ] {
            assert_eq!(SnapshotId::parse(bad), None, "{bad}");
        }
    }
}

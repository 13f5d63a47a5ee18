//! The stored form of an audit event: its canonical bytes compressed with a dictionary that
//! ships in the binary.
//!
//! An event's canonical bytes (its JSON, the Merkle leaf data) are about 420 bytes, most of
//! which repeat from event to event: the keys, the action, outcome and purpose names, the
//! actor's prefix, the time's first digits. Compressed alone, an event barely shrinks (zstd
//! has nothing to match against in 420 bytes); compressed with a dictionary trained on Ward's
//! own events, it keeps little more than its random ids and times, about a third of the
//! bytes. Both backends store events this way, so a snapshot carries the same bytes from
//! either.
//!
//! The first stored byte says how to read the rest:
//! - `{`: the canonical JSON itself, as events were stored before this module existed (and as
//!   a tool or an attacker may write them): read as is, so old logs need no conversion.
//! - [`DICTIONARY_1`]: one zstd frame (content size recorded, no checksum, no dictionary id)
//!   compressed with `audit_codec/dictionary-1.zdict`, trained by `bench/audit_dictionary.py`.
//!   A shipped dictionary never changes: a better one gets the next byte, and every earlier one
//!   stays in the binary for the events it packed.
//!
//! Bundles (see [`pack_bundle`]) hold many events in one stored value and have a format byte
//! of their own, [`BUNDLE_1`]: a bundle is never read as one event or the other way round.
//!
//! Integrity is not this module's job; the leaf hash over the unpacked bytes is. Stored bytes
//! that do not unpack are handed on as they are, so verification reports that event as
//! changed (no leaf matches it) instead of failing the whole read, and the tenant view refuses
//! it as it refuses any event that is not what was signed.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::OnceLock;

use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};
use zstd::zstd_safe::CParameter;

/// The format byte of events packed with dictionary 1.
pub const DICTIONARY_1: u8 = 1;

/// Dictionary 1's bytes (zstd's dictionary format, 4 KiB).
static DICTIONARY_1_BYTES: &[u8] = include_bytes!("audit_codec/dictionary-1.zdict");

/// zstd's level for packing: level 3 packs as small as higher levels here (the input is one
/// short event) and faster than they do.
const LEVEL: i32 = 3;

/// The largest event [`unpack`] inflates: far above any event Ward writes (details hold
/// counts and ids), and small enough that a forged size cannot make a read allocate much.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

fn encoder() -> &'static EncoderDictionary<'static> {
    static DICT: OnceLock<EncoderDictionary<'static>> = OnceLock::new();
    DICT.get_or_init(|| EncoderDictionary::copy(DICTIONARY_1_BYTES, LEVEL))
}

fn decoder() -> &'static DecoderDictionary<'static> {
    static DICT: OnceLock<DecoderDictionary<'static>> = OnceLock::new();
    DICT.get_or_init(|| DecoderDictionary::copy(DICTIONARY_1_BYTES))
}

thread_local! {
    /// Each thread's compression context: contexts hold megabytes of tables, too much to build
    /// per event, and are not shareable between threads.
    static PACKER: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static UNPACKER: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

fn new_packer() -> std::io::Result<Compressor<'static>> {
    let mut c = Compressor::with_prepared_dictionary(encoder())?;
    c.set_parameter(CParameter::ChecksumFlag(false))?;
    c.set_parameter(CParameter::DictIdFlag(false))?;
    c.set_parameter(CParameter::ContentSizeFlag(true))?;
    Ok(c)
}

/// The stored form of an event's canonical bytes: packed with the newest dictionary, or the
/// bytes themselves should packing fail or not make them smaller. Canonical bytes begin with
/// `{` (they are a JSON object), which is what tells [`unpack`] an unpacked event from a
/// packed one: any other first byte would be misread.
#[must_use]
pub fn pack(canonical: &[u8]) -> Vec<u8> {
    let packed = PACKER.with_borrow_mut(|slot| {
        let packer = match slot {
            Some(p) => p,
            None => slot.insert(new_packer().ok()?),
        };
        // The frame goes straight after the format byte: no second buffer, no copy.
        let mut out = vec![0; 1 + zstd::zstd_safe::compress_bound(canonical.len())];
        out[0] = DICTIONARY_1;
        let written = packer.compress_to_buffer(canonical, &mut out[1..]).ok()?;
        out.truncate(1 + written);
        Some(out)
    });
    match packed {
        Some(p) if p.len() < canonical.len() => p,
        _ => canonical.to_vec(),
    }
}

/// An event's canonical bytes from its stored form (see the module doc for why bytes that do
/// not unpack come back as stored).
#[must_use]
pub fn unpack(stored: &[u8]) -> Cow<'_, [u8]> {
    match stored.split_first() {
        // An empty frame would inflate to nothing, not to an event.
        Some((&DICTIONARY_1, frame)) if !frame.is_empty() => match inflate(frame) {
            Some(bytes) => Cow::Owned(bytes),
            None => Cow::Borrowed(stored),
        },
        _ => Cow::Borrowed(stored),
    }
}

/// The Merkle leaf hash of a stored event: the hash of its canonical bytes.
#[must_use]
pub fn stored_leaf(stored: &[u8]) -> ward_audit::Hash {
    ward_audit::leaf_hash(&unpack(stored))
}

fn inflate(frame: &[u8]) -> Option<Vec<u8>> {
    inflate_at_most(frame, MAX_EVENT_BYTES)
}

fn inflate_at_most(frame: &[u8], cap: usize) -> Option<Vec<u8>> {
    UNPACKER.with_borrow_mut(|slot| {
        let unpacker = match slot {
            Some(u) => u,
            None => slot.insert(Decompressor::with_prepared_dictionary(decoder()).ok()?),
        };
        // The frame records its size; `decompress` allocates exactly that, refusing a frame
        // that claims more than the cap before allocating anything.
        unpacker.decompress(frame, cap).ok()
    })
}

/// The format byte of a bundle: the events' canonical bytes, each after its length (LEB128),
/// as one zstd frame packed with dictionary 1. One frame for all of them is what makes a
/// bundle small: the second event on compresses against the first, not only against the
/// dictionary.
pub const BUNDLE_1: u8 = 2;

/// The format byte of a bundle stored as its plain encoding (packing failed or did not
/// shrink it).
pub const BUNDLE_PLAIN: u8 = 3;

/// The largest bundle [`unpack_bundle`] inflates (a forged size cannot make a read allocate
/// more).
pub const MAX_BUNDLE_BYTES: usize = 64 << 20;

/// The stored form of consecutive events, given their canonical bytes in log order.
#[must_use]
pub fn pack_bundle<'a>(events: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut plain = vec![BUNDLE_PLAIN];
    for event in events {
        push_leb128(&mut plain, event.len());
        plain.extend_from_slice(event);
    }
    let packed = PACKER.with_borrow_mut(|slot| {
        let packer = match slot {
            Some(p) => p,
            None => slot.insert(new_packer().ok()?),
        };
        let mut out = vec![0; 1 + zstd::zstd_safe::compress_bound(plain.len() - 1)];
        out[0] = BUNDLE_1;
        let written = packer.compress_to_buffer(&plain[1..], &mut out[1..]).ok()?;
        out.truncate(1 + written);
        Some(out)
    });
    match packed {
        Some(p) if p.len() < plain.len() => p,
        _ => plain,
    }
}

/// Appends `value` as LEB128: seven bits a byte, low bits first, the high bit set on every
/// byte but the last.
pub(crate) fn push_leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The events of a bundle: their canonical bytes, one after the other.
#[derive(Debug, Default)]
pub struct Unbundled {
    bytes: Vec<u8>,
    /// Where each event starts in `bytes` (it ends where the next starts).
    starts: Vec<usize>,
}

impl Unbundled {
    /// Number of events.
    #[must_use]
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether the bundle holds no events.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The `i`-th event's canonical bytes.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let start = *self.starts.get(i)?;
        let end = self.starts.get(i + 1).copied().unwrap_or(self.bytes.len());
        self.bytes.get(start..end)
    }

    /// The events in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// The events of a stored bundle, or `None` if the bytes are not a bundle [`pack_bundle`]
/// wrote (truncated, edited, another format): unlike a single event, a damaged bundle has
/// no boundaries left to report its events by, so the caller reports the bundle.
#[must_use]
pub fn unpack_bundle(stored: &[u8]) -> Option<Unbundled> {
    let plain = match stored.split_first()? {
        (&BUNDLE_1, frame) if !frame.is_empty() => inflate_at_most(frame, MAX_BUNDLE_BYTES)?,
        (&BUNDLE_PLAIN, rest) => rest.to_vec(),
        _ => return None,
    };
    let mut starts = Vec::new();
    let mut bytes = Vec::with_capacity(plain.len());
    let mut at = 0;
    while at < plain.len() {
        let (mut len, mut shift) = (0usize, 0u32);
        loop {
            let byte = *plain.get(at)?;
            at += 1;
            if shift > 28 {
                return None;
            }
            len |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let event = plain.get(at..at.checked_add(len)?)?;
        starts.push(bytes.len());
        bytes.extend_from_slice(event);
        at += len;
    }
    Some(Unbundled { bytes, starts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(i: u32) -> Vec<u8> {
        format!(
            r#"{{"at":"2026-12-06T14:{:02}:07.{i:09}Z","request_id":"0193a1f2-7c4e-7d11-9a3b-{i:012x}","actor":{{"id":"key:6f1c2a9e-1d3b-4c55-8e0f-3a2b1c0d9e8f","role":"member"}},"tenant":"1f0e2d3c-4b5a-4697-8887-96a5b4c3d2e1","subject":"a0b1c2d3-e4f5-4061-8273-{i:012x}","record":"0193a1f2-7c4e-7d11-9a3b-{:012x}","collection":"contact","purpose":"essential.service","action":"record_read","outcome":"allowed","client":"{i:032x}"}}"#,
            i % 60,
            i.wrapping_mul(7919)
        )
        .into_bytes()
    }

    #[test]
    fn a_realistic_event_packs_to_under_two_fifths_and_back() {
        let e = event(42);
        let p = pack(&e);
        assert_eq!(p[0], DICTIONARY_1);
        assert!(
            p.len() * 5 < e.len() * 2,
            "{} of {} bytes",
            p.len(),
            e.len()
        );
        assert_eq!(unpack(&p), &e[..]);
    }

    #[test]
    fn json_as_stored_before_reads_as_is() {
        let e = event(7);
        assert!(matches!(unpack(&e), Cow::Borrowed(b) if b == &e[..]));
    }

    #[test]
    fn bytes_that_do_not_unpack_come_back_as_stored() {
        let p = pack(&event(9));
        for cut in [1, 2, p.len() / 2, p.len() - 1] {
            assert_eq!(unpack(&p[..cut]), &p[..cut], "cut at {cut}");
        }
        let mut forged = p.clone();
        // A frame header claiming a huge content size is refused before allocating.
        forged.truncate(1);
        // Magic, then a descriptor for a single-segment frame with an 8-byte content size.
        forged.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd, 0xe0]);
        forged.extend_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(unpack(&forged), &forged[..]);
    }

    #[test]
    fn what_packing_cannot_shrink_is_stored_as_is() {
        assert_eq!(pack(b"{}"), b"{}");
        assert_eq!(pack(b""), b"");
    }

    #[test]
    fn a_bundle_packs_its_events_smaller_than_one_by_one_and_back() {
        let events: Vec<Vec<u8>> = (0..32).map(event).collect();
        let bundle = pack_bundle(events.iter().map(Vec::as_slice));
        assert_eq!(bundle[0], BUNDLE_1);
        let one_by_one: usize = events.iter().map(|e| pack(e).len()).sum();
        assert!(
            bundle.len() * 4 < one_by_one * 3,
            "{} bytes bundled, {one_by_one} one by one",
            bundle.len()
        );
        let back = unpack_bundle(&bundle).unwrap();
        assert_eq!(back.iter().collect::<Vec<_>>(), events);
        assert_eq!(back.get(31), Some(&events[31][..]));
        assert_eq!(back.get(32), None);
    }

    #[test]
    fn a_damaged_bundle_does_not_unpack() {
        let events: Vec<Vec<u8>> = (0..8).map(event).collect();
        let bundle = pack_bundle(events.iter().map(Vec::as_slice));
        for cut in [0, 1, 2, bundle.len() / 2, bundle.len() - 1] {
            assert!(unpack_bundle(&bundle[..cut]).is_none(), "cut at {cut}");
        }
        // A single event is not a bundle, nor is a plain bundle whose last length overruns.
        assert!(unpack_bundle(&pack(&events[0])).is_none());
        assert!(unpack_bundle(&[BUNDLE_PLAIN, 5, b'{', b'}']).is_none());
        assert!(unpack_bundle(&[BUNDLE_PLAIN, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).is_none());
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..2_000)) {
            let mut json = b"{".to_vec();
            json.extend_from_slice(&bytes);
            let packed = pack(&json);
            prop_assert_eq!(unpack(&packed), &json[..]);
        }

        #[test]
        fn any_events_round_trip_as_a_bundle(
            events in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..40)
        ) {
            let bundle = pack_bundle(events.iter().map(Vec::as_slice));
            let back = unpack_bundle(&bundle).unwrap();
            prop_assert_eq!(back.iter().collect::<Vec<_>>(), events);
        }

        #[test]
        fn any_bytes_unpack_as_a_bundle_or_not_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..200)
        ) {
            if let Some(b) = unpack_bundle(&bytes) {
                prop_assert_eq!(b.iter().count(), b.len());
            }
        }
    }
}

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
    UNPACKER.with_borrow_mut(|slot| {
        let unpacker = match slot {
            Some(u) => u,
            None => slot.insert(Decompressor::with_prepared_dictionary(decoder()).ok()?),
        };
        // The frame records its size; `decompress` allocates exactly that, refusing a frame
        // that claims more than the cap before allocating anything.
        unpacker.decompress(frame, MAX_EVENT_BYTES).ok()
    })
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

    proptest! {
        #[test]
        fn any_bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..2_000)) {
            let mut json = b"{".to_vec();
            json.extend_from_slice(&bytes);
            let packed = pack(&json);
            prop_assert_eq!(unpack(&packed), &json[..]);
        }
    }
}

//! Entry points for the fuzz targets (`crates/fuzz-targets`), not part of the API.
//!
//! The decoders behind them are crate-private; these run each on arbitrary bytes as a
//! location would hand them over, under one fixed repository key, past each check an attacker
//! without the key cannot pass: as a stored object (refused unless it opens), then sealed
//! with the key so the decompressor and the keyed-hash check see the bytes, then as the
//! signed body of a manifest so its JSON reader does.

use std::sync::OnceLock;

use ward_crypto::{KeyVersion, RootKeyring, SecretKey};

use crate::codec::{compress, decode_chunk, decompress};
use crate::id::{ObjectId, SnapshotId};
use crate::keys::RepoKeys;
use crate::manifest::{Manifest, signed_message};

fn keys() -> &'static RepoKeys {
    static KEYS: OnceLock<RepoKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let root = RootKeyring::from_keys([(KeyVersion(1), SecretKey::from_bytes([7; 32]))])
            .expect("keyring");
        RepoKeys::create(&root).expect("repository keys").0
    })
}

/// One chunk object: as stored, and as the plaintext of a sealed object (its compressed
/// form and itself), which must open only to what was sealed.
pub fn object(data: &[u8]) {
    let keys = keys();
    let id = keys.chunk_id(data);
    let _ = decode_chunk(keys, &id, data);
    let other = ObjectId([0x5a; 32]);
    for plain in [data.to_vec(), compress(data).expect("compress")] {
        let sealed = keys.seal(&plain, &id.path()).expect("seal");
        if let Some(opened) = decode_chunk(keys, &id, &sealed) {
            assert_eq!(
                keys.chunk_id(&opened),
                id,
                "an object opened to other content"
            );
        }
        assert!(
            decode_chunk(keys, &other, &sealed).is_none(),
            "an object opened under another object's name"
        );
        let _ = decompress(&plain);
    }
}

/// A manifest: as stored, as a sealed unsigned body, and as a sealed body signed with the
/// repository key, which reaches the JSON reader; whatever parses must name itself.
pub fn manifest(data: &[u8]) {
    let keys = keys();
    let id = SnapshotId::parse("20261204T000000Z-data-0badcafe").expect("snapshot id");
    assert!(
        Manifest::open(keys, &id, data).is_err(),
        "random bytes opened as a manifest"
    );
    let mut plain = (data.len() as u32).to_be_bytes().to_vec();
    plain.extend_from_slice(data);
    let unsigned = keys
        .seal(&compress(&plain).expect("compress"), &id.path())
        .expect("seal");
    assert!(
        Manifest::open(keys, &id, &unsigned).is_err(),
        "an unsigned manifest opened"
    );
    plain.extend_from_slice(&keys.sign(&signed_message(data)));
    let signed = keys
        .seal(&compress(&plain).expect("compress"), &id.path())
        .expect("seal");
    if let Ok(manifest) = Manifest::open(keys, &id, &signed) {
        assert_eq!(
            manifest.id, id,
            "a manifest opened under another snapshot's name"
        );
        let _ = manifest.objects();
    }
}

//! Backups: the chunk object and manifest decoders, and the store's snapshot dump decoder.

use ward_store::{SnapshotStream, check_dump};

/// A chunk object as a location hands it over, and sealed so the decompressor and the keyed
/// hash check see it.
pub fn backup_object(data: &[u8]) {
    ward_backup::fuzzing::object(data);
}

/// A snapshot manifest as stored, unsigned, and signed so its JSON reader sees it.
pub fn backup_manifest(data: &[u8]) {
    ward_backup::fuzzing::manifest(data);
}

/// A store dump of either stream: refused with an error or decoded whole, never a panic; a
/// dump that decodes is one whose every proper prefix is refused as truncated.
pub fn snapshot_dump(data: &[u8]) {
    for stream in [SnapshotStream::Data, SnapshotStream::Keys] {
        if check_dump(stream, data).is_ok() {
            for cut in [0, data.len() / 2, data.len().saturating_sub(1)] {
                if cut < data.len() {
                    assert!(
                        check_dump(stream, &data[..cut]).is_err(),
                        "a dump cut at {cut} of {} bytes was accepted",
                        data.len()
                    );
                }
            }
        }
    }
}

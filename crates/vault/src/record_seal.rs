//! A live record's ciphertext and what binds it to its place: the associated data of a record
//! (tenant, subject, record, collection, key version and, since revisions were bound, the
//! revision) and the opening of a stored row with it.
//!
//! Below both the subject keys ([`crate::sealing`]) and the record operations
//! ([`crate::records`]), so rotation, retention, erasure and the restore drill open records
//! the same way the API does.

use serde_json::{Map, Value};
use uuid::Uuid;
use ward_crypto::{Cipher, aad};
use ward_store::RecordRow;

use crate::{Result, VaultError};

pub(crate) fn record_aad(
    tenant: Uuid,
    subject: Uuid,
    record: Uuid,
    collection: &str,
    v: u32,
) -> Vec<u8> {
    aad::record(
        tenant.as_bytes(),
        subject.as_bytes(),
        record.as_bytes(),
        collection,
        v,
    )
}

pub(crate) fn open_record(cipher: &Cipher, row: &RecordRow) -> Result<Map<String, Value>> {
    let plain = open_record_bytes(cipher, row)?;
    serde_json::from_slice(&plain).map_err(|_| VaultError::Integrity)
}

/// The associated data of a live record at `revision` (see [`aad::record_revision`]).
pub(crate) fn live_record_aad(
    tenant: Uuid,
    subject: Uuid,
    record: Uuid,
    collection: &str,
    v: u32,
    revision: i64,
) -> Vec<u8> {
    aad::record_revision(
        tenant.as_bytes(),
        subject.as_bytes(),
        record.as_bytes(),
        collection,
        v,
        revision,
    )
}

/// A record's plaintext bytes, opened under the key version its row names and bound to the
/// revision its row names.
///
/// Records sealed before revisions were bound open under the older associated data. Such a
/// ciphertext could still be rolled back to an earlier pre-upgrade revision by someone with
/// write access to the database; `ward keys rotate --records` re-seals every record with its
/// revision bound and destroys the keys that opened the old copies, which closes that.
pub(crate) fn open_record_bytes(
    cipher: &Cipher,
    row: &RecordRow,
) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let bound = live_record_aad(
        row.tenant,
        row.subject,
        row.id,
        &row.collection,
        row.key_version,
        row.revision,
    );
    match cipher.open(&row.ciphertext, &bound) {
        Ok(plain) => Ok(plain),
        Err(_) => Ok(cipher.open(
            &row.ciphertext,
            &record_aad(
                row.tenant,
                row.subject,
                row.id,
                &row.collection,
                row.key_version,
            ),
        )?),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;
    use ward_crypto::SecretKey;

    use super::*;

    fn row(cipher: &Cipher, revision: i64, sealed_at: Option<i64>) -> RecordRow {
        let (tenant, subject, id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let aad = match sealed_at {
            Some(r) => live_record_aad(tenant, subject, id, "contact", 1, r),
            None => record_aad(tenant, subject, id, "contact", 1),
        };
        RecordRow {
            tenant,
            subject,
            id,
            collection: "contact".into(),
            ciphertext: cipher.seal(br#"{"name":"Ada"}"#, &aad).expect("seal"),
            key_version: 1,
            revision,
            created_at: datetime!(2026-01-01 0:00 UTC),
            updated_at: datetime!(2026-01-01 0:00 UTC),
            expires_at: None,
        }
    }

    #[test]
    fn a_record_opens_only_at_the_revision_it_was_sealed_for() {
        let cipher = Cipher::new(&SecretKey::generate().expect("key")).expect("cipher");
        assert!(open_record(&cipher, &row(&cipher, 3, Some(3))).is_ok());
        for (row_revision, sealed_for) in [(3, 2), (2, 3), (1, 0)] {
            let r = row(&cipher, row_revision, Some(sealed_for));
            assert!(
                matches!(open_record(&cipher, &r), Err(VaultError::Integrity)),
                "sealed for {sealed_for}, row at {row_revision}"
            );
        }
    }

    #[test]
    fn records_sealed_before_revisions_were_bound_still_open() {
        let cipher = Cipher::new(&SecretKey::generate().expect("key")).expect("cipher");
        let legacy = row(&cipher, 7, None);
        assert_eq!(
            open_record(&cipher, &legacy).expect("legacy opens")["name"],
            "Ada"
        );
    }
}

//! The keys and associated data that open a subject's records, shared by every read and write
//! here and by rotation, retention and erasure elsewhere in the crate.

use serde_json::{Map, Value};
use uuid::Uuid;
use ward_crypto::{Cipher, aad};
use ward_store::{RecordFilter, RecordRow, SubjectRow, TenantRow};

use crate::sealing::SubjectCiphers;
use crate::{Result, Vault, VaultError};

impl Vault {
    pub(crate) fn subject_cipher_now(
        &self,
        trow: &TenantRow,
        s: &SubjectRow,
    ) -> Result<SubjectCiphers> {
        Ok(SubjectCiphers::current(
            s.record_key_version,
            self.inner.keys.subject(trow, s)?,
        ))
    }

    /// The subject's current record key. When the subject and tenant rows were read on either
    /// side of a tenant key rotation (their key versions differ), both are read again once.
    pub(crate) async fn subject_cipher(
        &self,
        trow: &TenantRow,
        s: &SubjectRow,
    ) -> Result<SubjectCiphers> {
        if s.key_version == trow.key_version || self.inner.keys.cached_subject(s).is_some() {
            return self.subject_cipher_now(trow, s);
        }
        // Read on either side of a tenant key rotation: read both again until they agree
        // (rotations are rare; two in a row is the most a read should ever see).
        for _ in 0..4 {
            self.forget_tenant_row(trow.id);
            let fresh_tenant = self.tenant_row(trow.id).await?;
            let fresh_subject = self
                .subject_view(s.tenant, s.id, RecordFilter::None)
                .await?
                .subject;
            if fresh_subject.key_version == fresh_tenant.key_version {
                return self.subject_cipher_now(&fresh_tenant, &fresh_subject);
            }
        }
        Err(VaultError::conflict(
            "the tenant key is being rotated; retry",
        ))
    }

    /// The subject's keys that open `rows`: the current one, plus the retired versions a
    /// record rotation still has records under (one more query, only while one runs). A
    /// version found nowhere makes [`SubjectCiphers::open`] ask for a fresh read.
    pub(crate) async fn record_ciphers(
        &self,
        trow: &TenantRow,
        s: &SubjectRow,
        rows: &[RecordRow],
    ) -> Result<SubjectCiphers> {
        let mut ciphers = self.subject_cipher(trow, s).await?;
        if rows.iter().all(|r| ciphers.opens(r.key_version)) {
            return Ok(ciphers);
        }
        for retired in self.inner.store.retired_keys(s.tenant, s.id).await? {
            if rows.iter().any(|r| r.key_version == retired.version) {
                let cipher = self.inner.keys.retired_subject(trow, s.id, &retired)?;
                ciphers.add_older(retired.version, cipher);
            }
        }
        Ok(ciphers)
    }
}

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

/// Runs a read again when it raced a record rotation. A rotation touches each subject once,
/// so a record that still names a key version its subject does not have after several fresh
/// reads was altered: that is an integrity failure, not a race. `f` is told when it runs for
/// the last time.
pub(super) async fn retry_stale<T, F, Fut>(mut f: F) -> Result<T>
where
    F: FnMut(bool) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    const ATTEMPTS: u32 = 4;
    let mut attempt = 1;
    loop {
        match f(attempt == ATTEMPTS).await {
            Err(VaultError::Conflict(crate::error::Conflict::StaleKeyRead)) => {
                if attempt == ATTEMPTS {
                    return Err(VaultError::Integrity);
                }
                attempt += 1;
            }
            other => return other,
        }
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

//! The keys that open a subject's records, shared by every read and write here and by
//! rotation, retention and erasure elsewhere in the crate (the associated data and the opening
//! of a row are in [`crate::record_seal`]).

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

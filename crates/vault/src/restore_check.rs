//! Proving that a restored store decrypts: a sample of each tenant's records opened with
//! the keys the restore brought back (`ward backup verify --full`). Only counts come out;
//! no value leaves this module.

use std::collections::HashMap;

use serde::Serialize;
use ward_store::SubjectRow;

use crate::record_seal::open_record;
use crate::{Result, Vault};
use ward_store::TenantStatus;

/// How a decryption sample went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DecryptionSample {
    /// Tenants sampled (live tenants with at least one keyed subject).
    pub tenants: u64,
    /// Records opened successfully.
    pub records: u64,
    /// Records that did not open (a missing or wrong key, a corrupt ciphertext).
    pub failures: u64,
}

impl Vault {
    /// Opens every record of the first `subjects_per_tenant` keyed subjects of each live
    /// tenant and counts what opens.
    ///
    /// # Errors
    /// Store errors; a record that does not open is counted, not an error.
    pub async fn verify_decryption(&self, subjects_per_tenant: u32) -> Result<DecryptionSample> {
        let store = &self.inner.store;
        let mut out = DecryptionSample::default();
        for t in store.tenants().await? {
            if t.status == TenantStatus::Destroyed || t.wrapped_key.is_none() {
                continue;
            }
            let subjects = store
                .keyed_subjects(t.id, None, subjects_per_tenant)
                .await?;
            let Some(last) = subjects.last() else {
                continue;
            };
            out.tenants += 1;
            let by_id: HashMap<_, &SubjectRow> = subjects.iter().map(|s| (s.id, s)).collect();
            for r in store.records_of_subjects(t.id, None, last.id).await? {
                let Some(s) = by_id.get(&r.subject) else {
                    continue;
                };
                let opened = if r.key_version == s.record_key_version {
                    self.inner
                        .keys
                        .subject(&t, s)
                        .and_then(|c| open_record(&c, &r))
                        .is_ok()
                } else {
                    let mut ok = false;
                    for retired in store.retired_keys(t.id, s.id).await? {
                        if retired.version == r.key_version {
                            ok = self
                                .inner
                                .keys
                                .retired_subject(&t, s.id, &retired)
                                .and_then(|c| open_record(&c, &r))
                                .is_ok();
                        }
                    }
                    ok
                };
                if opened {
                    out.records += 1;
                } else {
                    out.failures += 1;
                }
            }
        }
        Ok(out)
    }
}

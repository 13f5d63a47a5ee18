//! Erasure by crypto-shredding, with held records re-sealed under a hold key first. Apart
//! because it is the one right that destroys keys, and the longest to read.

use std::collections::BTreeMap;

use serde_json::json;
use uuid::Uuid;
use ward_audit::Action;
use ward_crypto::{Cipher, SecretKey, aad};
use ward_store::{HeldRecordRow, HoldRow, LedgerRow, Op, RecordFilter};

use crate::record_seal::record_aad;
use crate::{RequestContext, Result, Vault, VaultError};

use super::{ErasureOut, KeptOut, rfc3339};

impl Vault {
    /// Crypto-shreds a subject (NIST SP 800-88 cryptographic erase). Records of collections
    /// under a legal hold are re-sealed under a hold key first and reported as kept.
    pub async fn erase_subject(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
    ) -> Result<ErasureOut> {
        // A tenant key rotation between wrapping a hold key and committing it is a conflict
        // the store reports; erase again under the new key.
        crate::retry::retrying(
            crate::retry::lost_to_rotation,
            || self.forget_tenant_row(tenant),
            || self.erase_subject_once(ctx, tenant, subject),
        )
        .await
    }

    // Long on purpose: one linear sequence (gate, idempotent replay, hold check, re-sealing of
    // held records, then shredding and the ledger entry in one commit); splitting it would
    // scatter the order the steps must run in.
    async fn erase_subject_once(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
    ) -> Result<ErasureOut> {
        let (mut event, trow) = self
            .rights_gate(ctx, tenant, subject, Action::SubjectErase)
            .await?;
        let Some(view) = self
            .inner
            .store
            .subject_view(tenant, subject, RecordFilter::All(None))
            .await?
        else {
            return Err(VaultError::NotFound("subject"));
        };
        if view.subject.wrapped_key.is_none() {
            // Idempotent: report the original erasure.
            let entry = self.inner.store.ledger_entry(tenant, subject).await?;
            let mut out: ErasureOut = entry
                .and_then(|l| serde_json::from_str(&l.detail).ok())
                .unwrap_or(ErasureOut {
                    subject,
                    erased_at: self.now(),
                    records_erased: 0,
                    kept: vec![],
                    already_erased: true,
                });
            out.already_erased = true;
            self.commit(vec![Op::Audit(Box::new(event))]).await?;
            return Ok(out);
        }
        let now = self.now();
        if let Some(until) = view.subject.hold_until.filter(|u| *u > now) {
            return Err(self
                .deny(
                    event,
                    crate::Denial::Forbidden {
                        code: "subject_on_hold",
                        reason: format!("the subject is under a litigation hold until {}; erasure is deferred (GDPR Art. 17(3)(e))", rfc3339(until)),
                    },
                )
                .await);
        }
        let cipher = self
            .record_ciphers(&trow, &view.subject, &view.records)
            .await?;
        let mut ops = Vec::new();
        let mut kept: BTreeMap<String, KeptOut> = BTreeMap::new();
        let mut hold: Option<(Uuid, Cipher)> = None;
        let mut erased = 0u64;
        for row in &view.records {
            let hold_until = self
                .inner
                .policy
                .collection(&row.collection)
                .and_then(|c| {
                    c.legal_hold.as_ref().map(|h| {
                        (
                            row.created_at + h.retain_for.as_duration(),
                            h.reason.clone(),
                        )
                    })
                })
                .filter(|(until, _)| *until > now);
            let Some((until, reason)) = hold_until else {
                erased += 1;
                continue;
            };
            let (hold_id, hold_cipher) = match &hold {
                Some(h) => (h.0, &h.1),
                None => {
                    let id = Uuid::now_v7();
                    let key = SecretKey::generate()?;
                    let tk = self.inner.keys.tenant(&trow)?;
                    let wrapped = tk.cipher.wrap(
                        &key,
                        &aad::hold_key(tenant.as_bytes(), id.as_bytes(), trow.key_version),
                    )?;
                    ops.push(Op::InsertHold(HoldRow {
                        tenant,
                        id,
                        subject,
                        wrapped_key: Some(wrapped),
                        key_version: trow.key_version,
                        created_at: now,
                    }));
                    let h = hold.insert((id, Cipher::new(&key)?));
                    (h.0, &h.1)
                }
            };
            let fields = cipher.open(row)?;
            let plaintext = zeroize::Zeroizing::new(
                serde_json::to_vec(&fields).map_err(|_| VaultError::Integrity)?,
            );
            let sealed = hold_cipher.seal(
                &plaintext,
                &record_aad(tenant, hold_id, row.id, &row.collection, 1),
            )?;
            ops.push(Op::InsertHeldRecord(HeldRecordRow {
                tenant,
                hold: hold_id,
                id: row.id,
                collection: row.collection.clone(),
                ciphertext: sealed,
                key_version: 1,
                created_at: row.created_at,
                hold_until: until,
                reason: reason.clone(),
            }));
            let k = kept.entry(row.collection.clone()).or_insert(KeptOut {
                collection: row.collection.clone(),
                records: 0,
                reason,
                until,
            });
            k.records += 1;
            k.until = k.until.max(until);
        }
        let out = ErasureOut {
            subject,
            erased_at: now,
            records_erased: erased,
            kept: kept.into_values().collect(),
            already_erased: false,
        };
        ops.push(Op::EraseSubject { tenant, subject });
        ops.push(Op::InsertLedger(LedgerRow {
            id: Uuid::now_v7(),
            tenant,
            subject,
            requested_by: ctx.principal.actor().id,
            erased_at: now,
            detail: serde_json::to_string(&out).unwrap_or_else(|_| "{}".into()),
        }));
        event.detail = Some(
            json!({ "records_erased": erased, "kept": out.kept.iter().map(|k| json!({"collection": k.collection, "records": k.records})).collect::<Vec<_>>() }),
        );
        ops.push(Op::Audit(Box::new(event)));
        self.commit(ops).await?;
        self.forget_subject(tenant, subject);
        Ok(out)
    }
}

//! Key rotation without downtime (ARCHITECTURE.md, "Keys and encryption").
//!
//! Rotating the root key rewraps every tenant's sealed material under the new root version;
//! rotating a tenant key gives the tenant a new key-encryption key and rewraps its subject and
//! hold keys. Neither touches a record: the subject keys themselves, and so every ciphertext,
//! stay as they are. The tenant's hashing secret (blind index, pseudonyms, anonymized data)
//! is carried over unchanged, so lookups and joins keep working.

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;
use ward_audit::Action;
use ward_crypto::{RootKeyring, aad};
use ward_store::{KeyOwner, Op, RewrapFailed, Rewrapper, WrappedKey};

use crate::retention::system_event;
use crate::{Result, Vault, VaultError};
use ward_store::{IncidentScope, TenantStatus};

use crate::platform_keys::PlatformKeys;

/// What a rotation did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct RotationReport {
    /// Tenants whose material was resealed.
    pub tenants_rewrapped: u64,
    /// Subject keys rewrapped.
    pub subjects_rewrapped: u64,
    /// Retired subject keys rewrapped (a record rotation was still finishing).
    pub retired_subject_keys_rewrapped: u64,
    /// Hold keys rewrapped.
    pub holds_rewrapped: u64,
    /// Root key version now current.
    pub root_version: u32,
    /// For a tenant rotation: the tenant key version now current.
    pub tenant_version: Option<u32>,
}

/// Which root key versions still seal something.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeyStatus {
    /// Root version → number of tenants whose material it seals, plus user accounts whose
    /// e-mail and TOTP secret are sealed under a key derived from it, plus operator webhook
    /// secrets and operator incident titles and notes sealed under one (a version still
    /// sealing any of them is kept, so they keep working).
    pub root_versions_in_use: BTreeMap<u32, u64>,
    /// The current root version.
    pub current_root_version: u32,
    /// Tenant id → its key-encryption key version.
    pub tenant_key_versions: BTreeMap<Uuid, u32>,
    /// Record rotation jobs, newest first.
    pub record_jobs: Vec<crate::KeyJob>,
    /// Retired subject keys still alive (records not yet re-encrypted under the new ones);
    /// zero once every record rotation has finished.
    pub retired_subject_keys: u64,
}

impl Vault {
    /// Installs `ring` (whose current version is new) and reseals every tenant under it.
    /// Old root versions stay usable until [`Vault::key_status`] shows they seal nothing.
    pub async fn rotate_root(&self, ring: &RootKeyring) -> Result<RotationReport> {
        self.inner.keys.install_ring(ring)?;
        let current = self.inner.keys.current_root();
        let mut report = RotationReport {
            root_version: current,
            ..Default::default()
        };
        for t in self.inner.store.tenants().await? {
            if t.wrapped_key.is_none() || t.root_key_version == current {
                continue;
            }
            let material = self.inner.keys.open_material(&t)?;
            let (wrapped_key, root_key_version) = self.inner.keys.seal_material(&material, t.id)?;
            let mut event = system_event(self.now(), Action::KeyRotate, Some(t.id));
            event.actor = ward_audit::Actor::system("key-rotation");
            event.detail = Some(
                serde_json::json!({ "scope": "root", "from": t.root_key_version, "to": root_key_version }),
            );
            self.commit(vec![
                Op::RewrapTenant {
                    id: t.id,
                    wrapped_key,
                    root_key_version,
                    key_version: t.key_version,
                    expected_key_version: t.key_version,
                },
                Op::Audit(Box::new(event)),
            ])
            .await?;
            self.forget_tenant_row(t.id);
            report.tenants_rewrapped += 1;
        }
        metrics::counter!("ward_key_rotations_total", "scope" => "root").increment(1);
        Ok(report)
    }

    /// Gives a tenant a new key-encryption key and rewraps its subject and hold keys, in one
    /// transaction: readers see either the old or the new wrapping, never a mix.
    pub async fn rotate_tenant(&self, tenant: Uuid) -> Result<RotationReport> {
        // Retired subject keys are wrapped under the current tenant key; rewrapping them too
        // would race the record rotation that is about to destroy them. Wait for it instead.
        if self.inner.store.retired_key_count(Some(tenant)).await? > 0 {
            return Err(VaultError::conflict(
                "a record rotation of this tenant is still running; rotate the tenant key once \
                 `ward keys status` shows it done",
            ));
        }
        // A tenant row cached from before another process rotated makes the commit a
        // conflict; read it again and retry.
        crate::retry::retrying(
            |e| matches!(e, VaultError::Conflict(_)),
            || self.forget_tenant_row(tenant),
            || self.rotate_tenant_once(tenant),
        )
        .await
    }

    async fn rotate_tenant_once(&self, tenant: Uuid) -> Result<RotationReport> {
        let trow = self.tenant_row(tenant).await?;
        if trow.status == TenantStatus::Destroyed {
            return Err(VaultError::NotFound("tenant"));
        }
        let old = self.inner.keys.open_material(&trow)?;
        let new = old.rotated()?;
        let new_version = trow
            .key_version
            .checked_add(1)
            .ok_or(VaultError::Integrity)?;
        let (wrapped_key, root_key_version) = self.inner.keys.seal_material(&new, tenant)?;
        // The store finds the keys inside the rotating commit (so none created meanwhile is
        // missed); this closure does the cryptography.
        let rewrap = {
            let (old_kek, new_kek) = (old.kek_cipher()?, new.kek_cipher()?);
            Rewrapper::new(move |k: WrappedKey<'_>| {
                let t = tenant.as_bytes();
                let aad_at = |version| match k.owner {
                    KeyOwner::Subject(id) | KeyOwner::RetiredSubjectKey(id) => {
                        aad::subject_key(t, id.as_bytes(), version)
                    }
                    KeyOwner::Hold(id) => aad::hold_key(t, id.as_bytes(), version),
                };
                let key = old_kek
                    .unwrap(k.wrapped, &aad_at(k.key_version))
                    .map_err(|_| RewrapFailed)?;
                new_kek
                    .wrap(&key, &aad_at(new_version))
                    .map_err(|_| RewrapFailed)
            })
        };
        let mut event = system_event(self.now(), Action::KeyRotate, Some(tenant));
        event.actor = ward_audit::Actor::system("key-rotation");
        event.detail = Some(serde_json::json!({
            "scope": "tenant", "from": trow.key_version, "to": new_version,
        }));
        let ops = vec![
            Op::RewrapTenant {
                id: tenant,
                wrapped_key,
                root_key_version,
                key_version: new_version,
                expected_key_version: trow.key_version,
            },
            Op::RewrapTenantKeys {
                tenant,
                key_version: new_version,
                rewrap,
            },
            Op::Audit(Box::new(event)),
        ];
        let committed = self.commit(ops).await;
        self.forget_tenant_row(tenant);
        let done = committed?.keys_rewrapped;
        metrics::counter!("ward_key_rotations_total", "scope" => "tenant").increment(1);
        Ok(RotationReport {
            root_version: root_key_version,
            tenant_version: Some(new_version),
            tenants_rewrapped: 1,
            subjects_rewrapped: done.subjects,
            retired_subject_keys_rewrapped: done.retired_subject_keys,
            holds_rewrapped: done.holds,
        })
    }

    /// Which root versions still seal tenant material, and each tenant's key version.
    pub async fn key_status(&self) -> Result<KeyStatus> {
        let mut status = KeyStatus {
            current_root_version: self.inner.keys.current_root(),
            ..Default::default()
        };
        for t in self.inner.store.tenants().await? {
            if t.wrapped_key.is_some() {
                *status
                    .root_versions_in_use
                    .entry(t.root_key_version)
                    .or_default() += 1;
                status.tenant_key_versions.insert(t.id, t.key_version);
            }
        }
        for u in self.inner.store.users().await? {
            *status
                .root_versions_in_use
                .entry(u.key_version)
                .or_default() += 1;
        }
        // Operator webhook secrets are sealed under a key derived from the root version that
        // was current when they were made; destroying that version would leave every
        // operator alert undeliverable.
        let mut sealed_under = |sealed: &[u8]| {
            if let Some(v) = PlatformKeys::sealed_version(sealed) {
                *status.root_versions_in_use.entry(v).or_default() += 1;
            }
        };
        for hook in self.inner.store.webhooks(None).await? {
            sealed_under(&hook.secret);
        }
        // The same for operator incidents' title and notes (a tenant's incident is sealed
        // under the tenant's key, which the tenant's row counts).
        for incident in self
            .inner
            .store
            .incidents(IncidentScope::Operator, u32::MAX)
            .await?
        {
            sealed_under(&incident.title);
            if let Some(view) = self.inner.store.incident(incident.id).await? {
                for note in &view.notes {
                    sealed_under(&note.text);
                }
            }
        }
        status.record_jobs = self.key_jobs().await?;
        status.retired_subject_keys = self.inner.store.retired_key_count(None).await?;
        Ok(status)
    }

    /// Whether this process can open material sealed under root version `v`.
    pub fn holds_root_version(&self, v: u32) -> bool {
        self.inner.keys.has_root(v)
    }
}

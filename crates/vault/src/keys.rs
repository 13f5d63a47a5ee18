//! The key hierarchy at run time: root → tenant → subject, unwrapped on demand and cached.
//!
//! Unwrapped keys live only in these caches (zeroized when dropped, by `ward-crypto`), so a
//! read costs one row fetch and one AES-GCM open. The caches are bounded; when full they are
//! emptied, which only costs re-unwrapping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use uuid::Uuid;
use ward_crypto::{Cipher, Hasher, KeyVersion, RootKeyring, SecretKey, aad};
use ward_store::{RetiredKeyRow, SubjectRow, TenantRow};

use crate::{Result, VaultError};

/// The version of a subject's first key; each record rotation gives the subject the next one.
pub(crate) const FIRST_SUBJECT_KEY_VERSION: u32 = 1;

/// Cache key of an unwrapped subject key: tenant, subject, the tenant key version that wraps
/// it and the subject key's own version.
type SubjectKeyId = (Uuid, Uuid, u32, u32);

/// Most cached subject keys before the cache is emptied.
const SUBJECT_CACHE_LIMIT: usize = 100_000;

/// Keys derived from one tenant key.
pub(crate) struct TenantKeys {
    /// Wraps subject keys.
    pub(crate) cipher: Cipher,
    /// Blind index of searchable fields.
    pub(crate) index: Hasher,
    /// Keyed hash of external references.
    pub(crate) refs: Hasher,
    /// Keyed hash for `hmac` anonymization (joins survive, reversal needs the tenant key).
    pub(crate) anon: Hasher,
    /// Seals anonymized records: outside any subject's scope, shredded with the tenant.
    pub(crate) anonymized: Cipher,
    /// Seals free text the tenant typed outside records (request notes): derived from the
    /// stable secret so tenant key rotation leaves it readable; shredded with the tenant.
    pub(crate) free_text: Cipher,
}

impl TenantKeys {
    /// `material` is the tenant's two secrets: the key-encryption key that wraps subject keys
    /// (rotatable: rotation rewraps the subject keys) and the hashing secret behind the blind
    /// index, pseudonyms and anonymized data (stable: rotating it would break every lookup and
    /// every join on anonymized values).
    fn new(material: &TenantMaterial) -> Result<Self> {
        let secret = &material.secret;
        Ok(Self {
            cipher: Cipher::new(&material.kek)?,
            index: Hasher::new(&secret.derive("ward.blind-index.v1")?),
            refs: Hasher::new(&secret.derive("ward.external-ref.v1")?),
            anon: Hasher::new(&secret.derive("ward.anonymize.v1")?),
            anonymized: Cipher::new(&secret.derive("ward.anonymized-records.v1")?)?,
            free_text: Cipher::new(&secret.derive("ward.free-text.v1")?)?,
        })
    }
}

/// What the root key seals for each tenant: a key-encryption key and a hashing secret.
pub(crate) struct TenantMaterial {
    pub(crate) kek: SecretKey,
    pub(crate) secret: SecretKey,
}

impl TenantMaterial {
    /// The same hashing secret with a fresh key-encryption key (tenant key rotation).
    pub(crate) fn rotated(&self) -> Result<Self> {
        Ok(Self {
            kek: SecretKey::generate()?,
            secret: self.secret.clone(),
        })
    }

    /// A cipher over the key-encryption key, for rewrapping.
    pub(crate) fn kek_cipher(&self) -> Result<Cipher> {
        Ok(Cipher::new(&self.kek)?)
    }

    fn generate() -> Result<Self> {
        Ok(Self {
            kek: SecretKey::generate()?,
            secret: SecretKey::generate()?,
        })
    }

    fn seal(&self, root: &Cipher, tenant: Uuid, root_version: u32) -> Result<Vec<u8>> {
        let mut both = zeroize::Zeroizing::new([0u8; 64]);
        both[..32].copy_from_slice(self.kek.expose_secret());
        both[32..].copy_from_slice(self.secret.expose_secret());
        Ok(root.seal(&both[..], &aad::tenant_key(tenant.as_bytes(), root_version))?)
    }

    fn open(root: &Cipher, sealed: &[u8], tenant: Uuid, root_version: u32) -> Result<Self> {
        let both = root.open(sealed, &aad::tenant_key(tenant.as_bytes(), root_version))?;
        if both.len() != 64 {
            return Err(VaultError::Integrity);
        }
        Ok(Self {
            kek: SecretKey::try_from_slice(&both[..32])?,
            secret: SecretKey::try_from_slice(&both[32..])?,
        })
    }
}

/// Root ciphers by version, plus the caches below them.
pub(crate) struct Keys {
    root: RwLock<RootCiphers>,
    /// Where to reload the root keyring from when another process rotated it.
    provider: Mutex<Option<Arc<dyn ward_crypto::KeyProvider>>>,
    tenants: Mutex<HashMap<(Uuid, u32), Arc<TenantKeys>>>,
    subjects: Mutex<HashMap<SubjectKeyId, Arc<Cipher>>>,
}

struct RootCiphers {
    current: KeyVersion,
    by_version: HashMap<u32, Cipher>,
}

impl Keys {
    pub(crate) fn new(ring: &RootKeyring) -> Result<Self> {
        let mut by_version = HashMap::new();
        for v in ring.versions() {
            if let Some(k) = ring.get(v) {
                by_version.insert(v.0, Cipher::new(k)?);
            }
        }
        Ok(Self {
            root: RwLock::new(RootCiphers {
                current: ring.current().0,
                by_version,
            }),
            provider: Mutex::new(None),
            tenants: Mutex::new(HashMap::new()),
            subjects: Mutex::new(HashMap::new()),
        })
    }

    /// Replaces the root keyring (after a root rotation added or destroyed a version).
    pub(crate) fn install_ring(&self, ring: &RootKeyring) -> Result<()> {
        let mut by_version = HashMap::new();
        for v in ring.versions() {
            if let Some(k) = ring.get(v) {
                by_version.insert(v.0, Cipher::new(k)?);
            }
        }
        *self.root.write().unwrap_or_else(|p| p.into_inner()) = RootCiphers {
            current: ring.current().0,
            by_version,
        };
        Ok(())
    }

    /// Remembers the key provider so a rotation by another process can be picked up.
    pub(crate) fn set_provider(&self, provider: Arc<dyn ward_crypto::KeyProvider>) {
        *lock(&self.provider) = Some(provider);
    }

    /// Reloads the keyring from the provider (another process rotated the root key).
    /// Returns whether a provider was there to ask.
    pub(crate) fn reload(&self) -> Result<bool> {
        let provider = lock(&self.provider).clone();
        match provider {
            Some(p) => {
                let ring = p.load()?;
                self.install_ring(&ring)?;
                tracing::info!(current = ring.current().0.0, "reloaded the root keyring");
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Makes sure root version `v` is loaded, reloading the keyring once if it is not.
    fn ensure_root(&self, v: u32) -> Result<()> {
        if !self.has_root(v) {
            self.reload()?;
        }
        Ok(())
    }

    /// The root key version new material is sealed under.
    pub(crate) fn current_root(&self) -> u32 {
        self.root
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .current
            .0
    }

    /// Whether this process holds root key version `v`.
    pub(crate) fn has_root(&self, v: u32) -> bool {
        self.root
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_version
            .contains_key(&v)
    }

    /// Opens a tenant's sealed material with the root version that sealed it.
    pub(crate) fn open_material(&self, t: &TenantRow) -> Result<TenantMaterial> {
        let Some(wrapped) = &t.wrapped_key else {
            return Err(VaultError::NotFound("tenant"));
        };
        self.ensure_root(t.root_key_version)?;
        let root = self.root.read().unwrap_or_else(|p| p.into_inner());
        let cipher = root.by_version.get(&t.root_key_version).ok_or_else(|| {
            VaultError::Crypto(ward_crypto::CryptoError::UnknownKeyVersion(KeyVersion(
                t.root_key_version,
            )))
        })?;
        TenantMaterial::open(cipher, wrapped, t.id, t.root_key_version)
    }

    /// Seals material under the current root version.
    pub(crate) fn seal_material(&self, m: &TenantMaterial, tenant: Uuid) -> Result<(Vec<u8>, u32)> {
        let root = self.root.read().unwrap_or_else(|p| p.into_inner());
        let v = root.current.0;
        let cipher = root.by_version.get(&v).ok_or(VaultError::Integrity)?;
        Ok((m.seal(cipher, tenant, v)?, v))
    }

    /// Seals a fresh tenant key under the current root key.
    pub(crate) fn new_tenant_key(&self, tenant: Uuid) -> Result<(Vec<u8>, u32)> {
        // Seal under the newest root version, even if another process rotated since start.
        self.reload()?;
        let material = TenantMaterial::generate()?;
        let root = self.root.read().unwrap_or_else(|p| p.into_inner());
        let v = root.current.0;
        let cipher = root.by_version.get(&v).ok_or(VaultError::Integrity)?;
        Ok((material.seal(cipher, tenant, v)?, v))
    }

    /// The tenant's derived keys, unwrapping on a cache miss.
    pub(crate) fn tenant(&self, t: &TenantRow) -> Result<Arc<TenantKeys>> {
        let cache_key = (t.id, t.key_version);
        if let Some(k) = lock(&self.tenants).get(&cache_key) {
            return Ok(k.clone());
        }
        let Some(wrapped) = &t.wrapped_key else {
            return Err(VaultError::NotFound("tenant"));
        };
        self.ensure_root(t.root_key_version)?;
        let material = {
            let root = self.root.read().unwrap_or_else(|p| p.into_inner());
            let cipher = root.by_version.get(&t.root_key_version).ok_or_else(|| {
                VaultError::Crypto(ward_crypto::CryptoError::UnknownKeyVersion(KeyVersion(
                    t.root_key_version,
                )))
            })?;
            TenantMaterial::open(cipher, wrapped, t.id, t.root_key_version)?
        };
        let keys = Arc::new(TenantKeys::new(&material)?);
        lock(&self.tenants).insert(cache_key, keys.clone());
        Ok(keys)
    }

    /// Seals a fresh subject key under the tenant key.
    pub(crate) fn new_subject_key(
        &self,
        tenant: &TenantRow,
        subject: Uuid,
    ) -> Result<(Vec<u8>, Arc<Cipher>)> {
        let (wrapped, cipher) = self.next_subject_key(tenant, subject)?;
        self.remember_subject(
            (
                tenant.id,
                subject,
                tenant.key_version,
                FIRST_SUBJECT_KEY_VERSION,
            ),
            cipher.clone(),
        );
        Ok((wrapped, cipher))
    }

    /// A fresh key for an existing subject (record rotation), wrapped under the tenant key.
    /// Not cached: it becomes the subject's key only if the rotation commits.
    pub(crate) fn next_subject_key(
        &self,
        tenant: &TenantRow,
        subject: Uuid,
    ) -> Result<(Vec<u8>, Arc<Cipher>)> {
        let tk = self.tenant(tenant)?;
        let key = SecretKey::generate()?;
        let wrapped = tk.cipher.wrap(
            &key,
            &aad::subject_key(tenant.id.as_bytes(), subject.as_bytes(), tenant.key_version),
        )?;
        Ok((wrapped, Arc::new(Cipher::new(&key)?)))
    }

    /// A retired version of a subject key, unwrapping with the tenant key on a miss.
    pub(crate) fn retired_subject(
        &self,
        tenant: &TenantRow,
        subject: Uuid,
        r: &RetiredKeyRow,
    ) -> Result<Arc<Cipher>> {
        let id = (tenant.id, subject, r.key_version, r.version);
        if let Some(c) = lock(&self.subjects).get(&id) {
            return Ok(c.clone());
        }
        if r.key_version != tenant.key_version {
            // Tenant rotations wait for record rotations to finish, so this is a stale read.
            return Err(VaultError::conflict(
                "the tenant key was rotated during the request; retry",
            ));
        }
        let tk = self.tenant(tenant)?;
        let key = tk.cipher.unwrap(
            &r.wrapped_key,
            &aad::subject_key(tenant.id.as_bytes(), subject.as_bytes(), r.key_version),
        )?;
        let cipher = Arc::new(Cipher::new(&key)?);
        self.remember_subject(id, cipher.clone());
        Ok(cipher)
    }

    /// The subject's record cipher if cached; `None` means the caller must fetch the tenant.
    pub(crate) fn cached_subject(&self, s: &SubjectRow) -> Option<Arc<Cipher>> {
        lock(&self.subjects)
            .get(&(s.tenant, s.id, s.key_version, s.record_key_version))
            .cloned()
    }

    /// The subject's record cipher, unwrapping with the tenant key on a miss.
    pub(crate) fn subject(&self, tenant: &TenantRow, s: &SubjectRow) -> Result<Arc<Cipher>> {
        if let Some(c) = self.cached_subject(s) {
            return Ok(c);
        }
        let Some(wrapped) = &s.wrapped_key else {
            return Err(VaultError::NotFound("subject"));
        };
        let tk = self.tenant(tenant)?;
        let key = tk.cipher.unwrap(
            wrapped,
            &aad::subject_key(s.tenant.as_bytes(), s.id.as_bytes(), s.key_version),
        )?;
        let cipher = Arc::new(Cipher::new(&key)?);
        self.remember_subject(
            (s.tenant, s.id, s.key_version, s.record_key_version),
            cipher.clone(),
        );
        Ok(cipher)
    }

    /// Drops every cached key of a subject (erasure) so nothing in memory outlives the shred.
    pub(crate) fn forget_subject(&self, tenant: Uuid, subject: Uuid) {
        lock(&self.subjects).retain(|k, _| !(k.0 == tenant && k.1 == subject));
    }

    /// Drops every cached key of a tenant (destruction).
    pub(crate) fn forget_tenant(&self, tenant: Uuid) {
        lock(&self.tenants).retain(|k, _| k.0 != tenant);
        lock(&self.subjects).retain(|k, _| k.0 != tenant);
    }

    fn remember_subject(&self, key: SubjectKeyId, cipher: Arc<Cipher>) {
        let mut cache = lock(&self.subjects);
        if cache.len() >= SUBJECT_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, cipher);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

//! The repository key and what derives from it.
//!
//! A repository has one random 256-bit key. It is stored only wrapped (AES-256-GCM) under a
//! key derived from each root key version (HKDF label [`WRAP_LABEL`]), in the repository's
//! config object, so that:
//! - a fresh machine holding only the root key can open, verify and restore the repository;
//! - a root-key rotation adds a wrapping under the new version (a new config object) without
//!   re-encrypting a single chunk;
//! - a wrong root key fails to unwrap, which is detected before anything is written.
//!
//! From the repository key derive, with distinct HKDF labels: the keyed-BLAKE3 key of chunk
//! ids, the AES-256-GCM key of objects and manifests, and the Ed25519 seed that signs
//! manifests. Chunk ids depend on the repository key rather than the root key, so rotating
//! the root key keeps deduplication against every earlier snapshot.

use std::collections::BTreeMap;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use ward_crypto::{Cipher, KeyVersion, RootKeyring, SecretKey, aad};

use crate::id::ObjectId;
use crate::{BackupError, Result};

/// HKDF label of the key that wraps the repository key, derived from a root key version.
pub const WRAP_LABEL: &str = "ward-backup/repository-wrap/v1";
const CHUNK_ID_LABEL: &str = "ward-backup/chunk-id/v1";
const OBJECT_LABEL: &str = "ward-backup/object/v1";
const SIGNING_LABEL: &str = "ward-backup/manifest-signing/v1";

/// The repository format this Ward writes and reads.
pub const FORMAT: u32 = 1;

/// Where config objects live; the highest-numbered one a keyring can open is in force.
pub(crate) const CONFIG_PREFIX: &str = "config";

/// Content-defined chunking bounds (bytes): about 256 KiB a chunk, so a changed row costs
/// one small object while a gigabyte is a few thousand objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkingParams {
    /// Smallest chunk.
    pub min: u32,
    /// Average chunk.
    pub avg: u32,
    /// Largest chunk.
    pub max: u32,
}

impl Default for ChunkingParams {
    fn default() -> Self {
        Self {
            min: 64 * 1024,
            avg: 256 * 1024,
            max: 1024 * 1024,
        }
    }
}

/// The repository config object (JSON, not secret: it holds the repository key only
/// wrapped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    /// Format version.
    pub format: u32,
    /// Random id, bound into every wrapping, so a config's wrapped key cannot be moved into
    /// another repository's config.
    pub repository: String,
    /// Sequence number of this config (its object name).
    pub sequence: u32,
    /// Chunking bounds; fixed for the repository's life, so chunks keep deduplicating.
    pub chunking: ChunkingParams,
    /// The repository key wrapped under each root key version's derived wrapping key.
    pub wrapped: BTreeMap<u32, String>,
    /// The manifest signing public key (Ed25519, base64), for verifiers that only want to
    /// check signatures; Ward itself re-derives it and refuses a config where they differ.
    pub signing_public_key: String,
}

impl RepoConfig {
    /// The config object's path.
    #[must_use]
    pub fn path(&self) -> String {
        config_path(self.sequence)
    }

    /// The sequence number of a config path.
    #[must_use]
    pub fn sequence_of(path: &str) -> Option<u32> {
        path.strip_prefix(CONFIG_PREFIX)?
            .strip_prefix('/')?
            .parse()
            .ok()
    }
}

pub(crate) fn config_path(sequence: u32) -> String {
    format!("{CONFIG_PREFIX}/{sequence:08}")
}

/// The unwrapped repository key's derived keys.
pub struct RepoKeys {
    repo_key: SecretKey,
    chunk_id_key: [u8; 32],
    cipher: Cipher,
    signer: Ed25519KeyPair,
    /// The repository id.
    pub repository: String,
}

impl std::fmt::Debug for RepoKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RepoKeys({}, <redacted>)", self.repository)
    }
}

impl Drop for RepoKeys {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.chunk_id_key.zeroize();
    }
}

impl RepoKeys {
    /// A new repository: a random key wrapped under every version of `root`.
    ///
    /// # Errors
    /// If the random generator or a primitive fails.
    pub fn create(root: &RootKeyring) -> Result<(Self, RepoConfig)> {
        let repository = hex::encode(ward_crypto::random_bytes::<16>()?);
        let keys = Self::from_key(SecretKey::generate()?, repository)?;
        let mut config = RepoConfig {
            format: FORMAT,
            repository: keys.repository.clone(),
            sequence: 1,
            chunking: ChunkingParams::default(),
            wrapped: BTreeMap::new(),
            signing_public_key: B64.encode(keys.signer.public_key().as_ref()),
        };
        keys.wrap_all(root, &mut config)?;
        Ok((keys, config))
    }

    /// Opens `config` with `root`: unwraps under the first root version the config has a
    /// wrapping for.
    ///
    /// # Errors
    /// [`BackupError::WrongRootKey`] if no root version opens it (or the signing key it
    /// names is not the derived one); [`BackupError::UnsupportedFormat`] for a newer format.
    pub fn open(root: &RootKeyring, config: &RepoConfig) -> Result<Self> {
        if config.format != FORMAT {
            return Err(BackupError::UnsupportedFormat(config.format));
        }
        for version in root.versions().into_iter().rev() {
            let (Some(root_key), Some(wrapped)) =
                (root.get(version), config.wrapped.get(&version.0))
            else {
                continue;
            };
            let Ok(wrapped) = B64.decode(wrapped) else {
                continue;
            };
            let cipher = Cipher::new(&root_key.derive(WRAP_LABEL)?)?;
            let Ok(key) = cipher.unwrap(&wrapped, &wrap_aad(&config.repository, version.0)) else {
                continue;
            };
            let keys = Self::from_key(key, config.repository.clone())?;
            let public = B64.encode(keys.signer.public_key().as_ref());
            if !ward_crypto::ct_eq(public.as_bytes(), config.signing_public_key.as_bytes()) {
                return Err(BackupError::WrongRootKey);
            }
            return Ok(keys);
        }
        Err(BackupError::WrongRootKey)
    }

    /// A config that also wraps the key under every version of `root` it lacks (after a
    /// root-key rotation), or `None` when `config` already covers them.
    ///
    /// # Errors
    /// If a primitive fails.
    pub fn rewrapped(&self, root: &RootKeyring, config: &RepoConfig) -> Result<Option<RepoConfig>> {
        if root
            .versions()
            .iter()
            .all(|v| config.wrapped.contains_key(&v.0))
        {
            return Ok(None);
        }
        let mut next = config.clone();
        next.sequence += 1;
        self.wrap_all(root, &mut next)?;
        Ok(Some(next))
    }

    fn wrap_all(&self, root: &RootKeyring, config: &mut RepoConfig) -> Result<()> {
        for version in root.versions() {
            if config.wrapped.contains_key(&version.0) {
                continue;
            }
            let KeyVersion(v) = version;
            let Some(root_key) = root.get(version) else {
                continue;
            };
            let cipher = Cipher::new(&root_key.derive(WRAP_LABEL)?)?;
            let wrapped = cipher.wrap(&self.repo_key, &wrap_aad(&config.repository, v))?;
            config.wrapped.insert(v, B64.encode(wrapped));
        }
        Ok(())
    }

    fn from_key(repo_key: SecretKey, repository: String) -> Result<Self> {
        let chunk = repo_key.derive(CHUNK_ID_LABEL)?;
        let mut chunk_id_key = [0u8; 32];
        chunk_id_key.copy_from_slice(chunk.expose_secret());
        let cipher = Cipher::new(&repo_key.derive(OBJECT_LABEL)?)?;
        let seed = repo_key.derive(SIGNING_LABEL)?;
        let signer = Ed25519KeyPair::from_seed_unchecked(seed.expose_secret())
            .map_err(|_| ward_crypto::CryptoError::Primitive("ed25519 key from seed"))?;
        Ok(Self {
            repo_key,
            chunk_id_key,
            cipher,
            signer,
            repository,
        })
    }

    /// The id of a chunk with this plaintext.
    #[must_use]
    pub fn chunk_id(&self, plaintext: &[u8]) -> ObjectId {
        ObjectId(*blake3::keyed_hash(&self.chunk_id_key, plaintext).as_bytes())
    }

    /// Encrypts `plain` bound to `place` (the object's path) under the object key.
    pub(crate) fn seal(&self, plain: &[u8], place: &str) -> Result<Vec<u8>> {
        Ok(self.cipher.seal(plain, &self.object_aad(place))?)
    }

    /// Opens what [`Self::seal`] sealed for `place`.
    pub(crate) fn open_sealed(
        &self,
        sealed: &[u8],
        place: &str,
    ) -> Result<ward_crypto::Zeroizing<Vec<u8>>> {
        Ok(self.cipher.open(sealed, &self.object_aad(place))?)
    }

    fn object_aad(&self, place: &str) -> Vec<u8> {
        aad::backup_object(&self.repository, place)
    }

    /// Ed25519 signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.signer.sign(message).as_ref());
        out
    }

    /// Checks an Ed25519 signature of `message` by this repository.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, self.signer.public_key().as_ref())
            .verify(message, signature)
            .is_ok()
    }
}

fn wrap_aad(repository: &str, version: u32) -> Vec<u8> {
    aad::backup_repository_key(repository, version)
}

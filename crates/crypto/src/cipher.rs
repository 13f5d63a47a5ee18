//! AES-256-GCM sealing with a self-describing wire format.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use zeroize::{Zeroize, Zeroizing};

use crate::{CryptoError, SecretKey};

/// Algorithm id byte for AES-256-GCM, the first byte of every sealed value. Having an id
/// lets a future cipher be introduced and old rows re-encrypted in the background while
/// both remain readable.
pub const ALGORITHM_AES_256_GCM: u8 = 1;

/// Nonce length in bytes (96-bit GCM nonce).
pub const NONCE_LEN: usize = 12;

/// Authentication tag length in bytes.
pub const TAG_LEN: usize = 16;

/// Bytes a sealed value adds to its plaintext: algorithm id, nonce and tag.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

const HEADER_LEN: usize = 1 + NONCE_LEN;

/// A prepared AES-256-GCM key for the hot path.
///
/// The key schedule is computed once in [`Cipher::new`], so the vault caches `Cipher`s
/// for unwrapped tenant and subject keys and each read costs one GCM open. Nonces are
/// 96-bit random values drawn by aws-lc for every seal (`RandomizedNonceKey`), so no nonce
/// state has to be stored or coordinated between servers; at Ward's volumes per key the
/// random-nonce collision bound is far out of reach.
///
/// Sealed format: `algorithm id (1) || nonce (12) || ciphertext || tag (16)`. The
/// algorithm id is also authenticated (it is prepended to the associated data), so it
/// cannot be swapped without detection.
pub struct Cipher {
    key: RandomizedNonceKey,
}

impl Cipher {
    /// Prepares `key` for AES-256-GCM.
    ///
    /// # Errors
    /// [`CryptoError::Primitive`] if aws-lc rejects the key setup.
    pub fn new(key: &SecretKey) -> Result<Self, CryptoError> {
        let key = RandomizedNonceKey::new(&AES_256_GCM, key.expose_secret())
            .map_err(|_| CryptoError::Primitive("aes-256-gcm key setup"))?;
        Ok(Self { key })
    }

    /// Encrypts and authenticates `plaintext`, binding it to `aad` (see [`crate::aad`]).
    ///
    /// Two seals of the same plaintext differ, because each uses a fresh random nonce.
    ///
    /// # Errors
    /// [`CryptoError::Primitive`] if encryption fails (e.g. the RNG behind the nonce).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
        out.push(ALGORITHM_AES_256_GCM);
        out.extend_from_slice(&[0u8; NONCE_LEN]);
        out.extend_from_slice(plaintext);
        let full_aad = bound_aad(ALGORITHM_AES_256_GCM, aad);
        match self
            .key
            .seal_in_place_separate_tag(Aad::from(&full_aad[..]), &mut out[HEADER_LEN..])
        {
            Ok((nonce, tag)) => {
                out[1..HEADER_LEN].copy_from_slice(nonce.as_ref());
                out.extend_from_slice(tag.as_ref());
                Ok(out)
            }
            Err(_) => {
                // The buffer may still hold plaintext; wipe it before it is freed.
                out.zeroize();
                Err(CryptoError::Primitive("aes-256-gcm seal"))
            }
        }
    }

    /// Authenticates and decrypts a value produced by [`Cipher::seal`] with the same key
    /// and the same `aad`. The plaintext is returned in a zeroize-on-drop buffer.
    ///
    /// # Errors
    /// [`CryptoError::Integrity`] for any tampering, truncation, unknown algorithm id,
    /// wrong key or wrong associated data — deliberately indistinguishable.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < SEAL_OVERHEAD || sealed[0] != ALGORITHM_AES_256_GCM {
            return Err(CryptoError::Integrity);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..HEADER_LEN]);
        let nonce = Nonce::assume_unique_for_key(nonce);
        let full_aad = bound_aad(sealed[0], aad);
        let mut buf = Zeroizing::new(sealed[HEADER_LEN..].to_vec());
        let plain_len = self
            .key
            .open_in_place(nonce, Aad::from(&full_aad[..]), &mut buf[..])
            .map_err(|_| CryptoError::Integrity)?
            .len();
        // Truncation keeps the capacity; the dropped tail is ciphertext tag, not secret,
        // and the whole allocation is wiped on drop anyway.
        buf.truncate(plain_len);
        Ok(buf)
    }

    /// Seals a key under this cipher (envelope encryption: tenant keys under the root key,
    /// subject and hold keys under the tenant key).
    ///
    /// # Errors
    /// As [`Cipher::seal`].
    pub fn wrap(&self, key: &SecretKey, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.seal(key.expose_secret(), aad)
    }

    /// Opens a key wrapped with [`Cipher::wrap`].
    ///
    /// # Errors
    /// [`CryptoError::Integrity`] as for [`Cipher::open`];
    /// [`CryptoError::InvalidKeyLength`] if the payload authenticated but is not a key
    /// (something other than a key was sealed under this associated data).
    pub fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<SecretKey, CryptoError> {
        let plain = self.open(wrapped, aad)?;
        SecretKey::try_from_slice(&plain)
    }
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher(AES-256-GCM, <redacted>)")
    }
}

/// The associated data actually given to GCM: the algorithm id followed by the caller's
/// associated data, so the (otherwise unauthenticated) id byte is covered by the tag.
fn bound_aad(algorithm: u8, aad: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + aad.len());
    v.push(algorithm);
    v.extend_from_slice(aad);
    v
}

//! 256-bit secret keys and small helpers (randomness, hashing, constant-time comparison).

use std::fmt;

use aws_lc_rs::{digest, hkdf, rand};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::CryptoError;

/// Length in bytes of every symmetric key in Ward.
pub const KEY_LEN: usize = 32;

/// HKDF salt for [`SecretKey::derive`]. A fixed, Ward-specific salt keeps derived keys
/// apart from any other HKDF use of the same key material, and going through
/// extract-then-expand keeps the derivation within what FIPS mode approves.
const DERIVE_SALT: &[u8] = b"ward-crypto/derive/v1";

/// A 256-bit symmetric key (root, tenant, subject or derived key).
///
/// The bytes live on the heap inside a zeroize-on-drop buffer, so moving a `SecretKey`
/// around does not leave stray copies on the stack and dropping it wipes the key.
/// `Debug` prints `SecretKey(<redacted>)` and there is deliberately no `Display`, so a key
/// cannot end up in a log line by accident. Equality is constant-time.
#[derive(Clone)]
pub struct SecretKey(Box<Zeroizing<[u8; KEY_LEN]>>);

impl SecretKey {
    /// A fresh random key from the system CSPRNG (via `aws_lc_rs::rand`).
    ///
    /// # Errors
    /// [`CryptoError::Random`] if the random number generator fails.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Box::new(Zeroizing::new([0u8; KEY_LEN]));
        rand::fill(&mut key[..]).map_err(|_| CryptoError::Random)?;
        Ok(Self(key))
    }

    /// Wraps existing key bytes (read from a key file or unwrapped from storage).
    #[must_use]
    pub fn from_bytes(mut bytes: [u8; KEY_LEN]) -> Self {
        let key = Self(Box::new(Zeroizing::new(bytes)));
        // The argument is a copy; wipe it so the caller's stack frame keeps no key.
        bytes.zeroize();
        key
    }

    /// Builds a key from a slice, checking its length; the slice is not wiped.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKeyLength`] if `bytes` is not exactly 32 bytes long.
    pub fn try_from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != KEY_LEN {
            return Err(CryptoError::InvalidKeyLength {
                actual: bytes.len(),
            });
        }
        let mut key = Box::new(Zeroizing::new([0u8; KEY_LEN]));
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    /// The raw key bytes. Only for writing key files and wrapping; the name makes every
    /// use stand out in review.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Derives an independent sub-key with HKDF-SHA256 (`info` = `label`).
    ///
    /// Used for per-tenant blind-index, IP-hash and anonymization keys: deriving instead of
    /// storing means they vanish with the tenant key, and distinct labels give unrelated
    /// keys, so one purpose's key reveals nothing about another's.
    ///
    /// # Errors
    /// [`CryptoError::EmptyLabel`] for an empty label, [`CryptoError::Primitive`] if HKDF
    /// fails.
    pub fn derive(&self, label: &str) -> Result<Self, CryptoError> {
        if label.is_empty() {
            return Err(CryptoError::EmptyLabel);
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, DERIVE_SALT).extract(&self.0[..]);
        let info = [label.as_bytes()];
        let okm = prk
            .expand(&info, hkdf::HKDF_SHA256)
            .map_err(|_| CryptoError::Primitive("hkdf expand"))?;
        let mut out = Box::new(Zeroizing::new([0u8; KEY_LEN]));
        okm.fill(&mut out[..])
            .map_err(|_| CryptoError::Primitive("hkdf fill"))?;
        Ok(Self(out))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl PartialEq for SecretKey {
    /// Constant-time, so comparing keys never leaks how many leading bytes matched.
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0[..], &other.0[..])
    }
}

impl Eq for SecretKey {}

/// Compares two byte strings in time independent of their contents (lengths are not
/// secret). Use it for tokens, MACs and hashes, where an early-exit `==` would let an
/// attacker guess a secret byte by byte from response timings.
#[must_use]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// `N` bytes from the system CSPRNG (ids, nonces, salts).
///
/// # Errors
/// [`CryptoError::Random`] if the random number generator fails.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    rand::fill(&mut out).map_err(|_| CryptoError::Random)?;
    Ok(out)
}

/// Plain SHA-256. Only for values that are already high-entropy (tokens) or public;
/// anything guessable must go through a keyed [`crate::Hasher`] instead.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_answer() {
        // FIPS 180-2 test vector "abc".
        let h = sha256(b"abc");
        assert_eq!(h[..4], [0xba, 0x78, 0x16, 0xbf]);
        assert_eq!(h[28..], [0xf2, 0x00, 0x15, 0xad]);
    }

    #[test]
    fn try_from_slice_checks_length() {
        assert!(matches!(
            SecretKey::try_from_slice(&[0u8; 31]),
            Err(CryptoError::InvalidKeyLength { actual: 31 })
        ));
        assert!(SecretKey::try_from_slice(&[7u8; 32]).is_ok());
    }

    #[test]
    fn random_bytes_differ() {
        let a = random_bytes::<16>().unwrap();
        let b = random_bytes::<16>().unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn empty_label_refused() {
        let k = SecretKey::from_bytes([1; 32]);
        assert!(matches!(k.derive(""), Err(CryptoError::EmptyLabel)));
    }
}

//! Versioned root keys and their text format.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::{CryptoError, KEY_LEN, SecretKey};

/// The version number of a key. Stored next to every wrapped key and ciphertext so that
/// decryption can pick the right key while a rotation is still in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyVersion(pub u32);

impl fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// All root key versions a provider holds: the current one (highest version) wraps new
/// tenant keys; older ones are kept only to unwrap tenant keys not yet rewrapped.
///
/// Text format (shared by every [`crate::KeyProvider`]): one line per version,
/// `v<N>:<base64 standard encoding of 32 bytes>`; the highest `N` is current; blank lines
/// and lines starting with `#` are ignored. `Debug` lists only the versions.
#[derive(Clone)]
pub struct RootKeyring {
    // Invariant: never empty; versions are >= 1.
    keys: BTreeMap<KeyVersion, SecretKey>,
}

impl RootKeyring {
    /// A new keyring holding a single random key, version `v1`.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if the RNG fails.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut keys = BTreeMap::new();
        keys.insert(KeyVersion(1), SecretKey::generate()?);
        Ok(Self { keys })
    }

    /// Builds a keyring from explicit versions (e.g. keys fetched from a KMS).
    ///
    /// # Errors
    /// [`CryptoError::EmptyKeyring`] if there are none, [`CryptoError::DuplicateKeyVersion`]
    /// for a repeated version, [`CryptoError::KeyringFormat`] for version 0.
    pub fn from_keys(
        keys: impl IntoIterator<Item = (KeyVersion, SecretKey)>,
    ) -> Result<Self, CryptoError> {
        let mut map = BTreeMap::new();
        for (v, k) in keys {
            if v.0 == 0 {
                return Err(CryptoError::KeyringFormat {
                    line: 0,
                    reason: "key versions start at 1",
                });
            }
            if map.insert(v, k).is_some() {
                return Err(CryptoError::DuplicateKeyVersion(v));
            }
        }
        if map.is_empty() {
            return Err(CryptoError::EmptyKeyring);
        }
        Ok(Self { keys: map })
    }

    /// Parses the keyring text format. Errors name the line number and problem but never
    /// echo the line, because it may hold key material.
    ///
    /// # Errors
    /// [`CryptoError::KeyringFormat`], [`CryptoError::DuplicateKeyVersion`] or
    /// [`CryptoError::EmptyKeyring`].
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let mut keys = BTreeMap::new();
        for (idx, raw_line) in text.lines().enumerate() {
            let line_no = idx + 1;
            let bad = |reason| CryptoError::KeyringFormat {
                line: line_no,
                reason,
            };
            let line = raw_line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (version, b64) = line
                .split_once(':')
                .ok_or_else(|| bad("expected \"v<N>:<base64 key>\""))?;
            let number = version
                .trim()
                .strip_prefix('v')
                .ok_or_else(|| bad("version must look like \"v1\""))?;
            if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("version must look like \"v1\""));
            }
            let number: u32 = number
                .parse()
                .map_err(|_| bad("version number too large"))?;
            if number == 0 {
                return Err(bad("key versions start at 1"));
            }
            // Decode into a wiped buffer with room to spare, then demand exactly 32 bytes.
            let mut buf = Zeroizing::new([0u8; KEY_LEN + 16]);
            let n = STANDARD
                .decode_slice(b64.trim().as_bytes(), &mut buf[..])
                .map_err(|_| bad("key is not valid base64 of 32 bytes"))?;
            if n != KEY_LEN {
                return Err(bad("key is not valid base64 of 32 bytes"));
            }
            let key = SecretKey::try_from_slice(&buf[..KEY_LEN])?;
            let v = KeyVersion(number);
            if keys.insert(v, key).is_some() {
                return Err(CryptoError::DuplicateKeyVersion(v));
            }
        }
        if keys.is_empty() {
            return Err(CryptoError::EmptyKeyring);
        }
        Ok(Self { keys })
    }

    /// Formats the keyring in the text format, oldest version first, in a wiped buffer.
    #[must_use]
    pub fn to_text(&self) -> Zeroizing<String> {
        // "v" + up to 10 digits + ":" + 44 base64 chars + "\n"
        let mut out = Zeroizing::new(String::with_capacity(self.keys.len() * 57));
        for (v, key) in &self.keys {
            out.push_str(&v.to_string());
            out.push(':');
            STANDARD.encode_string(key.expose_secret(), &mut out);
            out.push('\n');
        }
        out
    }

    /// The current (highest) version and its key; new tenant keys are wrapped with it.
    #[must_use]
    pub fn current(&self) -> (KeyVersion, &SecretKey) {
        let (v, k) = self
            .keys
            .last_key_value()
            .expect("RootKeyring invariant: never empty");
        (*v, k)
    }

    /// The key of version `v`, if this keyring still holds it.
    #[must_use]
    pub fn get(&self, v: KeyVersion) -> Option<&SecretKey> {
        self.keys.get(&v)
    }

    /// All versions held, oldest first.
    #[must_use]
    pub fn versions(&self) -> Vec<KeyVersion> {
        self.keys.keys().copied().collect()
    }

    /// Rotation: a copy of this keyring with a new random key as version max+1, which
    /// becomes current. The old versions stay until their tenant keys are rewrapped.
    ///
    /// # Errors
    /// [`CryptoError::KeyVersionExhausted`] at `u32::MAX`; [`CryptoError::Random`].
    pub fn with_new_version(&self) -> Result<Self, CryptoError> {
        let next = self
            .current()
            .0
            .0
            .checked_add(1)
            .ok_or(CryptoError::KeyVersionExhausted)?;
        let mut ring = self.clone();
        ring.keys.insert(KeyVersion(next), SecretKey::generate()?);
        Ok(ring)
    }

    /// A copy of this keyring without retired version `v`, once nothing is wrapped under
    /// it any more. Destroying the current version is refused.
    ///
    /// # Errors
    /// [`CryptoError::CurrentKeyVersion`] for the current version,
    /// [`CryptoError::UnknownKeyVersion`] if `v` is not held.
    pub fn without_version(&self, v: KeyVersion) -> Result<Self, CryptoError> {
        if v == self.current().0 {
            return Err(CryptoError::CurrentKeyVersion(v));
        }
        if !self.keys.contains_key(&v) {
            return Err(CryptoError::UnknownKeyVersion(v));
        }
        let mut ring = self.clone();
        ring.keys.remove(&v);
        Ok(ring)
    }
}

impl fmt::Debug for RootKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootKeyring")
            .field("versions", &self.versions())
            .field("current", &self.current().0)
            .finish_non_exhaustive()
    }
}

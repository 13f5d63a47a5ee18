//! Keys for what the operator owns outside any tenant (operator webhook secrets, operator
//! incidents' text), derived from each root key version with a label per use.
//!
//! A sealed value starts with the root version it was sealed under (4 bytes, big-endian), so
//! it opens after a root rotation as long as that version is held, and
//! [`PlatformKeys::sealed_version`] tells `Vault::key_status` which versions are still
//! needed (a version still sealing something is never destroyed).

use ward_crypto::{Cipher, RootKeyring, Zeroizing};

use crate::{Result, VaultError};

/// One use's keys, one per root key version this process holds.
pub(crate) struct PlatformKeys {
    current: u32,
    versions: Vec<(u32, Cipher)>,
}

impl PlatformKeys {
    /// The keys labelled `label` under every version of `ring`.
    pub(crate) fn new(ring: &RootKeyring, label: &str) -> Result<Self> {
        let mut versions = Vec::new();
        for v in ring.versions() {
            if let Some(root) = ring.get(v) {
                versions.push((v.0, Cipher::new(&root.derive(label)?)?));
            }
        }
        Ok(Self {
            current: ring.current().0.0,
            versions,
        })
    }

    /// The root version a sealed value is sealed under.
    pub(crate) fn sealed_version(sealed: &[u8]) -> Option<u32> {
        let head: [u8; 4] = sealed.get(..4)?.try_into().ok()?;
        Some(u32::from_be_bytes(head))
    }

    /// `<root version><ciphertext>` under the current version; `aad` binds the value to its
    /// place and is given the version.
    pub(crate) fn seal(&self, plain: &[u8], aad: impl Fn(u32) -> Vec<u8>) -> Result<Vec<u8>> {
        let (v, cipher) = self
            .versions
            .iter()
            .find(|(v, _)| *v == self.current)
            .ok_or(VaultError::Integrity)?;
        let mut out = v.to_be_bytes().to_vec();
        out.extend(cipher.seal(plain, &aad(*v))?);
        Ok(out)
    }

    /// Opens what [`Self::seal`] sealed, as text.
    pub(crate) fn open_text(
        &self,
        sealed: &[u8],
        aad: impl Fn(u32) -> Vec<u8>,
    ) -> Result<Zeroizing<String>> {
        let (head, body) = sealed.split_at_checked(4).ok_or(VaultError::Integrity)?;
        let v = u32::from_be_bytes(head.try_into().map_err(|_| VaultError::Integrity)?);
        let (_, cipher) = self
            .versions
            .iter()
            .find(|(held, _)| *held == v)
            .ok_or(VaultError::Integrity)?;
        let plain = cipher.open(body, &aad(v))?;
        Ok(Zeroizing::new(
            String::from_utf8(plain.to_vec()).map_err(|_| VaultError::Integrity)?,
        ))
    }
}

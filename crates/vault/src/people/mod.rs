//! People: users who log in with a password and TOTP, their sessions, and the support grants
//! through which support staff reach a tenant's data.
//!
//! Nothing a person types as a secret is kept: passwords are Argon2id hashes
//! ([`password`]), recovery codes, reset tokens and session ids SHA-256 digests. The e-mail
//! address is a login name but also personal data, so it is stored as a keyed hash (the
//! lookup) and sealed (for display); the TOTP secret is sealed too. Both are sealed under a
//! key derived from the root key, with associated data binding the user and the column
//! ([`ward_crypto::aad::user_secret`]).

mod enrol;
mod member_reset;
mod memberships;
mod password;
pub(crate) mod sessions;
mod support;
mod totp;
mod users;

use ward_crypto::{Cipher, Hasher, RootKeyring, Zeroizing, aad};

pub use enrol::{TotpConfirm, TotpEnrolled, TotpStart};
pub use member_reset::ResetIssued;
pub use memberships::{Joined, MemberOut, MembershipChange};
pub use password::{ARGON2_M_COST_KIB, ARGON2_P_COST, ARGON2_T_COST};
pub use sessions::{CSRF_HEADER, Login, LoginOut, SESSION_COOKIE, SessionOut};
pub use support::{BreakGlassNotice, GrantDecision, GrantOut, NewGrant};
pub use totp::totp_code;
pub use users::{CreatedUser, Email, NewUser, PasswordChange, PasswordReset, UserOut};

use crate::{Result, VaultError};

/// HKDF label of the key that seals and hashes people's values, derived from each root key
/// version.
const PEOPLE_KEY_LABEL: &str = "ward.people.v1";

/// The keys of people's sealed values, one set per root key version this process holds.
pub(crate) struct PeopleKeys {
    current: u32,
    versions: Vec<(u32, Cipher, Hasher)>,
}

impl PeopleKeys {
    pub(crate) fn new(ring: &RootKeyring) -> Result<Self> {
        let mut versions = Vec::new();
        for v in ring.versions() {
            if let Some(root) = ring.get(v) {
                let key = root.derive(PEOPLE_KEY_LABEL)?;
                versions.push((v.0, Cipher::new(&key)?, Hasher::new(&key)));
            }
        }
        // The current version first: new values are sealed and looked up under it.
        let current = ring.current().0.0;
        versions.sort_by_key(|(v, _, _)| *v != current);
        Ok(Self { current, versions })
    }

    /// The keyed hashes of an e-mail address under every held root version, the current one
    /// first (an account made before a root rotation is found under its own version).
    pub(crate) fn email_hashes(&self, email: &Email) -> Vec<[u8; 32]> {
        self.versions
            .iter()
            .map(|(_, _, h)| h.keyed("user-email", email.as_str().as_bytes()))
            .collect()
    }

    /// The e-mail hash under the current root version.
    pub(crate) fn email_hash(&self, email: &Email) -> [u8; 32] {
        self.email_hashes(email)
            .first()
            .copied()
            .unwrap_or_default()
    }

    /// The root version new values are sealed under.
    pub(crate) fn current(&self) -> u32 {
        self.current
    }

    /// Seals `plain` for `column` of user `user` under the current root version.
    pub(crate) fn seal(&self, user: uuid::Uuid, column: &str, plain: &[u8]) -> Result<Vec<u8>> {
        self.seal_at(user, column, self.current, plain)
    }

    /// Seals `plain` for `column` of user `user` under root version `version`: a value added
    /// to an existing account (a TOTP secret enrolled later) goes under the version its other
    /// values are sealed under, since the row records one version for all of them.
    pub(crate) fn seal_at(
        &self,
        user: uuid::Uuid,
        column: &str,
        version: u32,
        plain: &[u8],
    ) -> Result<Vec<u8>> {
        let cipher = self.cipher(version)?;
        Ok(cipher.seal(plain, &aad::user_secret(user.as_bytes(), column, version))?)
    }

    /// The TOTP secret a user enrolling in session `session` is offered. It is derived (a
    /// keyed hash under the current root version's people key) rather than drawn and stored,
    /// so the start and the confirmation of an enrolment agree without a pending row: the
    /// same session is offered the same secret until it confirms, another session another.
    /// Nobody without the root key can compute it, as nobody without it can open a sealed
    /// secret.
    pub(crate) fn pending_totp_secret(
        &self,
        user: uuid::Uuid,
        session: uuid::Uuid,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let (_, _, hasher) = self.versions.first().ok_or(VaultError::Integrity)?;
        let data = [user.as_bytes().as_slice(), session.as_bytes()].concat();
        let full = Zeroizing::new(hasher.keyed("user-totp-pending", &data));
        Ok(Zeroizing::new(full[..totp::SECRET_LEN].to_vec()))
    }

    /// Opens what [`Self::seal`] sealed under root version `version`.
    pub(crate) fn open(
        &self,
        user: uuid::Uuid,
        column: &str,
        version: u32,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let cipher = self.cipher(version)?;
        Ok(cipher.open(sealed, &aad::user_secret(user.as_bytes(), column, version))?)
    }

    fn cipher(&self, version: u32) -> Result<&Cipher> {
        self.versions
            .iter()
            .find(|(v, _, _)| *v == version)
            .map(|(_, c, _)| c)
            .ok_or(VaultError::Integrity)
    }
}

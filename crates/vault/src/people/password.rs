//! Passwords: the rules a new password must meet, and Argon2id hashing.
//!
//! Argon2id with the OWASP Password Storage Cheat Sheet's first configuration (19 MiB of
//! memory, 2 passes, 1 lane). A stored hash made with other parameters is replaced at the
//! next successful login, when the password is at hand. Hashing takes tens of milliseconds
//! of CPU, so it runs on the blocking pool, never on the async runtime; and it happens only
//! at login and password changes, never on the path of an authenticated request.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::{Result, VaultError};

/// Argon2id memory cost in KiB (OWASP: 19 MiB).
pub const ARGON2_M_COST_KIB: u32 = 19 * 1024;
/// Argon2id passes (OWASP: 2).
pub const ARGON2_T_COST: u32 = 2;
/// Argon2id lanes (OWASP: 1).
pub const ARGON2_P_COST: u32 = 1;

/// Fewest characters of a password.
pub(crate) const MIN_CHARS: usize = 12;
/// Most bytes of a password: Argon2 takes any length, but a megabyte "password" would make
/// every login attempt hash a megabyte.
pub(crate) const MAX_BYTES: usize = 1024;

/// The most common passwords of at least [`MIN_CHARS`] characters (shorter ones are refused
/// by length anyway), one per line, lower case.
const COMMON: &str = include_str!("common_passwords.txt");

fn argon2() -> Argon2<'static> {
    // The parameters are constants within Argon2's bounds.
    let params = Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None)
        .unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Refuses a password that breaks a rule, naming the rule; never repeats the password.
pub(crate) fn check_rules(password: &str) -> Result<()> {
    if password.len() > MAX_BYTES {
        return Err(VaultError::invalid(
            "password_too_long",
            format!("a password has at most {MAX_BYTES} bytes"),
            Some("password"),
        ));
    }
    if password.chars().count() < MIN_CHARS {
        return Err(VaultError::invalid(
            "password_too_short",
            format!("a password has at least {MIN_CHARS} characters"),
            Some("password"),
        ));
    }
    let lower = password.to_lowercase();
    if COMMON.lines().any(|c| c == lower) {
        return Err(VaultError::invalid(
            "password_too_common",
            "this password is on the list of the most common passwords; choose another",
            Some("password"),
        ));
    }
    Ok(())
}

/// The Argon2id PHC string of `password` under a fresh random salt.
pub(crate) fn hash(password: &str) -> Result<String> {
    let salt = ward_crypto::random_bytes::<16>()?;
    argon2()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| VaultError::Crypto(ward_crypto::CryptoError::Primitive("argon2 hash")))
}

/// Whether `password` matches the stored PHC string (under the parameters stored with it).
pub(crate) fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .ok()
        .is_some_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// Spends the time of one verification against a hash of nothing, so that a login for an
/// unknown account takes as long as one with a wrong password.
pub(crate) fn verify_nothing(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("ward: no such account").unwrap_or_default());
    let _ = verify(password, dummy);
}

/// Whether a stored hash was made with other than today's algorithm or parameters.
pub(crate) fn needs_rehash(phc: &str) -> bool {
    let Ok(h) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&h) else {
        return true;
    };
    h.algorithm.as_str() != "argon2id"
        || h.version != Some(0x13)
        || params.m_cost() != ARGON2_M_COST_KIB
        || params.t_cost() != ARGON2_T_COST
        || params.p_cost() != ARGON2_P_COST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_name_what_is_wrong() {
        let code = |p: &str| match check_rules(p) {
            Ok(()) => "ok",
            Err(VaultError::Invalid { code, .. }) => code,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(code("short"), "password_too_short");
        assert_eq!(code(&"x".repeat(1025)), "password_too_long");
        assert_eq!(code("password1234"), "password_too_common");
        assert_eq!(code("PASSWORD1234"), "password_too_common");
        assert_eq!(code("violet tractor pebble ocean"), "ok");
    }

    #[test]
    fn hashes_verify_and_other_parameters_ask_for_a_rehash() {
        let h = hash("violet tractor pebble ocean").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("violet tractor pebble ocean", &h));
        assert!(!verify("violet tractor pebble ocea", &h));
        assert!(!needs_rehash(&h));
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).expect("params"),
        )
        .hash_password_with_salt(b"violet tractor pebble ocean", &[7u8; 16])
        .expect("hash")
        .to_string();
        assert!(verify("violet tractor pebble ocean", &weak));
        assert!(needs_rehash(&weak));
        assert!(needs_rehash("not a hash"));
    }
}

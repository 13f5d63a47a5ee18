//! The second factor: RFC 6238 time-based codes (SHA-1, 6 digits, 30-second steps, the
//! parameters every authenticator app understands) and single-use recovery codes.
//!
//! A code is accepted for the current step or one step either side (clock drift), and only
//! for a step later than the last one accepted: the store's compare-and-set
//! (`PeopleOp::AcceptTotpStep`) makes a replayed code fail even when two logins race.
//! Secrets are 160 bits (RFC 4226's recommended length): random from aws-lc-rs for an account
//! made with TOTP, a keyed hash for one enrolled later (`enrol.rs` says why).

use totp_rs::{Algorithm, Builder, Totp};
use ward_crypto::Zeroizing;

use crate::{Result, VaultError};

/// Bytes of a TOTP secret.
pub(crate) const SECRET_LEN: usize = 20;
/// Recovery codes issued with an account.
pub(crate) const RECOVERY_CODES: usize = 10;
/// The issuer shown by authenticator apps.
const ISSUER: &str = "Ward";
/// Alphabet of recovery codes: no 0/1/8/9 to confuse with letters.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// What a login offers as its second factor.
#[derive(Debug)]
pub(crate) enum SecondFactor {
    /// A 6-digit code from the authenticator.
    Code(Zeroizing<String>),
    /// A recovery code, `xxxxx-xxxxx`.
    Recovery(Zeroizing<String>),
}

impl SecondFactor {
    /// Parses the `totp` field of a login; anything else than six digits or a recovery code
    /// is a 400 (`invalid_totp`), not a failed login.
    pub(crate) fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Self::Code(Zeroizing::new(s.to_owned())));
        }
        let compact: String = s.chars().filter(|c| *c != '-').collect();
        if compact.len() == 10
            && s.len() <= 11
            && compact
                .bytes()
                .all(|b| RECOVERY_ALPHABET.contains(&b.to_ascii_lowercase()))
        {
            return Ok(Self::Recovery(Zeroizing::new(compact.to_ascii_lowercase())));
        }
        Err(VaultError::invalid(
            "invalid_totp",
            "totp is six digits from the authenticator app, or a recovery code xxxxx-xxxxx",
            Some("totp"),
        ))
    }
}

/// A fresh secret.
pub(crate) fn new_secret() -> Result<Zeroizing<Vec<u8>>> {
    Ok(Zeroizing::new(
        ward_crypto::random_bytes::<SECRET_LEN>()?.to_vec(),
    ))
}

fn totp(secret: &[u8], account: &str) -> Result<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|_| VaultError::Crypto(ward_crypto::CryptoError::Primitive("totp parameters")))
}

/// The `otpauth://` enrolment URI of `secret` for `account` (an e-mail address).
pub(crate) fn enrolment_uri(secret: &[u8], account: &str) -> Result<Zeroizing<String>> {
    totp(secret, account)?
        .to_url()
        .map(Zeroizing::new)
        .map_err(|_| VaultError::Crypto(ward_crypto::CryptoError::Primitive("totp uri")))
}

/// The step `code` is valid for at unix time `now`, if any.
pub(crate) fn check(secret: &[u8], code: &str, now: i64) -> Result<Option<i64>> {
    let now = u64::try_from(now).unwrap_or(0);
    Ok(totp(secret, "")?
        .check(code, now)
        .and_then(|step| i64::try_from(step).ok()))
}

/// The code of `secret` at unix time `now`.
#[cfg(test)]
fn code_at(secret: &[u8], now: i64) -> Result<String> {
    let now = u64::try_from(now).unwrap_or(0);
    Ok(totp(secret, "")?.generate(now).to_string())
}

/// The code an authenticator app enrolled with the `otpauth://` URI `uri` shows at unix time
/// `now` (what tests and scripted logins of an operator's own account compute).
pub fn totp_code(uri: &str, now: i64) -> Result<String> {
    let now = u64::try_from(now).unwrap_or(0);
    Totp::from_url(uri)
        .map(|t| t.generate(now).to_string())
        .map_err(|_| VaultError::invalid("invalid_totp", "not an otpauth:// TOTP URI", None))
}

/// Ten fresh recovery codes, as shown (`xxxxx-xxxxx`) and as stored (SHA-256 of the compact
/// form).
pub(crate) fn recovery_codes() -> Result<(Vec<String>, Vec<[u8; 32]>)> {
    let mut shown = Vec::with_capacity(RECOVERY_CODES);
    let mut stored = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let raw = ward_crypto::random_bytes::<10>()?;
        // 32 letters: the low five bits of each byte are uniform.
        let compact: String = raw
            .iter()
            .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)]))
            .collect();
        stored.push(ward_crypto::sha256(compact.as_bytes()));
        shown.push(format!("{}-{}", &compact[..5], &compact[5..]));
    }
    Ok((shown, stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_test_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); 6 digits: 287082.
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59).expect("code"), "287082");
        assert_eq!(check(secret, "287082", 59).expect("check"), Some(1));
        // One step of drift either side is accepted, two are not.
        assert_eq!(check(secret, "287082", 89).expect("check"), Some(1));
        assert_eq!(check(secret, "287082", 120).expect("check"), None);
    }

    #[test]
    fn second_factors_parse_or_are_a_400() {
        assert!(matches!(
            SecondFactor::parse("123456"),
            Ok(SecondFactor::Code(_))
        ));
        assert!(matches!(
            SecondFactor::parse("abcde-fgh23"),
            Ok(SecondFactor::Recovery(_))
        ));
        for bad in [
            "12345",
            "1234567",
            "12a456",
            "",
            "abcde-fgh2",
            "abcde_fgh23",
        ] {
            assert!(SecondFactor::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_stored_hashed() {
        let (shown, stored) = recovery_codes().expect("codes");
        assert_eq!(shown.len(), 10);
        let mut set = shown.clone();
        set.sort();
        set.dedup();
        assert_eq!(set.len(), 10);
        for (s, h) in shown.iter().zip(&stored) {
            let SecondFactor::Recovery(c) = SecondFactor::parse(s).expect("parse") else {
                panic!("{s}")
            };
            assert_eq!(ward_crypto::sha256(c.as_bytes()), *h);
        }
    }
}

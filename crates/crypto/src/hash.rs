//! Keyed hashes: blind indexes and pseudonymous identifiers.

use std::fmt;

use aws_lc_rs::hmac;

use crate::SecretKey;
use crate::aad::part_len;

const BLIND_INDEX: &str = "ward/blind-index/v1";
const KEYED: &str = "ward/keyed/v1";

/// HMAC-SHA256 under a per-tenant derived key.
///
/// Why keyed: the values hashed here (e-mail addresses, IPs, external references) are
/// guessable, so a plain hash could be reversed by brute force; with a tenant-derived key
/// only the vault can compute them, and destroying the tenant key destroys their meaning.
///
/// Every input is framed as a domain label plus length-prefixed parts (the same framing as
/// [`crate::aad`]), so distinct inputs never collide by concatenation — `("ab", "c")` and
/// `("a", "bc")` hash differently — and blind indexes can never equal a [`Hasher::keyed`]
/// value.
#[derive(Clone)]
pub struct Hasher {
    key: hmac::Key,
}

impl Hasher {
    /// Prepares the HMAC key once, so each hash is just the message work.
    #[must_use]
    pub fn new(key: &SecretKey) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key.expose_secret()),
        }
    }

    /// Blind index of a field value: equal inputs give equal outputs, so the store can look
    /// records up by exact match without holding the value in clear. The caller normalizes
    /// the value (case, whitespace) first, because the index only matches identical bytes.
    #[must_use]
    pub fn blind_index(&self, collection: &str, field: &str, normalized_value: &str) -> [u8; 32] {
        self.mac(&[
            BLIND_INDEX.as_bytes(),
            collection.as_bytes(),
            field.as_bytes(),
            normalized_value.as_bytes(),
        ])
    }

    /// Keyed hash of `data` in a named `domain` (client IP hashes, external_ref hashes,
    /// HMAC anonymization). Different domains give unrelated outputs for the same data, so
    /// a value hashed for one purpose cannot be joined against another.
    #[must_use]
    pub fn keyed(&self, domain: &str, data: &[u8]) -> [u8; 32] {
        self.mac(&[KEYED.as_bytes(), domain.as_bytes(), data])
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in parts {
            ctx.update(&part_len(part));
            ctx.update(part);
        }
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hasher(<redacted>)")
    }
}

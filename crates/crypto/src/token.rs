//! Bearer tokens (operator bootstrap token, tenant API keys).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::{CryptoError, random_bytes, sha256};

/// Random bytes per token: 256 bits, so tokens cannot be guessed and a fast unsalted
/// SHA-256 is a sufficient way to store them.
const TOKEN_BYTES: usize = 32;

/// Length of the base64url (no padding) encoding of [`TOKEN_BYTES`].
const TOKEN_B64_LEN: usize = 43;

/// A freshly generated bearer token, `<prefix>_<43 chars base64url>`.
///
/// It is shown to its owner once and only its [`token_hash`] is stored. The readable
/// prefix (e.g. `ward_op`) lets people and secret scanners recognise a leaked token. The
/// string is wiped on drop; `Debug` shows only the prefix and there is no `Display`.
pub struct Token(Zeroizing<String>);

impl Token {
    /// Generates a token with the given prefix, e.g. `"ward_op"` →
    /// `"ward_op_<43 chars>"`.
    ///
    /// # Errors
    /// [`CryptoError::InvalidTokenPrefix`] unless the prefix is non-empty ASCII
    /// alphanumerics and `_`; [`CryptoError::Random`] if the RNG fails.
    pub fn generate(prefix: &str) -> Result<Self, CryptoError> {
        if prefix.is_empty()
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(CryptoError::InvalidTokenPrefix);
        }
        let raw = Zeroizing::new(random_bytes::<TOKEN_BYTES>()?);
        // Allocate the exact size up front so the string never reallocates and leaves an
        // unwiped copy behind.
        let mut s = Zeroizing::new(String::with_capacity(prefix.len() + 1 + TOKEN_B64_LEN));
        s.push_str(prefix);
        s.push('_');
        URL_SAFE_NO_PAD.encode_string(&raw[..], &mut s);
        Ok(Self(s))
    }

    /// The token text, to show once to its owner.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SHA-256 to store; same as [`token_hash`] of [`Token::as_str`].
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        token_hash(&self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The prefix is everything before the random part; it is not secret.
        let prefix = self
            .0
            .len()
            .checked_sub(TOKEN_B64_LEN + 1)
            .map_or("", |end| &self.0[..end]);
        write!(f, "Token({prefix}_<redacted>)")
    }
}

/// SHA-256 of a presented token, to look it up and compare (with [`crate::ct_eq`]) against
/// the stored hash. Unsalted and fast on purpose: tokens carry 256 bits of entropy, so
/// there is nothing to brute-force, and lookups must be cheap on every request.
#[must_use]
pub fn token_hash(token: &str) -> [u8; 32] {
    sha256(token.as_bytes())
}

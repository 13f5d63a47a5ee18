//! Free text a tenant types outside records (a request's `verified_by`, its notes and
//! rejection reason) may name people, so it is stored sealed under the tenant's free-text key
//! like a record, never in clear.
//!
//! The column keeps its text type: a sealed value is `ward-sealed:v1:` followed by the
//! base64url ciphertext, whose associated data binds tenant, row and column. A value without
//! the prefix was written in clear by a Ward before sealing existed: it is read as it is, and
//! [`crate::Vault::seal_legacy_free_text`] seals every such row at start-up.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;
use ward_crypto::aad;

use crate::keys::TenantKeys;
use crate::{Result, VaultError};

/// What every sealed value starts with; a value without it was written in clear.
pub(crate) const PREFIX: &str = "ward-sealed:v1:";

/// Seals `plain` for `column` of row `row` of `tenant`.
pub(crate) fn seal(
    tk: &TenantKeys,
    tenant: Uuid,
    row: Uuid,
    column: &str,
    plain: &str,
) -> Result<String> {
    let sealed = tk.free_text.seal(
        plain.as_bytes(),
        &aad::free_text(tenant.as_bytes(), row.as_bytes(), column),
    )?;
    Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed)))
}

/// The text of a stored value: opened when sealed, as it is when an older Ward wrote it in
/// clear. A sealed value that fails to open (edited, or moved from another row or column) is
/// an integrity error, never shown.
pub(crate) fn open(
    tk: &TenantKeys,
    tenant: Uuid,
    row: Uuid,
    column: &str,
    stored: &str,
) -> Result<String> {
    let Some(encoded) = stored.strip_prefix(PREFIX) else {
        return Ok(stored.to_owned());
    };
    let sealed = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| VaultError::Integrity)?;
    let plain = tk.free_text.open(
        &sealed,
        &aad::free_text(tenant.as_bytes(), row.as_bytes(), column),
    )?;
    String::from_utf8(plain.to_vec()).map_err(|_| VaultError::Integrity)
}

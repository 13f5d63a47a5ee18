//! Writes prepared against a key that a rotation replaced before they committed.
//!
//! Ward prepares a write (seals it under the tenant's or subject's current key) outside the
//! store's transaction and lets the store check, as it commits, that the key is still current
//! (`Conflict::KeyRotated`, `Conflict::SubjectKeyRotated`). A write that lost that race is prepared and
//! committed again under the new key; a rotation is rare and brief, so a few attempts end it,
//! and a write that still loses after them reports the conflict.

use std::future::Future;

use crate::error::Conflict;
use crate::{Result, VaultError};

/// Attempts after the first.
const RETRIES: u32 = 3;

/// Whether `e` is a write that lost to a tenant or subject key rotation (or, for reads a
/// write depends on, a record rotation).
pub(crate) fn lost_to_rotation(e: &VaultError) -> bool {
    matches!(
        e,
        VaultError::Conflict(
            Conflict::Store(
                ward_store::Conflict::KeyRotated | ward_store::Conflict::SubjectKeyRotated
            ) | Conflict::StaleKeyRead
        )
    )
}

/// Whether `e` is a new record that lost to a change of its subject or tenant it was prepared
/// without seeing: a rotation, a remembered subject gone stale, or a tenant cancelled between
/// the read and the commit. Prepared again, the write sees the change (and a cancelled
/// tenant's write is then refused, and audited, by the access decision).
pub(crate) fn lost_to_change(e: &VaultError) -> bool {
    lost_to_rotation(e)
        || matches!(
            e,
            VaultError::Conflict(
                Conflict::Store(ward_store::Conflict::TenantInactive) | Conflict::StaleSubject
            )
        )
}

/// Runs `attempt` until it succeeds, fails with an error `retry` does not accept, or has run
/// `1 + RETRIES` times; `before_retry` runs before each new attempt (to drop a cached row the
/// conflict showed stale).
pub(crate) async fn retrying<T, F, Fut>(
    retry: impl Fn(&VaultError) -> bool,
    mut before_retry: impl FnMut(),
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Err(e) if retries < RETRIES && retry(&e) => {
                before_retry();
                retries += 1;
            }
            other => return other,
        }
    }
}

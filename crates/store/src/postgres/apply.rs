//! Applying one `Op` of a request applied on its own (under its savepoint, or alone in its
//! batch): a small dispatch to one function per family of ops (`apply/*.rs`), and the checks
//! they share. An op that fails leaves its request's savepoint to roll back, so a family
//! function never cleans up after itself.

use super::*;

mod access;
mod audit;
mod holds;
mod key_jobs;
mod keys;
mod records;
mod requests;
mod retention;
mod subjects;
mod tenants;

pub(super) use self::keys::rewrap_tenant_keys;
pub(super) use self::records::delete_index;

pub(super) fn unique_to_conflict(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(Conflict::Exists(what))
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound(what),
        _ => StoreError::Database(e),
    }
}

/// Applies one change other than an audit event (those are staged by `apply_request`).
pub(super) async fn apply(conn: &mut PgConnection, op: Op) -> Result<()> {
    match op {
        Op::InsertTenant(_)
        | Op::SetTenantStatus { .. }
        | Op::PatchTenantSettings { .. }
        | Op::DestroyTenant { .. } => tenants::apply(conn, op).await,
        Op::InsertApiKey(_)
        | Op::RevokeApiKey { .. }
        | Op::InsertInvitation(_)
        | Op::ClaimInvitation { .. }
        | Op::AssertOwnerRemains { .. } => access::apply(conn, op).await,
        Op::InsertSubject(_)
        | Op::SetRestrictions { .. }
        | Op::SetSubjectHold { .. }
        | Op::EraseSubject { .. }
        | Op::InsertLedger(_) => subjects::apply(conn, op).await,
        Op::InsertRecord { .. }
        | Op::UpdateRecord { .. }
        | Op::DeleteRecords { .. }
        | Op::DeleteRecord { .. } => records::apply(conn, op).await,
        Op::AnonymizeRecord { .. } | Op::ShiftExpiry { .. } => retention::apply(conn, op).await,
        Op::InsertHold(_)
        | Op::InsertHeldRecord(_)
        | Op::DeleteHeldRecord { .. }
        | Op::ShredHold { .. } => holds::apply(conn, op).await,
        Op::InsertRequest(_) | Op::UpdateRequest { .. } | Op::SealRequestText { .. } => {
            requests::apply(conn, op).await
        }
        Op::RewrapTenant { .. }
        | Op::RotateSubjectKeys { .. }
        | Op::ReencryptRecords { .. }
        | Op::DestroyRetiredKeys { .. } => keys::apply(conn, op).await,
        Op::InsertKeyJob(_) | Op::AdvanceKeyJob { .. } | Op::FinishKeyJob { .. } => {
            key_jobs::apply(conn, op).await
        }
        Op::PruneAudit { .. } | Op::SaveCheckpoint(_) => audit::apply(conn, op).await,
        Op::Audit(_) | Op::RewrapTenantKeys { .. } => Err(StoreError::Corrupt(
            "audit events and key rewraps are applied by the request, not one by one".into(),
        )),
        Op::People(op) => people::apply(conn, op).await,
        Op::Alert(op) => alerts::apply(conn, &op).await,
        Op::Webhook(op) => webhooks::apply(conn, &op).await,
        Op::Incident(op) => incidents::apply(conn, &op).await,
    }
}

/// A record may only be written under its subject's current key version: a rotation that
/// replaced the key meanwhile may already have destroyed the old one. The share lock makes a
/// concurrent rotation of this subject wait for this transaction (and see its record).
pub(super) async fn assert_subject_key(
    conn: &mut PgConnection,
    tenant: Uuid,
    subject: Uuid,
    version: u32,
) -> Result<()> {
    let current: Option<i64> = sqlx::query_scalar(
        "SELECT version FROM subject_keys WHERE tenant = $1 AND subject = $2 FOR SHARE",
    )
    .bind(tenant.as_bytes().as_slice())
    .bind(subject.as_bytes().as_slice())
    .fetch_optional(&mut *conn)
    .await?;
    match current {
        None => Err(StoreError::NotFound("subject")),
        Some(v) if v == i64::from(version) => Ok(()),
        Some(_) => Err(StoreError::Conflict(Conflict::SubjectKeyRotated)),
    }
}

/// A new record may only be stored for an active tenant: the request that sealed it may have
/// read the tenant before a cancellation committed (the vault remembers subjects briefly, so
/// this check, not the read, is what keeps a cancelled tenant's data frozen).
pub(super) async fn assert_tenant_active(conn: &mut PgConnection, tenant: Uuid) -> Result<()> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM tenants WHERE id = $1")
        .bind(tenant.as_bytes().as_slice())
        .fetch_optional(&mut *conn)
        .await?;
    match status.as_deref() {
        None => Err(StoreError::NotFound("tenant")),
        Some(s) if s == TenantStatus::Active.as_str() => Ok(()),
        Some(_) => Err(StoreError::Conflict(Conflict::TenantInactive)),
    }
}

/// A key wrapped under tenant key `version` may only be stored while that is the tenant's
/// current version, or a rotation committed meanwhile would strand it. The share lock makes a
/// concurrent rotation wait for this transaction (and then rewrap what it wrote).
pub(super) async fn assert_tenant_key(
    conn: &mut PgConnection,
    tenant: Uuid,
    version: u32,
) -> Result<()> {
    let current: Option<i64> =
        sqlx::query_scalar("SELECT key_version FROM tenants WHERE id = $1 FOR SHARE")
            .bind(tenant.as_bytes().as_slice())
            .fetch_optional(&mut *conn)
            .await?;
    if current != Some(i64::from(version)) {
        return Err(StoreError::Conflict(Conflict::KeyRotated));
    }
    Ok(())
}

/// The error a family function returns for an op of another family: `apply` never routes one
/// there, so this is a bug in the dispatch, reported rather than panicking the writer.
pub(super) fn misrouted(family: &'static str) -> StoreError {
    StoreError::Corrupt(format!(
        "an op outside the {family} family was routed to it"
    ))
}

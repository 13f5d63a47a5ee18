//! Applying one `Op` inside the writer's transaction: a small dispatch to one function per
//! family of ops (`apply/*.rs`), and the statement helpers they share. Every op runs on the
//! write connection of the open group commit; an op that fails leaves its request's savepoint
//! to roll back, so a family function never cleans up after itself.

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

pub(super) fn unique_to_conflict(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| match e.sqlite_error().map(|f| f.extended_code) {
        Some(ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
            StoreError::Conflict(Conflict::Exists(what))
        }
        Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::NotFound(what),
        _ => StoreError::Sqlite(e),
    }
}

/// Runs a cached write statement and returns how many rows it changed.
pub(super) fn run<P: Params>(conn: &Connection, sql: &str, params: P) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Like [`run`], failing with `NotFound(what)` when no row changed.
pub(super) fn run_one<P: Params>(
    conn: &Connection,
    what: &'static str,
    sql: &str,
    params: P,
) -> Result<()> {
    if run(conn, sql, params)? == 0 {
        return Err(StoreError::NotFound(what));
    }
    Ok(())
}

/// The encoded form of a request's next audit event (encoded from the same ops, so present).
pub(super) fn next_event<'a>(events: &mut std::slice::Iter<'a, Encoded>) -> Result<&'a Encoded> {
    events
        .next()
        .ok_or_else(|| StoreError::Corrupt("audit event without its encoding".into()))
}

pub(super) fn apply(
    conn: &Connection,
    audit: &mut AuditState,
    committed: &mut Committed,
    op: &Op,
    events: &mut std::slice::Iter<'_, Encoded>,
) -> Result<()> {
    match op {
        Op::InsertTenant(_)
        | Op::SetTenantStatus { .. }
        | Op::PatchTenantSettings { .. }
        | Op::DestroyTenant { .. } => tenants::apply(conn, op),
        Op::InsertApiKey(_)
        | Op::RevokeApiKey { .. }
        | Op::InsertInvitation(_)
        | Op::ClaimInvitation { .. }
        | Op::AssertOwnerRemains { .. } => access::apply(conn, op),
        Op::InsertSubject(_)
        | Op::SetRestrictions { .. }
        | Op::SetSubjectHold { .. }
        | Op::EraseSubject { .. }
        | Op::InsertLedger(_) => subjects::apply(conn, op),
        Op::InsertRecord { .. }
        | Op::UpdateRecord { .. }
        | Op::DeleteRecords { .. }
        | Op::DeleteRecord { .. } => records::apply(conn, op),
        Op::AnonymizeRecord { .. } | Op::ShiftExpiry { .. } => retention::apply(conn, op),
        Op::InsertHold(_)
        | Op::InsertHeldRecord(_)
        | Op::DeleteHeldRecord { .. }
        | Op::ShredHold { .. } => holds::apply(conn, op),
        Op::InsertRequest(_) | Op::UpdateRequest { .. } | Op::SealRequestText { .. } => {
            requests::apply(conn, op)
        }
        Op::RewrapTenant { .. }
        | Op::RewrapTenantKeys { .. }
        | Op::RotateSubjectKeys { .. }
        | Op::ReencryptRecords { .. }
        | Op::DestroyRetiredKeys { .. } => keys::apply(conn, committed, op),
        Op::InsertKeyJob(_) | Op::AdvanceKeyJob { .. } | Op::FinishKeyJob { .. } => {
            key_jobs::apply(conn, op)
        }
        Op::Audit(_) | Op::PruneAudit { .. } | Op::SaveCheckpoint(_) => {
            audit::apply(conn, audit, committed, op, events)
        }
        Op::People(op) => people::apply(conn, op),
        Op::Alert(op) => alerts::apply(conn, op),
        Op::Webhook(op) => webhooks::apply(conn, op),
        Op::Incident(op) => incidents::apply(conn, op),
    }
}

/// A key wrapped under tenant key `version` may only be stored while that is the tenant's
/// current version, or a rotation committed meanwhile would strand it.
pub(super) fn assert_tenant_key(conn: &Connection, tenant: Uuid, version: u32) -> Result<()> {
    let current: Option<i64> = conn
        .prepare_cached("SELECT key_version FROM keys.tenant_keys WHERE tenant = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?;
    if current != Some(i64::from(version)) {
        return Err(StoreError::Conflict(Conflict::KeyRotated));
    }
    Ok(())
}

/// A record may only be written under its subject's current key version: a rotation that
/// replaced the key meanwhile may already have destroyed the old one.
pub(super) fn assert_subject_key(
    conn: &Connection,
    tenant: Uuid,
    subject: Uuid,
    version: u32,
) -> Result<()> {
    let current: Option<i64> = conn
        .prepare_cached("SELECT version FROM keys.subject_keys WHERE tenant = ?1 AND subject = ?2")?
        .query_row(params![tenant, subject], |r| r.get(0))
        .optional()?;
    match current {
        None => Err(StoreError::NotFound("subject")),
        Some(v) if v == i64::from(version) => Ok(()),
        Some(_) => Err(StoreError::Conflict(Conflict::SubjectKeyRotated)),
    }
}

/// A new record may only be stored for an active tenant: the request that sealed it may have
/// read the tenant before a cancellation committed (the vault remembers subjects briefly, so
/// this check, not the read, is what keeps a cancelled tenant's data frozen).
pub(super) fn assert_tenant_active(conn: &Connection, tenant: Uuid) -> Result<()> {
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM tenants WHERE id = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?;
    match status.as_deref() {
        None => Err(StoreError::NotFound("tenant")),
        Some(s) if s == TenantStatus::Active.as_str() => Ok(()),
        Some(_) => Err(StoreError::Conflict(Conflict::TenantInactive)),
    }
}

/// The error a family function returns for an op of another family: `apply` never routes one
/// there, so this is a bug in the dispatch, reported rather than panicking the writer.
pub(super) fn misrouted(family: &'static str) -> StoreError {
    StoreError::Corrupt(format!(
        "an op outside the {family} family was routed to it"
    ))
}

//! People on SQLite: users, recovery codes, sessions and support grants.

use rusqlite::{Connection, params};
use uuid::Uuid;

use super::apply::misrouted;
use super::{all, first, run, run_one};
use crate::decode::{grant_from, membership_from, session_from, user_from};
use crate::people::{MembershipRow, PeopleOp, SessionRow, SupportGrantRow, UserRow};
use crate::sql::{GRANT_COLUMNS, MEMBERSHIP_COLUMNS, SESSION_COLUMNS, USER_COLUMNS};
use crate::{Result, StoreError, to_micros};

/// Applies one change to people inside the writer's transaction.
pub(super) fn apply(conn: &Connection, op: &PeopleOp) -> Result<()> {
    match op {
        PeopleOp::InsertUser { .. }
        | PeopleOp::SetPassword { .. }
        | PeopleOp::SetResetToken { .. }
        | PeopleOp::UseResetToken { .. }
        | PeopleOp::SetUserDisabled { .. } => apply_users(conn, op),
        PeopleOp::AcceptTotpStep { .. }
        | PeopleOp::EnrolTotp { .. }
        | PeopleOp::UseRecoveryCode { .. } => apply_second_factor(conn, op),
        PeopleOp::InsertSession(_)
        | PeopleOp::TouchSession { .. }
        | PeopleOp::RevokeSession { .. }
        | PeopleOp::RevokeUserSessions { .. } => apply_sessions(conn, op),
        PeopleOp::InsertMembership(_)
        | PeopleOp::SetMembershipRole { .. }
        | PeopleOp::DeleteMembership { .. } => apply_memberships(conn, op),
        PeopleOp::InsertGrant(_) | PeopleOp::DecideGrant { .. } => apply_grants(conn, op),
    }
}

/// Applies one op on users: creating one, its password and reset token, disabling it; `apply`
/// routes only those here.
fn apply_users(conn: &Connection, op: &PeopleOp) -> Result<()> {
    match op {
        PeopleOp::InsertUser {
            user: u,
            recovery_codes,
        } => {
            run(
                conn,
                "INSERT INTO users (id, email_hash, email_sealed, role, tenant, password_hash, \
                 totp_sealed, totp_last_step, key_version, reset_hash, reset_expires_at, \
                 created_at, password_changed_at, disabled_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    u.id,
                    u.email_hash,
                    u.email_sealed,
                    u.role,
                    u.tenant,
                    u.password_hash,
                    u.totp_sealed,
                    u.totp_last_step,
                    i64::from(u.key_version),
                    u.reset_hash,
                    u.reset_expires_at.map(to_micros),
                    to_micros(u.created_at),
                    to_micros(u.password_changed_at),
                    u.disabled_at.map(to_micros),
                ],
            )
            .map_err(super::unique_to_conflict("user"))?;
            for code in recovery_codes {
                run(
                    conn,
                    "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
                    params![u.id, code],
                )
                .map_err(super::unique_to_conflict("recovery code"))?;
            }
        }
        PeopleOp::SetPassword {
            user,
            password_hash,
            at,
        } => run_one(
            conn,
            "user",
            "UPDATE users SET password_hash = ?1, password_changed_at = ?2, reset_hash = NULL, \
             reset_expires_at = NULL WHERE id = ?3",
            params![password_hash, to_micros(*at), user],
        )?,
        PeopleOp::SetResetToken {
            user,
            hash,
            expires_at,
        } => run_one(
            conn,
            "user",
            "UPDATE users SET reset_hash = ?1, reset_expires_at = ?2 WHERE id = ?3",
            params![hash, to_micros(*expires_at), user],
        )?,
        PeopleOp::UseResetToken { user, hash, at } => run_one(
            conn,
            "reset token",
            "UPDATE users SET reset_hash = NULL, reset_expires_at = NULL \
             WHERE id = ?1 AND reset_hash = ?2 AND reset_expires_at > ?3",
            params![user, hash, to_micros(*at)],
        )?,
        PeopleOp::SetUserDisabled { user, at } => run_one(
            conn,
            "user",
            "UPDATE users SET disabled_at = ?1 WHERE id = ?2",
            params![at.map(to_micros), user],
        )?,
        _ => return Err(misrouted("users")),
    }
    Ok(())
}

/// Applies one op on the second factor: TOTP enrolment and steps, recovery codes; `apply` routes
/// only those here.
fn apply_second_factor(conn: &Connection, op: &PeopleOp) -> Result<()> {
    match op {
        PeopleOp::AcceptTotpStep { user, step } => run_one(
            conn,
            "totp step",
            "UPDATE users SET totp_last_step = ?1 \
             WHERE id = ?2 AND (totp_last_step IS NULL OR totp_last_step < ?1)",
            params![step, user],
        )?,
        PeopleOp::EnrolTotp {
            user,
            totp_sealed,
            step,
            recovery_codes,
        } => {
            run_one(
                conn,
                "totp enrolment",
                "UPDATE users SET totp_sealed = ?1, totp_last_step = ?2 \
                 WHERE id = ?3 AND totp_sealed IS NULL",
                params![totp_sealed, step, user],
            )?;
            run(
                conn,
                "DELETE FROM recovery_codes WHERE user_id = ?1",
                params![user],
            )?;
            for code in recovery_codes {
                run(
                    conn,
                    "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
                    params![user, code],
                )
                .map_err(super::unique_to_conflict("recovery code"))?;
            }
        }
        PeopleOp::UseRecoveryCode { user, hash, at } => run_one(
            conn,
            "recovery code",
            "UPDATE recovery_codes SET used_at = ?1 \
             WHERE user_id = ?2 AND code_hash = ?3 AND used_at IS NULL",
            params![to_micros(*at), user, hash],
        )?,
        _ => return Err(misrouted("second factor")),
    }
    Ok(())
}

/// Applies one op on sessions: signing in, activity, revocation; `apply` routes only those here.
fn apply_sessions(conn: &Connection, op: &PeopleOp) -> Result<()> {
    match op {
        PeopleOp::InsertSession(s) => {
            run(
                conn,
                "INSERT INTO sessions (id, token_hash, user_id, csrf_hash, created_at, \
                 last_seen_at, expires_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    s.id,
                    s.token_hash,
                    s.user,
                    s.csrf_hash,
                    to_micros(s.created_at),
                    to_micros(s.last_seen_at),
                    to_micros(s.expires_at),
                    s.revoked_at.map(to_micros),
                ],
            )
            .map_err(super::unique_to_conflict("session"))?;
        }
        PeopleOp::TouchSession { id, at } => {
            run(
                conn,
                "UPDATE sessions SET last_seen_at = ?1 WHERE id = ?2 AND last_seen_at < ?1",
                params![to_micros(*at), id],
            )?;
        }
        PeopleOp::RevokeSession { user, id, at } => run_one(
            conn,
            "session",
            "UPDATE sessions SET revoked_at = ?1 \
             WHERE id = ?2 AND user_id = ?3 AND revoked_at IS NULL",
            params![to_micros(*at), id, user],
        )?,
        PeopleOp::RevokeUserSessions { user, at } => {
            run(
                conn,
                "UPDATE sessions SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL",
                params![to_micros(*at), user],
            )?;
        }
        _ => return Err(misrouted("sessions")),
    }
    Ok(())
}

/// Applies one op on memberships: a user's role and purposes in a tenant; `apply` routes only those
/// here.
fn apply_memberships(conn: &Connection, op: &PeopleOp) -> Result<()> {
    match op {
        PeopleOp::InsertMembership(m) => {
            run(
                conn,
                "INSERT INTO memberships (user_id, tenant, role, purposes, expires_at, \
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    m.user,
                    m.tenant,
                    m.role,
                    m.purposes,
                    m.expires_at.map(to_micros),
                    to_micros(m.created_at),
                ],
            )
            .map_err(super::unique_to_conflict("membership"))?;
        }
        PeopleOp::SetMembershipRole {
            tenant,
            user,
            role,
            purposes,
        } => run_one(
            conn,
            "membership",
            "UPDATE memberships SET role = ?1, purposes = ?2 WHERE tenant = ?3 AND user_id = ?4",
            params![role, purposes, tenant, user],
        )?,
        PeopleOp::DeleteMembership { tenant, user } => run_one(
            conn,
            "membership",
            "DELETE FROM memberships WHERE tenant = ?1 AND user_id = ?2",
            params![tenant, user],
        )?,
        _ => return Err(misrouted("memberships")),
    }
    Ok(())
}

/// Applies one op on support grants: a request for access and its decision; `apply` routes only
/// those here.
fn apply_grants(conn: &Connection, op: &PeopleOp) -> Result<()> {
    match op {
        PeopleOp::InsertGrant(g) => {
            run(
                conn,
                "INSERT INTO support_grants (id, tenant, requester, ticket, justification, \
                 collections, actions, break_glass, status, duration_secs, requested_at, \
                 decided_at, decided_by, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    g.id,
                    g.tenant,
                    g.requester,
                    g.ticket,
                    g.justification,
                    g.collections,
                    g.actions,
                    g.break_glass,
                    g.status,
                    g.duration_secs,
                    to_micros(g.requested_at),
                    g.decided_at.map(to_micros),
                    g.decided_by,
                    g.expires_at.map(to_micros),
                ],
            )
            .map_err(super::unique_to_conflict("support grant"))?;
        }
        PeopleOp::DecideGrant {
            tenant,
            id,
            from,
            to,
            by,
            at,
            expires_at,
        } => run_one(
            conn,
            "support grant",
            "UPDATE support_grants SET status = ?1, decided_at = ?2, decided_by = ?3, \
             expires_at = COALESCE(?4, expires_at) \
             WHERE id = ?5 AND tenant = ?6 AND status = ?7",
            params![
                to,
                to_micros(*at),
                by,
                expires_at.map(to_micros),
                id,
                tenant,
                from
            ],
        )?,
        _ => return Err(misrouted("grants")),
    }
    Ok(())
}

pub(super) fn user_by_email_hash(c: &Connection, hash: &[u8; 32]) -> Result<Option<UserRow>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email_hash = ?1");
    first(c, &sql, [hash], |r| user_from(r))
}

pub(super) fn user(c: &Connection, id: Uuid) -> Result<Option<UserRow>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
    first(c, &sql, [id], |r| user_from(r))
}

pub(super) fn users(c: &Connection) -> Result<Vec<UserRow>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
    all(c, &sql, [], |r| user_from(r))
}

pub(super) fn unused_recovery_codes(c: &Connection, user: Uuid) -> Result<u32> {
    let n: i64 = c
        .prepare_cached(
            "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
        )?
        .query_row([user], |r| r.get(0))?;
    u32::try_from(n).map_err(|_| StoreError::Corrupt("recovery code count".into()))
}

pub(super) fn session_by_hash(c: &Connection, hash: &[u8; 32]) -> Result<Option<SessionRow>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1");
    first(c, &sql, [hash], |r| session_from(r))
}

pub(super) fn sessions_of(c: &Connection, user: Uuid) -> Result<Vec<SessionRow>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 ORDER BY id");
    all(c, &sql, [user], |r| session_from(r))
}

pub(super) fn support_grant(
    c: &Connection,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<SupportGrantRow>> {
    let sql = format!("SELECT {GRANT_COLUMNS} FROM support_grants WHERE id = ?1 AND tenant = ?2");
    first(c, &sql, [id, tenant], |r| grant_from(r))
}

pub(super) fn support_grants(c: &Connection, tenant: Uuid) -> Result<Vec<SupportGrantRow>> {
    let sql = format!("SELECT {GRANT_COLUMNS} FROM support_grants WHERE tenant = ?1 ORDER BY id");
    all(c, &sql, [tenant], |r| grant_from(r))
}

pub(super) fn open_grants_of(c: &Connection, user: Uuid) -> Result<Vec<SupportGrantRow>> {
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM support_grants \
         WHERE requester = ?1 AND status = 'approved' ORDER BY id"
    );
    all(c, &sql, [user], |r| grant_from(r))
}

pub(super) fn memberships_of(c: &Connection, user: Uuid) -> Result<Vec<MembershipRow>> {
    let sql =
        format!("SELECT {MEMBERSHIP_COLUMNS} FROM memberships WHERE user_id = ?1 ORDER BY tenant");
    all(c, &sql, [user], |r| membership_from(r))
}

pub(super) fn memberships(c: &Connection, tenant: Uuid) -> Result<Vec<MembershipRow>> {
    let sql =
        format!("SELECT {MEMBERSHIP_COLUMNS} FROM memberships WHERE tenant = ?1 ORDER BY user_id");
    all(c, &sql, [tenant], |r| membership_from(r))
}

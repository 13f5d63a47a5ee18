//! People on PostgreSQL: users, recovery codes, sessions and support grants.

use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

use super::apply::misrouted;
use super::unique_to_conflict;
use crate::decode::{grant_from, membership_from, session_from, user_from};
use crate::people::{MembershipRow, PeopleOp, SessionRow, SupportGrantRow, UserRow};
use crate::sql::{GRANT_COLUMNS, MEMBERSHIP_COLUMNS, SESSION_COLUMNS, USER_COLUMNS};
use crate::{Result, StoreError, to_micros};

fn b(u: &Uuid) -> &[u8] {
    u.as_bytes().as_slice()
}

/// Fails with `NotFound(what)` when the statement changed no row.
fn one(done: sqlx::postgres::PgQueryResult, what: &'static str) -> Result<()> {
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(what));
    }
    Ok(())
}

/// Applies one change to people inside the writer's transaction.
pub(super) async fn apply(conn: &mut PgConnection, op: PeopleOp) -> Result<()> {
    match op {
        PeopleOp::InsertUser { .. }
        | PeopleOp::SetPassword { .. }
        | PeopleOp::SetResetToken { .. }
        | PeopleOp::UseResetToken { .. }
        | PeopleOp::SetUserDisabled { .. } => apply_users(conn, op).await,
        PeopleOp::AcceptTotpStep { .. }
        | PeopleOp::EnrolTotp { .. }
        | PeopleOp::UseRecoveryCode { .. } => apply_second_factor(conn, op).await,
        PeopleOp::InsertSession(_)
        | PeopleOp::TouchSession { .. }
        | PeopleOp::RevokeSession { .. }
        | PeopleOp::RevokeUserSessions { .. } => apply_sessions(conn, op).await,
        PeopleOp::InsertMembership(_)
        | PeopleOp::SetMembershipRole { .. }
        | PeopleOp::DeleteMembership { .. } => apply_memberships(conn, op).await,
        PeopleOp::InsertGrant(_) | PeopleOp::DecideGrant { .. } => apply_grants(conn, op).await,
    }
}

/// Applies one op on users: creating one, its password and reset token, disabling it; `apply`
/// routes only those here.
async fn apply_users(conn: &mut PgConnection, op: PeopleOp) -> Result<()> {
    match op {
        PeopleOp::InsertUser {
            user: u,
            recovery_codes,
        } => {
            sqlx::query(
                "INSERT INTO users (id, email_hash, email_sealed, role, tenant, password_hash, \
                 totp_sealed, totp_last_step, key_version, reset_hash, reset_expires_at, \
                 created_at, password_changed_at, disabled_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(b(&u.id))
            .bind(u.email_hash.as_slice())
            .bind(&u.email_sealed)
            .bind(&u.role)
            .bind(u.tenant.as_ref().map(b))
            .bind(&u.password_hash)
            .bind(&u.totp_sealed)
            .bind(u.totp_last_step)
            .bind(i64::from(u.key_version))
            .bind(u.reset_hash.as_ref().map(|h| h.as_slice()))
            .bind(u.reset_expires_at.map(to_micros))
            .bind(to_micros(u.created_at))
            .bind(to_micros(u.password_changed_at))
            .bind(u.disabled_at.map(to_micros))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("user"))?;
            for code in &recovery_codes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(b(&u.id))
                    .bind(code.as_slice())
                    .execute(&mut *conn)
                    .await
                    .map_err(unique_to_conflict("recovery code"))?;
            }
        }
        PeopleOp::SetPassword {
            user,
            password_hash,
            at,
        } => one(
            sqlx::query(
                "UPDATE users SET password_hash = $1, password_changed_at = $2, \
                 reset_hash = NULL, reset_expires_at = NULL WHERE id = $3",
            )
            .bind(&password_hash)
            .bind(to_micros(at))
            .bind(b(&user))
            .execute(&mut *conn)
            .await?,
            "user",
        )?,
        PeopleOp::SetResetToken {
            user,
            hash,
            expires_at,
        } => one(
            sqlx::query("UPDATE users SET reset_hash = $1, reset_expires_at = $2 WHERE id = $3")
                .bind(hash.as_slice())
                .bind(to_micros(expires_at))
                .bind(b(&user))
                .execute(&mut *conn)
                .await?,
            "user",
        )?,
        PeopleOp::UseResetToken { user, hash, at } => one(
            sqlx::query(
                "UPDATE users SET reset_hash = NULL, reset_expires_at = NULL \
                 WHERE id = $1 AND reset_hash = $2 AND reset_expires_at > $3",
            )
            .bind(b(&user))
            .bind(hash.as_slice())
            .bind(to_micros(at))
            .execute(&mut *conn)
            .await?,
            "reset token",
        )?,
        PeopleOp::SetUserDisabled { user, at } => one(
            sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2")
                .bind(at.map(to_micros))
                .bind(b(&user))
                .execute(&mut *conn)
                .await?,
            "user",
        )?,
        _ => return Err(misrouted("users")),
    }
    Ok(())
}

/// Applies one op on the second factor: TOTP enrolment and steps, recovery codes; `apply` routes
/// only those here.
async fn apply_second_factor(conn: &mut PgConnection, op: PeopleOp) -> Result<()> {
    match op {
        PeopleOp::AcceptTotpStep { user, step } => one(
            // The row lock makes a concurrent acceptance of the same step wait and then fail.
            sqlx::query(
                "UPDATE users SET totp_last_step = $1 \
                 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
            )
            .bind(step)
            .bind(b(&user))
            .execute(&mut *conn)
            .await?,
            "totp step",
        )?,
        PeopleOp::EnrolTotp {
            user,
            totp_sealed,
            step,
            recovery_codes,
        } => {
            one(
                sqlx::query(
                    "UPDATE users SET totp_sealed = $1, totp_last_step = $2 \
                     WHERE id = $3 AND totp_sealed IS NULL",
                )
                .bind(&totp_sealed)
                .bind(step)
                .bind(b(&user))
                .execute(&mut *conn)
                .await?,
                "totp enrolment",
            )?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(b(&user))
                .execute(&mut *conn)
                .await?;
            for code in &recovery_codes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(b(&user))
                    .bind(code.as_slice())
                    .execute(&mut *conn)
                    .await
                    .map_err(unique_to_conflict("recovery code"))?;
            }
        }
        PeopleOp::UseRecoveryCode { user, hash, at } => one(
            sqlx::query(
                "UPDATE recovery_codes SET used_at = $1 \
                 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
            )
            .bind(to_micros(at))
            .bind(b(&user))
            .bind(hash.as_slice())
            .execute(&mut *conn)
            .await?,
            "recovery code",
        )?,
        _ => return Err(misrouted("second factor")),
    }
    Ok(())
}

/// Applies one op on sessions: signing in, activity, revocation; `apply` routes only those here.
async fn apply_sessions(conn: &mut PgConnection, op: PeopleOp) -> Result<()> {
    match op {
        PeopleOp::InsertSession(s) => {
            sqlx::query(
                "INSERT INTO sessions (id, token_hash, user_id, csrf_hash, created_at, \
                 last_seen_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(b(&s.id))
            .bind(s.token_hash.as_slice())
            .bind(b(&s.user))
            .bind(s.csrf_hash.as_slice())
            .bind(to_micros(s.created_at))
            .bind(to_micros(s.last_seen_at))
            .bind(to_micros(s.expires_at))
            .bind(s.revoked_at.map(to_micros))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("session"))?;
        }
        PeopleOp::TouchSession { id, at } => {
            sqlx::query(
                "UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1",
            )
            .bind(to_micros(at))
            .bind(b(&id))
            .execute(&mut *conn)
            .await?;
        }
        PeopleOp::RevokeSession { user, id, at } => one(
            sqlx::query(
                "UPDATE sessions SET revoked_at = $1 \
                 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
            )
            .bind(to_micros(at))
            .bind(b(&id))
            .bind(b(&user))
            .execute(&mut *conn)
            .await?,
            "session",
        )?,
        PeopleOp::RevokeUserSessions { user, at } => {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(to_micros(at))
            .bind(b(&user))
            .execute(&mut *conn)
            .await?;
        }
        _ => return Err(misrouted("sessions")),
    }
    Ok(())
}

/// Applies one op on memberships: a user's role and purposes in a tenant; `apply` routes only those
/// here.
async fn apply_memberships(conn: &mut PgConnection, op: PeopleOp) -> Result<()> {
    match op {
        PeopleOp::InsertMembership(m) => {
            sqlx::query(
                "INSERT INTO memberships (user_id, tenant, role, purposes, expires_at, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(b(&m.user))
            .bind(b(&m.tenant))
            .bind(&m.role)
            .bind(&m.purposes)
            .bind(m.expires_at.map(to_micros))
            .bind(to_micros(m.created_at))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("membership"))?;
        }
        PeopleOp::SetMembershipRole {
            tenant,
            user,
            role,
            purposes,
        } => one(
            sqlx::query(
                "UPDATE memberships SET role = $1, purposes = $2 \
                 WHERE tenant = $3 AND user_id = $4",
            )
            .bind(&role)
            .bind(&purposes)
            .bind(b(&tenant))
            .bind(b(&user))
            .execute(&mut *conn)
            .await?,
            "membership",
        )?,
        PeopleOp::DeleteMembership { tenant, user } => one(
            sqlx::query("DELETE FROM memberships WHERE tenant = $1 AND user_id = $2")
                .bind(b(&tenant))
                .bind(b(&user))
                .execute(&mut *conn)
                .await?,
            "membership",
        )?,
        _ => return Err(misrouted("memberships")),
    }
    Ok(())
}

/// Applies one op on support grants: a request for access and its decision; `apply` routes only
/// those here.
async fn apply_grants(conn: &mut PgConnection, op: PeopleOp) -> Result<()> {
    match op {
        PeopleOp::InsertGrant(g) => {
            sqlx::query(
                "INSERT INTO support_grants (id, tenant, requester, ticket, justification, \
                 collections, actions, break_glass, status, duration_secs, requested_at, \
                 decided_at, decided_by, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(b(&g.id))
            .bind(b(&g.tenant))
            .bind(b(&g.requester))
            .bind(&g.ticket)
            .bind(&g.justification)
            .bind(&g.collections)
            .bind(&g.actions)
            .bind(g.break_glass)
            .bind(&g.status)
            .bind(g.duration_secs)
            .bind(to_micros(g.requested_at))
            .bind(g.decided_at.map(to_micros))
            .bind(&g.decided_by)
            .bind(g.expires_at.map(to_micros))
            .execute(&mut *conn)
            .await
            .map_err(unique_to_conflict("support grant"))?;
        }
        PeopleOp::DecideGrant {
            tenant,
            id,
            from,
            to,
            by,
            at,
            expires_at,
        } => one(
            sqlx::query(
                "UPDATE support_grants SET status = $1, decided_at = $2, decided_by = $3, \
                 expires_at = COALESCE($4, expires_at) \
                 WHERE id = $5 AND tenant = $6 AND status = $7",
            )
            .bind(&to)
            .bind(to_micros(at))
            .bind(&by)
            .bind(expires_at.map(to_micros))
            .bind(b(&id))
            .bind(b(&tenant))
            .bind(&from)
            .execute(&mut *conn)
            .await?,
            "support grant",
        )?,
        _ => return Err(misrouted("grants")),
    }
    Ok(())
}

pub(super) async fn user_by_email_hash(pool: &PgPool, hash: &[u8; 32]) -> Result<Option<UserRow>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email_hash = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(hash.as_slice())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(user_from).transpose()
}

pub(super) async fn user(pool: &PgPool, id: Uuid) -> Result<Option<UserRow>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(b(&id))
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(user_from).transpose()
}

pub(super) async fn users(pool: &PgPool) -> Result<Vec<UserRow>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await?;
    rows.iter().map(user_from).collect()
}

pub(super) async fn unused_recovery_codes(pool: &PgPool, user: Uuid) -> Result<u32> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
    )
    .bind(b(&user))
    .fetch_one(pool)
    .await?;
    u32::try_from(n).map_err(|_| StoreError::Corrupt("recovery code count".into()))
}

pub(super) async fn session_by_hash(pool: &PgPool, hash: &[u8; 32]) -> Result<Option<SessionRow>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(hash.as_slice())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(session_from).transpose()
}

pub(super) async fn sessions_of(pool: &PgPool, user: Uuid) -> Result<Vec<SessionRow>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 ORDER BY id");
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(b(&user))
        .fetch_all(pool)
        .await?;
    rows.iter().map(session_from).collect()
}

pub(super) async fn support_grant(
    pool: &PgPool,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<SupportGrantRow>> {
    let sql = format!("SELECT {GRANT_COLUMNS} FROM support_grants WHERE id = $1 AND tenant = $2");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(b(&id))
        .bind(b(&tenant))
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(grant_from).transpose()
}

pub(super) async fn support_grants(pool: &PgPool, tenant: Uuid) -> Result<Vec<SupportGrantRow>> {
    let sql = format!("SELECT {GRANT_COLUMNS} FROM support_grants WHERE tenant = $1 ORDER BY id");
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(b(&tenant))
        .fetch_all(pool)
        .await?;
    rows.iter().map(grant_from).collect()
}

pub(super) async fn open_grants_of(pool: &PgPool, user: Uuid) -> Result<Vec<SupportGrantRow>> {
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM support_grants \
         WHERE requester = $1 AND status = 'approved' ORDER BY id"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(b(&user))
        .fetch_all(pool)
        .await?;
    rows.iter().map(grant_from).collect()
}

pub(super) async fn memberships_of(pool: &PgPool, user: Uuid) -> Result<Vec<MembershipRow>> {
    let sql =
        format!("SELECT {MEMBERSHIP_COLUMNS} FROM memberships WHERE user_id = $1 ORDER BY tenant");
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(b(&user))
        .fetch_all(pool)
        .await?;
    rows.iter().map(membership_from).collect()
}

pub(super) async fn memberships(pool: &PgPool, tenant: Uuid) -> Result<Vec<MembershipRow>> {
    let sql =
        format!("SELECT {MEMBERSHIP_COLUMNS} FROM memberships WHERE tenant = $1 ORDER BY user_id");
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(b(&tenant))
        .fetch_all(pool)
        .await?;
    rows.iter().map(membership_from).collect()
}

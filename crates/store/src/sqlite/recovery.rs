//! Start-up repair of writes that reached one of the two database files and not the other.
//!
//! The key store is a second file attached to every connection. In WAL mode SQLite makes a
//! transaction that writes both files atomic in each file but not across them: it commits the
//! data file first, then the key store, and a crash between the two (power loss, SIGKILL)
//! keeps the data file's half without the key store's. A request is answered only after both
//! commits, so nothing acknowledged is affected; but a request in flight at the crash can be
//! left half-applied, which Ward promises never happens. Found by the kill -9 harness
//! (`cli/tests/crash.rs`): a subject row and its `subject_create` event without the subject
//! key, so the subject looked erased although nobody erased it.
//!
//! At open, before the writer serves anything, each half-applied change is finished or undone,
//! whichever the durable half allows:
//! - changes that remove keys (erasure, tenant destruction) are finished: the data file
//!   holds the erasure ledger or the destroyed tenant, so the keys they name are deleted;
//! - keys nothing refers to any more (a subject or tenant row that never became durable) are
//!   deleted;
//! - changes that add keys (a tenant's or subject's creation) whose key was lost cannot be
//!   finished, the key being random: the rows are removed and a `crash_recovery` audit event
//!   in the tenant's log says which creation was rolled back, so the log stays true;
//! - a tenant key rotation whose new key was lost keeps the key store's version, with an
//!   audit event saying so.
//!
//! Each repair writes one file, so each is atomic; all are idempotent, so a crash during
//! recovery is repaired by the next start.

use rusqlite::{Connection, params};
use uuid::Uuid;
use ward_audit::{Action, Actor, AuditEvent, Outcome};

use super::{AUDIT_INSERT, AuditState, Encoded, PendingAudit, run};
use crate::Result;

/// Keys whose owner the data file says is gone, or never became durable.
const KEY_CLEANUP: &[&str] = &[
    // Erasures whose key deletion was lost.
    "DELETE FROM keys.subject_keys AS k WHERE EXISTS (SELECT 1 FROM erasure_ledger l \
     WHERE l.tenant = k.tenant AND l.subject = k.subject)",
    "DELETE FROM keys.retired_subject_keys AS k WHERE EXISTS (SELECT 1 FROM erasure_ledger l \
     WHERE l.tenant = k.tenant AND l.subject = k.subject)",
    // Keys of destroyed tenants, and keys whose subject, hold or tenant row is absent.
    "DELETE FROM keys.subject_keys AS k WHERE NOT EXISTS (SELECT 1 FROM subjects s \
     JOIN tenants t ON t.id = s.tenant \
     WHERE s.tenant = k.tenant AND s.id = k.subject AND t.status <> 'destroyed')",
    "DELETE FROM keys.retired_subject_keys AS k WHERE NOT EXISTS (SELECT 1 FROM subjects s \
     JOIN tenants t ON t.id = s.tenant \
     WHERE s.tenant = k.tenant AND s.id = k.subject AND t.status <> 'destroyed')",
    "DELETE FROM keys.hold_keys AS k WHERE NOT EXISTS (SELECT 1 FROM holds h \
     JOIN tenants t ON t.id = h.tenant \
     WHERE h.tenant = k.tenant AND h.id = k.hold AND t.status <> 'destroyed')",
    "DELETE FROM keys.tenant_keys AS k WHERE NOT EXISTS (SELECT 1 FROM tenants t \
     WHERE t.id = k.tenant AND t.status <> 'destroyed')",
];

/// What the repair changed, for the start-up log.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Repairs {
    /// Keys deleted because their erasure, destruction or owner said so.
    pub(super) keys_deleted: usize,
    /// Tenants whose creation was rolled back.
    pub(super) tenants_rolled_back: usize,
    /// Subjects whose creation was rolled back.
    pub(super) subjects_rolled_back: usize,
    /// Tenants whose key version was reset to the key store's.
    pub(super) rotations_rolled_back: usize,
}

impl Repairs {
    pub(super) fn any(&self) -> bool {
        *self != Self::default()
    }
}

/// Repairs half-applied writes; see the module documentation.
pub(super) fn repair(conn: &mut Connection, audit: &mut AuditState) -> Result<Repairs> {
    let mut repairs = Repairs::default();

    // The data file first: a creation whose key was lost is undone before the key cleanup
    // below could mistake anything for an orphan.
    let tx = conn.transaction()?;
    let mut events = Vec::new();
    let lost_tenants: Vec<Uuid> = column(
        &tx,
        "SELECT id FROM tenants t WHERE t.status <> 'destroyed' AND NOT EXISTS \
         (SELECT 1 FROM keys.tenant_keys k WHERE k.tenant = t.id)",
    )?;
    for tenant in lost_tenants {
        for sql in [
            "DELETE FROM blind_index WHERE tenant = ?1",
            "DELETE FROM records WHERE tenant = ?1",
            "DELETE FROM subjects WHERE tenant = ?1",
            "DELETE FROM invitations WHERE tenant = ?1",
            "DELETE FROM api_keys WHERE tenant = ?1",
            "DELETE FROM tenants WHERE id = ?1",
        ] {
            run(&tx, sql, [tenant])?;
        }
        events.push(event(tenant, None, "tenant_create"));
        repairs.tenants_rolled_back += 1;
    }
    let lost_subjects: Vec<(Uuid, Uuid)> = pairs(
        &tx,
        "SELECT s.tenant, s.id FROM subjects s JOIN tenants t ON t.id = s.tenant \
         WHERE t.status <> 'destroyed' \
         AND NOT EXISTS (SELECT 1 FROM keys.subject_keys k WHERE k.tenant = s.tenant AND k.subject = s.id) \
         AND NOT EXISTS (SELECT 1 FROM erasure_ledger l WHERE l.tenant = s.tenant AND l.subject = s.id)",
    )?;
    for (tenant, subject) in lost_subjects {
        for sql in [
            "DELETE FROM blind_index WHERE tenant = ?1 AND subject = ?2",
            "DELETE FROM records WHERE tenant = ?1 AND subject = ?2",
            "DELETE FROM subjects WHERE tenant = ?1 AND id = ?2",
        ] {
            run(&tx, sql, params![tenant, subject])?;
        }
        events.push(event(tenant, Some(subject), "subject_create"));
        repairs.subjects_rolled_back += 1;
    }
    let stale_rotations: Vec<Uuid> = column(
        &tx,
        "SELECT t.id FROM tenants t JOIN keys.tenant_keys k ON k.tenant = t.id \
         WHERE t.key_version <> k.key_version OR t.root_key_version <> k.root_key_version",
    )?;
    for tenant in stale_rotations {
        run(
            &tx,
            "UPDATE tenants SET key_version = (SELECT key_version FROM keys.tenant_keys \
             WHERE tenant = ?1), root_key_version = (SELECT root_key_version FROM \
             keys.tenant_keys WHERE tenant = ?1) WHERE id = ?1",
            [tenant],
        )?;
        events.push(event(tenant, None, "key_rotate"));
        repairs.rotations_rolled_back += 1;
    }
    let encoded: Vec<Encoded> = events.iter().map(Encoded::new).collect();
    for e in &encoded {
        let row = PendingAudit::append(e, audit);
        run(&tx, AUDIT_INSERT, &row.params()[..])?;
    }
    tx.commit()?;

    // Then the key store.
    let tx = conn.transaction()?;
    for sql in KEY_CLEANUP {
        repairs.keys_deleted += run(&tx, sql, [])?;
    }
    tx.commit()?;
    Ok(repairs)
}

/// The audit event of one rolled-back change: in the tenant's log, by Ward itself.
fn event(tenant: Uuid, subject: Option<Uuid>, rolled_back: &str) -> AuditEvent {
    AuditEvent {
        at: time::OffsetDateTime::now_utc(),
        request_id: Uuid::now_v7().to_string(),
        actor: Actor::system("crash-recovery"),
        tenant: Some(tenant),
        subject,
        record: None,
        collection: None,
        purpose: None,
        action: Action::CrashRecovery,
        outcome: Outcome::Allowed,
        reason: Some(format!(
            "{rolled_back} rolled back: the process stopped between the data file's commit \
             and the key store's, before the request was answered"
        )),
        client: None,
        detail: Some(serde_json::json!({ "rolled_back": rolled_back })),
    }
}

fn column(conn: &Connection, sql: &str) -> Result<Vec<Uuid>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn pairs(conn: &Connection, sql: &str) -> Result<Vec<(Uuid, Uuid)>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

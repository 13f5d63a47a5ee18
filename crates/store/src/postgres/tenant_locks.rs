//! Tenant rows are locked first, in id order: the lock order that keeps a key rotation from
//! deadlocking with the writes it rotates under.
//!
//! A tenant-key rotation locks its tenant row (the `UPDATE` of `RewrapTenant`) and then every
//! `subject_keys` row of the tenant (the rewrap). A record write share-locks its subject's
//! `subject_keys` row; a subject or hold creation share-locks its tenant row to check the
//! tenant key version. Within one group commit the set-based record writes run first, so a
//! batch holding `subject_keys` locks would then ask for a tenant row that a rotation in the
//! other writer (or another server) holds while waiting for those very `subject_keys` rows:
//! a lock cycle, which PostgreSQL breaks by failing one side. Taking every tenant-row lock a
//! batch will need before anything else (and in one statement, in id order, so that two
//! batches cannot cycle over tenant rows either) makes the order tenants → keys everywhere.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Op, Result};

/// The lock a request needs on its tenant's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TenantLock {
    /// The tenant key version must not change until commit (new subject or hold keys are
    /// wrapped under it).
    Share,
    /// The row itself changes (status, settings, key), or revocations of the tenant's keys
    /// are serialized on it.
    Update,
}

/// The tenant row `op` locks, and how, if it locks one.
pub(super) fn needed(op: &Op) -> Option<(Uuid, TenantLock)> {
    match op {
        Op::InsertSubject(s) => Some((s.tenant, TenantLock::Share)),
        Op::InsertHold(h) => Some((h.tenant, TenantLock::Share)),
        Op::RotateSubjectKeys { tenant, .. } => Some((*tenant, TenantLock::Share)),
        Op::SetTenantStatus { id, .. }
        | Op::PatchTenantSettings { id, .. }
        | Op::RewrapTenant { id, .. }
        | Op::DestroyTenant { id, .. } => Some((*id, TenantLock::Update)),
        Op::AssertOwnerRemains { tenant } => Some((*tenant, TenantLock::Update)),
        _ => None,
    }
}

/// The tenant rows a batch's requests lock, each with the strongest lock one of them needs.
#[derive(Debug, Default)]
pub(super) struct TenantLocks(BTreeMap<Uuid, TenantLock>);

impl TenantLocks {
    /// Adds what `ops` need.
    pub(super) fn add<'a>(&mut self, ops: impl IntoIterator<Item = &'a Op>) {
        for (tenant, lock) in ops.into_iter().filter_map(needed) {
            let held = self.0.entry(tenant).or_insert(lock);
            *held = (*held).max(lock);
        }
    }

    /// Takes the locks in one statement, in id order, so that two batches cannot cycle over
    /// tenant rows either. One mode for all rows (two statements would each be ordered, but
    /// not together): the strongest any request needs, which is a share lock but for the
    /// rare batch that changes a tenant row. `FOR NO KEY UPDATE` rather than `FOR UPDATE`: it
    /// excludes the share locks that matter and leaves foreign-key checks of inserts that
    /// reference the tenant free to proceed.
    pub(super) async fn take(&self, conn: &mut PgConnection) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let sql = if self.0.values().any(|l| *l == TenantLock::Update) {
            "SELECT id FROM tenants WHERE id = ANY($1::BYTEA[]) ORDER BY id FOR NO KEY UPDATE"
        } else {
            "SELECT id FROM tenants WHERE id = ANY($1::BYTEA[]) ORDER BY id FOR SHARE"
        };
        let ids: Vec<&[u8]> = self.0.keys().map(|id| id.as_bytes().as_slice()).collect();
        sqlx::query(sql).bind(ids).execute(&mut *conn).await?;
        Ok(())
    }
}

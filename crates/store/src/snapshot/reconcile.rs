//! The statements of the reconciliation after a restore, for both backends.
//!
//! They do what the live operations do (`DestroyTenant`, `EraseSubject`), to whatever a
//! restore brought back that the newest key snapshot and the erasure ledger say is gone, and
//! select only what still has something to remove, so a second run finds nothing (and a
//! restore of a consistent pair of snapshots finds nothing either).
//!
//! Written with PostgreSQL placeholders (`$1`); [`for_sqlite`] turns them into SQLite's
//! numbered `?1`. `{k}` stands for the key store's prefix (`keys.` on SQLite).

/// Rewrites `$n` placeholders as `?n` and `{k}` as `keys.`.
pub(crate) fn for_sqlite(sql: &str) -> String {
    sql.replace('$', "?").replace("{k}", "keys.")
}

/// Rewrites `{k}` as nothing: PostgreSQL keeps the key tables beside the others.
pub(crate) fn for_postgres(sql: &str) -> String {
    sql.replace("{k}", "")
}

/// Tenants that are destroyed, or have no tenant key, and still have something to remove.
pub(crate) const TENANTS: &str = "SELECT t.id FROM tenants t \
    WHERE (t.status = 'destroyed' \
           OR NOT EXISTS (SELECT 1 FROM {k}tenant_keys tk WHERE tk.tenant = t.id)) \
      AND (t.status <> 'destroyed' \
           OR EXISTS (SELECT 1 FROM {k}tenant_keys x WHERE x.tenant = t.id) \
           OR EXISTS (SELECT 1 FROM {k}subject_keys x WHERE x.tenant = t.id) \
           OR EXISTS (SELECT 1 FROM {k}retired_subject_keys x WHERE x.tenant = t.id) \
           OR EXISTS (SELECT 1 FROM {k}hold_keys x WHERE x.tenant = t.id) \
           OR EXISTS (SELECT 1 FROM subjects x WHERE x.tenant = t.id) \
           OR EXISTS (SELECT 1 FROM records x WHERE x.tenant = t.id) \
           OR EXISTS (SELECT 1 FROM blind_index x WHERE x.tenant = t.id) \
           OR EXISTS (SELECT 1 FROM anonymized_records x WHERE x.tenant = t.id) \
           OR EXISTS (SELECT 1 FROM holds x WHERE x.tenant = t.id) \
           OR EXISTS (SELECT 1 FROM held_records x WHERE x.tenant = t.id) \
           OR EXISTS (SELECT 1 FROM requests x WHERE x.tenant = t.id) \
           OR EXISTS (SELECT 1 FROM invitations x WHERE x.tenant = t.id) \
           OR EXISTS (SELECT 1 FROM key_jobs x WHERE x.tenant = t.id) \
           OR EXISTS (SELECT 1 FROM api_keys x WHERE x.tenant = t.id AND x.revoked_at IS NULL)) \
    ORDER BY t.id";

/// The record-like rows of tenant `$1`.
pub(crate) const TENANT_RECORDS: &str = "SELECT \
    (SELECT COUNT(*) FROM records WHERE tenant = $1) \
    + (SELECT COUNT(*) FROM anonymized_records WHERE tenant = $1) \
    + (SELECT COUNT(*) FROM held_records WHERE tenant = $1)";

/// What destroying tenant `$1` at `$2` (Unix microseconds) runs, as `DestroyTenant` does;
/// the tenant row stays, marked destroyed (keeping the time it was destroyed at, if it was).
pub(crate) const DESTROY_TENANT: &[&str] = &[
    "DELETE FROM {k}subject_keys WHERE tenant = $1",
    "DELETE FROM {k}retired_subject_keys WHERE tenant = $1",
    "DELETE FROM key_jobs WHERE tenant = $1",
    "DELETE FROM {k}hold_keys WHERE tenant = $1",
    "DELETE FROM {k}tenant_keys WHERE tenant = $1",
    "DELETE FROM blind_index WHERE tenant = $1",
    "DELETE FROM records WHERE tenant = $1",
    "DELETE FROM anonymized_records WHERE tenant = $1",
    "DELETE FROM held_records WHERE tenant = $1",
    "DELETE FROM holds WHERE tenant = $1",
    "DELETE FROM requests WHERE tenant = $1",
    "DELETE FROM subjects WHERE tenant = $1",
    "DELETE FROM invitations WHERE tenant = $1",
    "UPDATE api_keys SET revoked_at = $2 WHERE tenant = $1 AND revoked_at IS NULL",
    "UPDATE tenants SET status = 'destroyed', status_changed_at = $2, destroy_after = NULL, \
     settings = '{}' WHERE id = $1 AND status <> 'destroyed'",
];

/// Subjects in the erasure ledger or without a subject key that still have something an
/// erasure removes.
pub(crate) const SUBJECTS: &str = "SELECT s.tenant, s.id FROM subjects s \
    WHERE (EXISTS (SELECT 1 FROM erasure_ledger l WHERE l.tenant = s.tenant AND l.subject = s.id) \
           OR NOT EXISTS (SELECT 1 FROM {k}subject_keys k WHERE k.tenant = s.tenant \
                          AND k.subject = s.id)) \
      AND (s.external_ref IS NOT NULL OR s.restrictions <> '[]' OR s.hold_until IS NOT NULL \
           OR EXISTS (SELECT 1 FROM records r WHERE r.tenant = s.tenant AND r.subject = s.id) \
           OR EXISTS (SELECT 1 FROM blind_index b WHERE b.tenant = s.tenant AND b.subject = s.id) \
           OR EXISTS (SELECT 1 FROM {k}subject_keys k WHERE k.tenant = s.tenant \
                      AND k.subject = s.id) \
           OR EXISTS (SELECT 1 FROM {k}retired_subject_keys k WHERE k.tenant = s.tenant \
                      AND k.subject = s.id)) \
    ORDER BY s.tenant, s.id";

/// The records of subject `$2` of tenant `$1`.
pub(crate) const SUBJECT_RECORDS: &str =
    "SELECT COUNT(*) FROM records WHERE tenant = $1 AND subject = $2";

/// What erasing subject `$2` of tenant `$1` runs, as `EraseSubject` does: keys first, then the
/// index and records; the subject row stays without its reference, restrictions or hold.
pub(crate) const ERASE_SUBJECT: &[&str] = &[
    "DELETE FROM {k}subject_keys WHERE tenant = $1 AND subject = $2",
    "DELETE FROM {k}retired_subject_keys WHERE tenant = $1 AND subject = $2",
    "DELETE FROM blind_index WHERE tenant = $1 AND subject = $2",
    "DELETE FROM records WHERE tenant = $1 AND subject = $2",
    "UPDATE subjects SET external_ref = NULL, restrictions = '[]', hold_until = NULL \
     WHERE tenant = $1 AND id = $2",
];

/// Held records whose hold key is gone: the hold ended, and they cannot be read any more.
pub(crate) const ORPHAN_HELD_RECORDS: &str = "DELETE FROM held_records \
    WHERE NOT EXISTS (SELECT 1 FROM {k}hold_keys k WHERE k.tenant = held_records.tenant \
                      AND k.hold = held_records.hold)";

/// Keys whose tenant, subject or hold the data snapshot does not have (created after it):
/// nothing they could open was restored. On PostgreSQL a key row without its owner row has no
/// version either, so a later export could not write it.
pub(crate) const ORPHAN_KEYS: &[&str] = &[
    "DELETE FROM {k}subject_keys AS k WHERE NOT EXISTS (SELECT 1 FROM subjects s \
     WHERE s.tenant = k.tenant AND s.id = k.subject)",
    "DELETE FROM {k}retired_subject_keys AS k WHERE NOT EXISTS (SELECT 1 FROM subjects s \
     WHERE s.tenant = k.tenant AND s.id = k.subject)",
    "DELETE FROM {k}hold_keys AS k WHERE NOT EXISTS (SELECT 1 FROM holds h \
     WHERE h.tenant = k.tenant AND h.id = k.hold)",
    "DELETE FROM {k}tenant_keys AS k WHERE NOT EXISTS (SELECT 1 FROM tenants t \
     WHERE t.id = k.tenant)",
];

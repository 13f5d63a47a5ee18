//! The column lists of the store's row types that only PostgreSQL spells this way; each
//! names its columns in the order the shared decoder in `crate::decode` reads them, so that
//! PostgreSQL reads a row exactly as SQLite does.

pub(super) use crate::decode::{
    SUBJECT_WIDTH, audit_row_from, checkpoint_from, hash_at, held_from, hold_from, invitation_from,
    key_from, key_job_from, ledger_from, record_from, request_from, retired_key_from, subject_from,
    tenant_from, u32_at, u64_at, uuid_at,
};
pub(super) use crate::sql::{AUDIT_COLUMNS, KEY_COLUMNS, RECORD_COLUMNS, REQUEST_COLUMNS};

pub(super) const TENANT_COLUMNS: &str = "t.id, t.name, t.status, t.region, tk.wrapped_key, \
    t.root_key_version, t.key_version, t.settings, t.created_at, t.status_changed_at, \
    t.destroy_after";

/// Tenants with their wrapped key from the key store.
pub(super) const TENANT_FROM: &str = "tenants t LEFT JOIN tenant_keys tk ON tk.tenant = t.id";

/// Subjects with their wrapped key from the key store.
pub(super) const SUBJECT_KEY_JOIN: &str =
    "LEFT JOIN subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id";

pub(super) const SUBJECT_COLUMNS: &str = "s.tenant, s.id, s.external_ref, sk.wrapped_key, s.key_version, \
    s.restrictions, s.hold_until, s.created_at, COALESCE(sk.version, 1)";

pub(super) const HOLD_COLUMNS: &str =
    "h.tenant, h.id, h.subject, hk.wrapped_key, h.key_version, h.created_at";

pub(super) const HELD_COLUMNS: &str = "r.tenant, r.hold, r.id, r.collection, r.ciphertext, r.key_version, \
    r.created_at, r.hold_until, r.reason";

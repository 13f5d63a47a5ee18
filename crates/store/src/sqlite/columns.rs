//! The column lists of the store's row types, as macros so that `concat!` splices them into
//! a statement's text at compile time (each statement stays one `&'static str`, cached as
//! prepared). A list and the decoder in `decode` that reads it change together.

macro_rules! tenant_columns {
    () => {
        "t.id, t.name, t.status, t.region, tk.wrapped_key, \
         COALESCE(tk.root_key_version, t.root_key_version), COALESCE(tk.key_version, t.key_version), \
         t.settings, t.created_at, t.status_changed_at, t.destroy_after"
    };
}

/// Tenants with their wrapped key from the key store.
macro_rules! tenant_from {
    () => {
        "tenants t LEFT JOIN keys.tenant_keys tk ON tk.tenant = t.id"
    };
}

/// Subjects with their wrapped key from the key store.
macro_rules! subject_key_join {
    () => {
        "LEFT JOIN keys.subject_keys sk ON sk.tenant = s.tenant AND sk.subject = s.id"
    };
}

macro_rules! subject_columns {
    () => {
        "s.tenant, s.id, s.external_ref, sk.wrapped_key, COALESCE(sk.key_version, s.key_version), \
         s.restrictions, s.hold_until, s.created_at, COALESCE(sk.version, 1)"
    };
}

macro_rules! hold_columns {
    () => {
        "h.tenant, h.id, h.subject, hk.wrapped_key, COALESCE(hk.key_version, h.key_version), \
         h.created_at"
    };
}

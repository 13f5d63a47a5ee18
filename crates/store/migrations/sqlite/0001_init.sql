-- Ward schema. Identifiers are 16-byte UUIDs (BLOB), times are Unix microseconds (INTEGER).
-- Nothing here holds personal data in the clear: record fields are AES-256-GCM ciphertext,
-- external references and searchable values are keyed HMACs.
--
-- Wrapped keys live in a separate database file attached as `keys` (the key store). A copy of
-- the data file alone (a stale backup) cannot be decrypted with keys that were destroyed
-- since: that is what makes erasure by crypto-shredding reach backups.

-- Each key row carries the versions it was sealed under. Readers take the versions from here,
-- not from the data file: SQLite commits the two files separately in WAL mode, so only a row
-- of one file is guaranteed to be read as one consistent unit.
CREATE TABLE keys.tenant_keys (
    tenant BLOB PRIMARY KEY,
    wrapped_key BLOB NOT NULL,
    root_key_version INTEGER NOT NULL,
    key_version INTEGER NOT NULL
);

CREATE TABLE keys.subject_keys (
    tenant BLOB NOT NULL,
    subject BLOB NOT NULL,
    wrapped_key BLOB NOT NULL,
    key_version INTEGER NOT NULL,
    PRIMARY KEY (tenant, subject)
);

CREATE TABLE keys.hold_keys (
    tenant BLOB NOT NULL,
    hold BLOB NOT NULL,
    wrapped_key BLOB NOT NULL,
    key_version INTEGER NOT NULL,
    PRIMARY KEY (tenant, hold)
);

CREATE TABLE tenants (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    region TEXT,
    root_key_version INTEGER NOT NULL,
    key_version INTEGER NOT NULL,
    settings TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    status_changed_at INTEGER NOT NULL,
    destroy_after INTEGER
);

CREATE TABLE api_keys (
    id BLOB PRIMARY KEY,
    tenant BLOB REFERENCES tenants(id),
    token_hash BLOB NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    purposes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys(tenant);

CREATE TABLE subjects (
    tenant BLOB NOT NULL REFERENCES tenants(id),
    id BLOB NOT NULL,
    external_ref BLOB,
    key_version INTEGER NOT NULL,
    restrictions TEXT NOT NULL,
    hold_until INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX subjects_external_ref ON subjects(tenant, external_ref) WHERE external_ref IS NOT NULL;

CREATE TABLE records (
    tenant BLOB NOT NULL,
    subject BLOB NOT NULL,
    id BLOB NOT NULL,
    collection TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    key_version INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (tenant, subject, id),
    FOREIGN KEY (tenant, subject) REFERENCES subjects(tenant, id)
);
CREATE INDEX records_expiry ON records(expires_at, id) WHERE expires_at IS NOT NULL;

CREATE TABLE blind_index (
    tenant BLOB NOT NULL,
    collection TEXT NOT NULL,
    field TEXT NOT NULL,
    hash BLOB NOT NULL,
    subject BLOB NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (tenant, collection, field, hash, record)
);
CREATE INDEX blind_index_record ON blind_index(tenant, subject, record);

CREATE TABLE audit_events (
    idx INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    tenant BLOB,
    subject BLOB,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    event BLOB NOT NULL,
    chain BLOB NOT NULL
);
CREATE INDEX audit_events_tenant ON audit_events(tenant, idx);
-- A subject's access log (exports) without walking the whole tenant's log.
CREATE INDEX audit_events_subject ON audit_events(tenant, subject, idx) WHERE subject IS NOT NULL;

CREATE TABLE audit_checkpoints (
    tree_size INTEGER PRIMARY KEY,
    checkpoint TEXT NOT NULL,
    frontier BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE erasure_ledger (
    id BLOB PRIMARY KEY,
    tenant BLOB NOT NULL,
    subject BLOB NOT NULL,
    requested_by TEXT NOT NULL,
    erased_at INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX erasure_ledger_subject ON erasure_ledger(tenant, subject);

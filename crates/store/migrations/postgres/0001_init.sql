-- Ward schema for PostgreSQL, the same tables as migrations/sqlite/0001_init.sql.
-- Identifiers are 16-byte UUIDs (BYTEA), times are Unix microseconds (BIGINT), every integer
-- is BIGINT (key versions are u32, which INTEGER cannot hold). Nothing here holds personal
-- data in the clear: record fields are AES-256-GCM ciphertext, external references and
-- searchable values are keyed HMACs.
--
-- Wrapped keys live in tables of their own (the key store), never next to the data they
-- protect, so that data backups can leave them out and keys be backed up apart (with a short
-- retention): a stale data backup cannot be decrypted with keys destroyed since, which is
-- what makes erasure by crypto-shredding reach backups.

CREATE TABLE tenant_keys (
    tenant BYTEA PRIMARY KEY,
    wrapped_key BYTEA NOT NULL
);

CREATE TABLE subject_keys (
    tenant BYTEA NOT NULL,
    subject BYTEA NOT NULL,
    wrapped_key BYTEA NOT NULL,
    PRIMARY KEY (tenant, subject)
);

CREATE TABLE hold_keys (
    tenant BYTEA NOT NULL,
    hold BYTEA NOT NULL,
    wrapped_key BYTEA NOT NULL,
    PRIMARY KEY (tenant, hold)
);

CREATE TABLE tenants (
    id BYTEA PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    region TEXT,
    root_key_version BIGINT NOT NULL,
    key_version BIGINT NOT NULL,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    status_changed_at BIGINT NOT NULL,
    destroy_after BIGINT
);

CREATE TABLE api_keys (
    id BYTEA PRIMARY KEY,
    tenant BYTEA REFERENCES tenants(id),
    token_hash BYTEA NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    purposes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys(tenant);

CREATE TABLE subjects (
    tenant BYTEA NOT NULL REFERENCES tenants(id),
    id BYTEA NOT NULL,
    external_ref BYTEA,
    key_version BIGINT NOT NULL,
    restrictions TEXT NOT NULL,
    hold_until BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX subjects_external_ref ON subjects(tenant, external_ref)
    WHERE external_ref IS NOT NULL;

CREATE TABLE records (
    tenant BYTEA NOT NULL,
    subject BYTEA NOT NULL,
    id BYTEA NOT NULL,
    collection TEXT NOT NULL,
    ciphertext BYTEA NOT NULL,
    key_version BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (tenant, subject, id),
    FOREIGN KEY (tenant, subject) REFERENCES subjects(tenant, id)
);
CREATE INDEX records_expiry ON records(expires_at, id) WHERE expires_at IS NOT NULL;

CREATE TABLE blind_index (
    tenant BYTEA NOT NULL,
    collection TEXT NOT NULL,
    field TEXT NOT NULL,
    hash BYTEA NOT NULL,
    subject BYTEA NOT NULL,
    record BYTEA NOT NULL,
    PRIMARY KEY (tenant, collection, field, hash, record)
);
CREATE INDEX blind_index_record ON blind_index(tenant, subject, record);

CREATE TABLE audit_events (
    idx BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    tenant BYTEA,
    subject BYTEA,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    event BYTEA NOT NULL,
    chain BYTEA NOT NULL
);
CREATE INDEX audit_events_tenant ON audit_events(tenant, idx);
-- A subject's access log (exports) without walking the whole tenant's log.
CREATE INDEX audit_events_subject ON audit_events(tenant, subject, idx) WHERE subject IS NOT NULL;

-- The tail of the audit log, shared by every Ward server on this database. A commit that
-- appends events locks this row (SELECT ... FOR UPDATE), numbers its events from `size`,
-- and writes the new size, chain value and Merkle frontier (ward_audit::Frontier::to_bytes)
-- before it commits, so appends from several servers are serialized and gap-free.
CREATE TABLE audit_head (
    id INT PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL CHECK (size >= 0),
    chain BYTEA NOT NULL,
    frontier BYTEA NOT NULL
);
-- The empty log: chain genesis (32 zero bytes) and the empty frontier (format version 1,
-- size 0 as a big-endian u64, no nodes).
INSERT INTO audit_head (id, size, chain, frontier)
VALUES (1, 0, decode(repeat('00', 32), 'hex'), decode('010000000000000000', 'hex'));

CREATE TABLE audit_checkpoints (
    tree_size BIGINT PRIMARY KEY,
    checkpoint TEXT NOT NULL,
    frontier BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE erasure_ledger (
    id BYTEA PRIMARY KEY,
    tenant BYTEA NOT NULL,
    subject BYTEA NOT NULL,
    requested_by TEXT NOT NULL,
    erased_at BIGINT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX erasure_ledger_subject ON erasure_ledger(tenant, subject);

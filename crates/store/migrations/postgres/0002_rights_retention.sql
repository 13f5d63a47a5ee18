-- Retention and data-subject rights; the same tables as migrations/sqlite/0002_rights_retention.sql.

-- Records anonymized on expiry: no longer personal data, outside any subject's key scope,
-- sealed under a key derived from the tenant key (so they die with the tenant).
CREATE TABLE anonymized_records (
    tenant BYTEA NOT NULL,
    id BYTEA NOT NULL,
    collection TEXT NOT NULL,
    ciphertext BYTEA NOT NULL,
    key_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    anonymized_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);

-- Legal holds created by an erasure: the held records are re-sealed under the hold's own key
-- (in hold_keys) so the subject key can be destroyed; the hold key is destroyed when the hold
-- ends.
CREATE TABLE holds (
    tenant BYTEA NOT NULL,
    id BYTEA NOT NULL,
    subject BYTEA NOT NULL,
    key_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE held_records (
    tenant BYTEA NOT NULL,
    hold BYTEA NOT NULL,
    id BYTEA NOT NULL,
    collection TEXT NOT NULL,
    ciphertext BYTEA NOT NULL,
    key_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    hold_until BIGINT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX held_records_until ON held_records(hold_until);

-- Data-subject requests as tracked objects (GDPR: answer within one month).
CREATE TABLE requests (
    tenant BYTEA NOT NULL,
    id BYTEA NOT NULL,
    kind TEXT NOT NULL,
    subject BYTEA NOT NULL,
    status TEXT NOT NULL,
    verified_by TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    closed_at BIGINT,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX requests_due ON requests(tenant, status, due_at);

CREATE INDEX audit_events_at ON audit_events(at);

-- Retention and data-subject rights.

-- Records anonymized on expiry: no longer personal data, outside any subject's key scope,
-- sealed under a key derived from the tenant key (so they die with the tenant).
CREATE TABLE anonymized_records (
    tenant BLOB NOT NULL,
    id BLOB NOT NULL,
    collection TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    key_version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    anonymized_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
);

-- Legal holds created by an erasure: the held records are re-sealed under the hold's own key
-- so the subject key can be destroyed; the hold key is destroyed when the hold ends.
CREATE TABLE holds (
    tenant BLOB NOT NULL,
    id BLOB NOT NULL,
    subject BLOB NOT NULL,
    key_version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE held_records (
    tenant BLOB NOT NULL,
    hold BLOB NOT NULL,
    id BLOB NOT NULL,
    collection TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    key_version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    hold_until INTEGER NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX held_records_until ON held_records(hold_until);

-- Data-subject requests as tracked objects (GDPR: answer within one month).
CREATE TABLE requests (
    tenant BLOB NOT NULL,
    id BLOB NOT NULL,
    kind TEXT NOT NULL,
    subject BLOB NOT NULL,
    status TEXT NOT NULL,
    verified_by TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    closed_at INTEGER,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX requests_due ON requests(tenant, status, due_at);

CREATE INDEX audit_events_at ON audit_events(at);

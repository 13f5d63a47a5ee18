-- Record key rotation (`ward keys rotate --records`).
--
-- A subject key has a version; records name the version that sealed them (records.key_version).
-- A rotation gives the subject a new current key and keeps the old one as a retired version
-- until no record is sealed under it, then destroys it.
ALTER TABLE subject_keys ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

CREATE TABLE retired_subject_keys (
    tenant BYTEA NOT NULL,
    subject BYTEA NOT NULL,
    version BIGINT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    key_version BIGINT NOT NULL,
    PRIMARY KEY (tenant, subject, version)
);

-- Background key jobs and their progress; a lease lets one server at a time run a job and
-- another take it over when the first dies.
CREATE TABLE key_jobs (
    id BYTEA PRIMARY KEY,
    tenant BYTEA NOT NULL,
    status TEXT NOT NULL,
    cursor BYTEA,
    subjects_done BIGINT NOT NULL,
    records_done BIGINT NOT NULL,
    records_total BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT,
    lease_owner TEXT,
    lease_until BIGINT,
    error TEXT
);
CREATE INDEX key_jobs_status ON key_jobs(status, started_at);

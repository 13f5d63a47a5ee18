-- Record key rotation (`ward keys rotate --records`).
--
-- A subject key has a version; records name the version that sealed them (records.key_version).
-- A rotation gives the subject a new current key and keeps the old one as a retired version
-- until no record is sealed under it, then destroys it. The three steps touch one file each
-- (keys, then records, then keys): SQLite does not commit the data file and the attached key
-- store atomically in WAL mode, so no step may depend on both landing together.
ALTER TABLE keys.subject_keys ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

CREATE TABLE keys.retired_subject_keys (
    tenant BLOB NOT NULL,
    subject BLOB NOT NULL,
    version INTEGER NOT NULL,
    wrapped_key BLOB NOT NULL,
    key_version INTEGER NOT NULL,
    PRIMARY KEY (tenant, subject, version)
);

-- Background key jobs and their progress; a lease lets one process at a time run a job and
-- another take it over when the first dies.
CREATE TABLE key_jobs (
    id BLOB PRIMARY KEY,
    tenant BLOB NOT NULL,
    status TEXT NOT NULL,
    cursor BLOB,
    subjects_done INTEGER NOT NULL,
    records_done INTEGER NOT NULL,
    records_total INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER,
    lease_owner TEXT,
    lease_until INTEGER,
    error TEXT
);
CREATE INDEX key_jobs_status ON key_jobs(status, started_at);

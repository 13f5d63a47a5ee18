-- Personal-data breach incidents and the GDPR Art. 33 72-hour notification clock.
-- `tenant` is NULL for an operator incident (it may affect several tenants), else the tenant
-- that opened it. `title` and the notes' `text` are free text that may name people: they are
-- stored sealed (a tenant incident's under the tenant's free-text key, an operator incident's
-- under a platform key derived from the root key), never in clear. `due_alerted` and
-- `overdue_alerted` (0 or 1) record that the 48-hour and 72-hour alerts were raised; they are
-- set by a conditional update, so of several servers only one raises each.
CREATE TABLE incidents (
    id BYTEA PRIMARY KEY,
    tenant BYTEA,
    opened_by TEXT NOT NULL,
    title BYTEA NOT NULL,
    status TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    closed_at BIGINT,
    due_alerted BIGINT NOT NULL,
    overdue_alerted BIGINT NOT NULL
);
CREATE INDEX incidents_open ON incidents(status, opened_at);
CREATE INDEX incidents_tenant ON incidents(tenant, opened_at);

-- The tenants an incident affects, and when each was notified (and by whom: an audit actor id).
CREATE TABLE incident_tenants (
    incident BYTEA NOT NULL,
    tenant BYTEA NOT NULL,
    notified_at BIGINT,
    notified_by TEXT,
    PRIMARY KEY (incident, tenant)
);
CREATE INDEX incident_tenants_tenant ON incident_tenants(tenant);

-- The data subjects known to be affected, by pseudonymous id.
CREATE TABLE incident_subjects (
    incident BYTEA NOT NULL,
    tenant BYTEA NOT NULL,
    subject BYTEA NOT NULL,
    PRIMARY KEY (incident, tenant, subject)
);

-- The alerts an incident was opened from.
CREATE TABLE incident_alerts (
    incident BYTEA NOT NULL,
    alert BYTEA NOT NULL,
    PRIMARY KEY (incident, alert)
);

-- The timeline (`author`: an audit actor id): notes (`note`: what happened) and measures taken (`measure`), sealed.
CREATE TABLE incident_notes (
    incident BYTEA NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    author TEXT NOT NULL,
    kind TEXT NOT NULL,
    text BYTEA NOT NULL,
    PRIMARY KEY (incident, seq)
);

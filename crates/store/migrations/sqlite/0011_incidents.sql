-- Personal-data breach incidents and the GDPR Art. 33 72-hour notification clock.
-- `tenant` is NULL for an operator incident (it may affect several tenants), else the tenant
-- that opened it. `title` and the notes' `text` are free text that may name people: they are
-- stored sealed (a tenant incident's under the tenant's free-text key, an operator incident's
-- under a platform key derived from the root key), never in clear. `due_alerted` and
-- `overdue_alerted` (0 or 1) record that the 48-hour and 72-hour alerts were raised; they are
-- set by a conditional update, so of several servers only one raises each.
CREATE TABLE incidents (
    id BLOB PRIMARY KEY,
    tenant BLOB,
    opened_by TEXT NOT NULL,
    title BLOB NOT NULL,
    status TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    closed_at INTEGER,
    due_alerted INTEGER NOT NULL,
    overdue_alerted INTEGER NOT NULL
);
CREATE INDEX incidents_open ON incidents(status, opened_at);
CREATE INDEX incidents_tenant ON incidents(tenant, opened_at);

-- The tenants an incident affects, and when each was notified (and by whom: an audit actor id).
CREATE TABLE incident_tenants (
    incident BLOB NOT NULL,
    tenant BLOB NOT NULL,
    notified_at INTEGER,
    notified_by TEXT,
    PRIMARY KEY (incident, tenant)
);
CREATE INDEX incident_tenants_tenant ON incident_tenants(tenant);

-- The data subjects known to be affected, by pseudonymous id.
CREATE TABLE incident_subjects (
    incident BLOB NOT NULL,
    tenant BLOB NOT NULL,
    subject BLOB NOT NULL,
    PRIMARY KEY (incident, tenant, subject)
);

-- The alerts an incident was opened from.
CREATE TABLE incident_alerts (
    incident BLOB NOT NULL,
    alert BLOB NOT NULL,
    PRIMARY KEY (incident, alert)
);

-- The timeline (`author`: an audit actor id): notes (`note`: what happened) and measures taken (`measure`), sealed.
CREATE TABLE incident_notes (
    incident BLOB NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    author TEXT NOT NULL,
    kind TEXT NOT NULL,
    text BLOB NOT NULL,
    PRIMARY KEY (incident, seq)
);

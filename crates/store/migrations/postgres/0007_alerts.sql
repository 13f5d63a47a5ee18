-- Alerts opened by the detection rules over the audit stream. One row per (rule, scope) while
-- the alert is not resolved: a further hit bumps `count` and `last_seen` instead of adding a
-- row, so an attack costs no storage per attempt. `events` is a JSON array of the audit
-- indices that triggered it (capped). `scope` names a principal, source hash or tenant by id,
-- never a data value.
CREATE TABLE alerts (
    id BYTEA PRIMARY KEY,
    rule TEXT NOT NULL,
    scope TEXT NOT NULL,
    severity TEXT NOT NULL,
    tenant BYTEA,
    status TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    count BIGINT NOT NULL,
    events TEXT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at BIGINT,
    resolved_by TEXT,
    resolved_at BIGINT
);
CREATE UNIQUE INDEX alerts_live ON alerts(rule, scope) WHERE status <> 'resolved';
CREATE INDEX alerts_tenant ON alerts(tenant, first_seen);
CREATE INDEX alerts_first_seen ON alerts(first_seen);

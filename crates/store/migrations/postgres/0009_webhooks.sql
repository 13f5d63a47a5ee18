-- Webhooks that receive alert events, and their outbox (which doubles as the delivery log).
-- `tenant` is NULL for an operator webhook, which receives every alert. `secret` is the
-- signing secret sealed (under the tenant's keys, or under the platform webhook key for an
-- operator webhook): never stored in clear. A deleted webhook keeps its row (`deleted_at`) so
-- its delivery log stays readable; it receives nothing more.
CREATE TABLE webhooks (
    id BYTEA PRIMARY KEY,
    tenant BYTEA,
    url TEXT NOT NULL,
    secret BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX webhooks_tenant ON webhooks(tenant, created_at);

-- One row per event to deliver to one webhook, written in the transaction that opened,
-- acknowledged or resolved the alert, so a restart loses none. `payload` holds alert fields
-- only (ids, rule, scope, severity, status, counts, times, audit indices), never a data value.
-- `last_result` is an HTTP status or an error class; no response body is kept. A server
-- claims a due row by setting `lease_owner`/`lease_until` where the lease is free or expired
-- (compare-and-set), so several servers on one database never send a row twice at once.
CREATE TABLE webhook_deliveries (
    id BYTEA PRIMARY KEY,
    webhook BYTEA NOT NULL,
    tenant BYTEA,
    event TEXT NOT NULL,
    alert BYTEA,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_attempt_at BIGINT,
    last_result TEXT,
    delivered_at BIGINT,
    lease_owner TEXT,
    lease_until BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(webhook, created_at);

-- Invitations: how a tenant's first owner gets a key without the operator ever holding one.
-- Only the SHA-256 of the token is stored, like an API key's. An invitation is claimed once
-- (`used_at`), and a tenant has at most one unclaimed invitation: issuing a new one deletes
-- the earlier unclaimed ones.
CREATE TABLE invitations (
    id BYTEA PRIMARY KEY,
    tenant BYTEA NOT NULL REFERENCES tenants(id),
    token_hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX invitations_tenant ON invitations(tenant);

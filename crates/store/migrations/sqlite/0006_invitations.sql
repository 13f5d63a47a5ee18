-- Invitations: how a tenant's first owner gets a key without the operator ever holding one.
-- Only the SHA-256 of the token is stored, like an API key's. An invitation is claimed once
-- (`used_at`), and a tenant has at most one unclaimed invitation: issuing a new one deletes
-- the earlier unclaimed ones.
CREATE TABLE invitations (
    id BLOB PRIMARY KEY,
    tenant BLOB NOT NULL REFERENCES tenants(id),
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX invitations_tenant ON invitations(tenant);

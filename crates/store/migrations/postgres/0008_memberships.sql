-- Memberships: which tenant a user acts in, with which role, until when. A user may belong to
-- several tenants (an invitation claimed with an existing account's password adds one), so the
-- tenant and role on `users` only record how the account was made; access follows these rows.
-- An invitation now also invites a person: `role` set (owner, admin, member, auditor), with
-- the member's purposes and the membership's end; `role` NULL is the first-owner invitation
-- that yields an API key.
CREATE TABLE memberships (
    user_id BYTEA NOT NULL REFERENCES users(id),
    tenant BYTEA NOT NULL REFERENCES tenants(id),
    role TEXT NOT NULL,
    purposes TEXT NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, tenant)
);
CREATE INDEX memberships_tenant ON memberships(tenant);
INSERT INTO memberships (user_id, tenant, role, purposes, expires_at, created_at)
    SELECT id, tenant, role, '[]', NULL, created_at FROM users WHERE tenant IS NOT NULL;
ALTER TABLE invitations ADD COLUMN role TEXT;
ALTER TABLE invitations ADD COLUMN purposes TEXT;
ALTER TABLE invitations ADD COLUMN membership_expires_at BIGINT;

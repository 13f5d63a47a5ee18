-- People: user accounts with Argon2id passwords and TOTP, their recovery codes, login sessions
-- and support grants. Nothing here is a secret or a personal value in clear: the e-mail is a
-- keyed hash (lookup) and a ciphertext (display), the TOTP secret is sealed, recovery codes,
-- reset tokens and session ids are SHA-256 digests, a grant's ticket and justification are
-- sealed under the tenant's free-text key.
CREATE TABLE users (
    id BYTEA PRIMARY KEY,
    email_hash BYTEA NOT NULL UNIQUE,
    email_sealed BYTEA NOT NULL,
    role TEXT NOT NULL,
    tenant BYTEA REFERENCES tenants(id),
    password_hash TEXT NOT NULL,
    totp_sealed BYTEA,
    totp_last_step BIGINT,
    key_version BIGINT NOT NULL,
    reset_hash BYTEA,
    reset_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL,
    disabled_at BIGINT
);
CREATE TABLE recovery_codes (
    user_id BYTEA NOT NULL REFERENCES users(id),
    code_hash BYTEA NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
CREATE TABLE sessions (
    id BYTEA PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    user_id BYTEA NOT NULL REFERENCES users(id),
    csrf_hash BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE support_grants (
    id BYTEA PRIMARY KEY,
    tenant BYTEA NOT NULL REFERENCES tenants(id),
    requester BYTEA NOT NULL REFERENCES users(id),
    ticket TEXT NOT NULL,
    justification TEXT NOT NULL,
    collections TEXT NOT NULL,
    actions TEXT NOT NULL,
    break_glass BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    duration_secs BIGINT NOT NULL,
    requested_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT,
    expires_at BIGINT
);
CREATE INDEX support_grants_tenant ON support_grants(tenant);
CREATE INDEX support_grants_requester ON support_grants(requester, status);

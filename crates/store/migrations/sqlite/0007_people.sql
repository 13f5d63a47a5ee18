-- People: user accounts with Argon2id passwords and TOTP, their recovery codes, login sessions
-- and support grants. Nothing here is a secret or a personal value in clear: the e-mail is a
-- keyed hash (lookup) and a ciphertext (display), the TOTP secret is sealed, recovery codes,
-- reset tokens and session ids are SHA-256 digests, a grant's ticket and justification are
-- sealed under the tenant's free-text key.
CREATE TABLE users (
    id BLOB PRIMARY KEY,
    email_hash BLOB NOT NULL UNIQUE,
    email_sealed BLOB NOT NULL,
    role TEXT NOT NULL,
    tenant BLOB REFERENCES tenants(id),
    password_hash TEXT NOT NULL,
    totp_sealed BLOB,
    totp_last_step INTEGER,
    key_version INTEGER NOT NULL,
    reset_hash BLOB,
    reset_expires_at INTEGER,
    created_at INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL,
    disabled_at INTEGER
);
CREATE TABLE recovery_codes (
    user_id BLOB NOT NULL REFERENCES users(id),
    code_hash BLOB NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, code_hash)
);
CREATE TABLE sessions (
    id BLOB PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    user_id BLOB NOT NULL REFERENCES users(id),
    csrf_hash BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE support_grants (
    id BLOB PRIMARY KEY,
    tenant BLOB NOT NULL REFERENCES tenants(id),
    requester BLOB NOT NULL REFERENCES users(id),
    ticket TEXT NOT NULL,
    justification TEXT NOT NULL,
    collections TEXT NOT NULL,
    actions TEXT NOT NULL,
    break_glass INTEGER NOT NULL,
    status TEXT NOT NULL,
    duration_secs INTEGER NOT NULL,
    requested_at INTEGER NOT NULL,
    decided_at INTEGER,
    decided_by TEXT,
    expires_at INTEGER
);
CREATE INDEX support_grants_tenant ON support_grants(tenant);
CREATE INDEX support_grants_requester ON support_grants(requester, status);

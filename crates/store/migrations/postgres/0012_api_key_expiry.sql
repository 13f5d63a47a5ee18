-- An API key may carry an end: from then on it authenticates nothing, like a revoked key,
-- without anyone having to remember to revoke it. NULL: the key lasts until revoked.
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;

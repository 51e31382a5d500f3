-- OAuth 2.0 client credentials (RFC 6749 §4.4) for the SCIM endpoint, and credential expiry.
-- Like bearer tokens, client secrets and access tokens are stored only as SHA-256 hashes.
-- The client identifier is the organisation's id: it is not a secret.

-- Lifetime of the access tokens the token endpoint issues (60 minutes to 6 hours).
ALTER TABLE tenants ADD COLUMN access_token_lifetime_secs BIGINT NOT NULL DEFAULT 3600;
-- Optional maximum lifetime of new bearer tokens, in days; NULL = no maximum (the default).
ALTER TABLE tenants ADD COLUMN bearer_max_lifetime_days BIGINT;
-- A bearer token's end of life under that maximum. `expires_at` stays the rotation overlap's end.
ALTER TABLE scim_tokens ADD COLUMN valid_until BIGINT;

CREATE TABLE oauth_client_secrets (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    last_used_at BIGINT,
    -- The expiry the admin chose (1 to 3 years after creation).
    valid_until BIGINT NOT NULL,
    -- Set when a newer secret replaced this one: the end of the rotation overlap.
    retire_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX oauth_client_secrets_tenant ON oauth_client_secrets (tenant_id, created_at);

-- An access token lives until expires_at, and never longer than the secret it was issued for
-- (revoked, rotated out or expired): the SCIM gate checks both in its one lookup.
CREATE TABLE oauth_access_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    secret_id TEXT NOT NULL REFERENCES oauth_client_secrets(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX oauth_access_tokens_tenant_expiry ON oauth_access_tokens (tenant_id, expires_at);
CREATE INDEX oauth_access_tokens_secret ON oauth_access_tokens (secret_id);

-- SCIM bearer tokens: only their SHA-256 is stored, with a non-secret hint for the console.
-- A rotated token keeps working until expires_at (the overlap); a revoked one stops at once.

ALTER TABLE tenants ADD COLUMN token_overlap_secs BIGINT NOT NULL DEFAULT 3600;

CREATE TABLE scim_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    last_used_at BIGINT,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX scim_tokens_tenant ON scim_tokens (tenant_id, created_at);

-- Organisations, their users (admins and, later, SCIM-provisioned users), console sessions,
-- sign-in throttling, first-run setup and the audit log.
-- Times are milliseconds since the Unix epoch (BIGINT) so both databases share one code path.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    provisioning_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_name TEXT NOT NULL,
    user_name_lc TEXT NOT NULL,
    external_id TEXT,
    given_name TEXT,
    family_name TEXT,
    display_name TEXT,
    email TEXT,
    email_lc TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash TEXT,
    -- The full SCIM representation (without id/meta/groups), as the client sent it.
    resource TEXT NOT NULL DEFAULT '{}',
    source TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_provisioned_at BIGINT,
    deleted_at BIGINT
);
-- Deprovisioned users are kept; uniqueness only binds the live ones.
CREATE UNIQUE INDEX users_tenant_user_name ON users (tenant_id, user_name_lc) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX users_tenant_external_id ON users (tenant_id, external_id) WHERE deleted_at IS NULL AND external_id IS NOT NULL;
CREATE INDEX users_email_lc ON users (email_lc);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE sign_in_failures (
    throttle_key TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX sign_in_failures_key_at ON sign_in_failures (throttle_key, at);

-- One row once the install has its first organisation: the first-run page is then closed.
CREATE TABLE install (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    completed_at BIGINT NOT NULL
);

CREATE TABLE setup_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    client_addr TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at);

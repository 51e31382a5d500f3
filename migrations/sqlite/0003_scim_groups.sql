-- SCIM groups and their members (users or groups). Groups may be hard-deleted; memberships go
-- with them. Member lists live in their own table so a 100k-member group is never rewritten
-- to add one member.

CREATE TABLE scim_groups (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    display_name_lc TEXT NOT NULL,
    external_id TEXT,
    resource TEXT NOT NULL DEFAULT '{}',
    version BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX scim_groups_tenant_name ON scim_groups (tenant_id, display_name_lc);
CREATE UNIQUE INDEX scim_groups_tenant_external_id ON scim_groups (tenant_id, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES scim_groups(id) ON DELETE CASCADE,
    member_id TEXT NOT NULL,
    member_type TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX group_members_member ON group_members (member_id);

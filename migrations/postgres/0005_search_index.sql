-- Every SCIM filter and sortBy runs in the database. Each user and group carries a search index
-- (see server/src/scim/index.rs), written with the resource; the most used attributes are
-- case-folded columns with indexes. Rows written before this migration get their index from a
-- backfill at start-up (search IS NULL).
ALTER TABLE users ADD COLUMN search JSONB;
ALTER TABLE users ADD COLUMN display_name_lc TEXT;
ALTER TABLE users ADD COLUMN given_name_lc TEXT;
ALTER TABLE users ADD COLUMN family_name_lc TEXT;
ALTER TABLE scim_groups ADD COLUMN search JSONB;

-- Listing pages walk live users in creation order: a partial index that holds only them, so a
-- deep startIndex walks index entries only.
CREATE INDEX users_live_created ON users (tenant_id, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX users_live_modified ON users (tenant_id, updated_at) WHERE deleted_at IS NULL;
CREATE INDEX users_live_email ON users (tenant_id, email_lc) WHERE deleted_at IS NULL;
CREATE INDEX users_live_display ON users (tenant_id, display_name_lc) WHERE deleted_at IS NULL;
CREATE INDEX users_live_given ON users (tenant_id, given_name_lc) WHERE deleted_at IS NULL;
CREATE INDEX users_live_family ON users (tenant_id, family_name_lc) WHERE deleted_at IS NULL;
CREATE INDEX users_unindexed ON users (id) WHERE search IS NULL;
CREATE INDEX scim_groups_unindexed ON scim_groups (id) WHERE search IS NULL;
CREATE INDEX scim_groups_tenant_modified ON scim_groups (tenant_id, updated_at);

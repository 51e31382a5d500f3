-- Listing pages walk users and groups of one organisation in creation order.
CREATE INDEX users_tenant_created ON users (tenant_id, created_at, id);
CREATE INDEX scim_groups_tenant_created ON scim_groups (tenant_id, created_at, id);

-- The console's Users page lists a status in name order (its default) from an index of that
-- status alone, as it lists a status by last change (0008). Few users have these statuses, so
-- the indexes are small and most writes skip them.
CREATE INDEX users_console_disabled_name
    ON users (tenant_id, (lower(COALESCE(display_name, user_name)) COLLATE "C"), id)
    WHERE active = FALSE AND deleted_at IS NULL;
CREATE INDEX users_console_deprovisioned_name
    ON users (tenant_id, (lower(COALESCE(display_name, user_name)) COLLATE "C"), id)
    WHERE deleted_at IS NOT NULL;

-- sortBy displayName and name.familyName read their order from the index of the column the
-- filters already read (display_name_lc, family_name_lc), now keyed on to creation time and
-- id, instead of from an index of the search index's sort key (0017). For a string the sort
-- key is [3, null, the lower-cased text], the column's value, and both attributes take one
-- string only, so the order is the same (server/src/store/query.rs `sort_key_column`). A new
-- user was written into both indexes of each attribute, each at a random place: at a million
-- users, two more pages mostly read from disk for every create.
DROP INDEX users_sort_display_name;
DROP INDEX users_sort_family_name;
DROP INDEX users_live_display;
DROP INDEX users_live_family;
CREATE INDEX users_live_display ON users (tenant_id, display_name_lc, created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX users_live_family ON users (tenant_id, family_name_lc, created_at, id) WHERE deleted_at IS NULL;

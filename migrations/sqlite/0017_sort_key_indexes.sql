-- SCIM sortBy on the attributes people sort users by most (displayName, name.familyName) reads
-- a page from an index of the search index's sort key, [rank, number, text]
-- (server/src/scim/index.rs), instead of sorting every user of the organisation: 5.7-6.0 s for
-- sortBy=name.familyName at a million users. Each such index costs every write of a user's
-- search index (measured in sqlite3 at a million users: an update took 40-45 us without the
-- four indexes this file first had, 100-200 us with them), so there are two. The
-- statements repeat each expression word for word (store/query.rs `Sql::sort_term`,
-- `INDEXED_SORT_KEYS`), as SQLite uses an index on an expression only then. Users without the
-- attribute have three nulls here, so they come in creation order after (or, descending,
-- before) the others.
CREATE INDEX users_sort_display_name ON users (tenant_id,
    json_extract(search, '$.s."displayname"[0]'), json_extract(search, '$.s."displayname"[1]'),
    json_extract(search, '$.s."displayname"[2]'), created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX users_sort_family_name ON users (tenant_id,
    json_extract(search, '$.s."name.familyname"[0]'), json_extract(search, '$.s."name.familyname"[1]'),
    json_extract(search, '$.s."name.familyname"[2]'), created_at, id) WHERE deleted_at IS NULL;

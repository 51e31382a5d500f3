-- Every new user cost an entry in three indexes of its email: users_email_lc (every user, for
-- the console's sign-in), users_live_email (SCIM's filters) and users_console_email (the
-- console's search). Each is keyed by the address, so each entry is a random page of its index:
-- at a million users, mostly a page read from disk for every user created (POST /Users).
--
-- Sign-in looks up admins only: its index now holds admins only (a SCIM user is not in it).
DROP INDEX users_email_lc;
CREATE INDEX users_admin_email ON users (email_lc) WHERE is_admin = TRUE AND deleted_at IS NULL;

-- SCIM's filters (live users) and the console's search (every user) share one index; with
-- `deleted_at` in it, SCIM still counts a filter's matches from the index alone.
DROP INDEX users_live_email;
DROP INDEX users_console_email;
CREATE INDEX users_email ON users (tenant_id, email_lc, deleted_at);

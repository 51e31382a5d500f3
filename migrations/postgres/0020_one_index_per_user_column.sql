-- The console's family-name search reads family_name_lc, the lower-cased value SCIM's filters
-- use, as userName and email already did (the SQLite migration of this number says why).
-- PostgreSQL keeps its all-users indexes for the console: they compare in byte order
-- (COLLATE "C"), which the live users' indexes do not.
DROP INDEX users_console_family;
CREATE INDEX users_console_family ON users (tenant_id, family_name_lc COLLATE "C");

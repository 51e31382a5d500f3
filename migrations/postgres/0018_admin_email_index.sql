-- Sign-in looks admins up by email across organisations: the only read of email_lc without an
-- organisation. Its index now holds admins only, so creating a SCIM user (or changing its
-- email) no longer writes an entry into it: at a million users that was one more page, at a
-- random place, written with every new user.
DROP INDEX users_email_lc;
CREATE INDEX users_admin_email ON users (email_lc) WHERE is_admin = TRUE;

-- A group's user members in the console's name order, kept beside each membership, so a page
-- of members walks the group's own index and reads one user row per member shown. Before, a
-- group of more than 10,000 members was listed by walking the organisation's name index and
-- testing each user for membership. The key is the console's name key (display name, else
-- userName, lower-cased), kept by triggers in the transaction of each change. A member add
-- holds its users FOR SHARE, so a rename of one of them waits for it, and its trigger then
-- sees the new membership.
ALTER TABLE group_members ADD COLUMN sort_key TEXT;

UPDATE group_members AS m SET sort_key = lower(COALESCE(u.display_name, u.user_name))
FROM users AS u
WHERE u.id = m.member_id AND m.member_type = 'User';

CREATE INDEX group_members_by_name ON group_members (group_id, (sort_key COLLATE "C"), member_id)
    WHERE sort_key IS NOT NULL;

CREATE FUNCTION group_member_sort_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.member_type = 'User' THEN
        SELECT lower(COALESCE(u.display_name, u.user_name)) INTO NEW.sort_key
        FROM users AS u WHERE u.id = NEW.member_id;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER group_members_name_on_add BEFORE INSERT ON group_members
    FOR EACH ROW EXECUTE FUNCTION group_member_sort_key();

CREATE FUNCTION user_name_to_memberships() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE group_members SET sort_key = lower(COALESCE(NEW.display_name, NEW.user_name))
    WHERE member_id = NEW.id AND member_type = 'User';
    RETURN NULL;
END
$$;

CREATE TRIGGER users_name_to_memberships AFTER UPDATE OF display_name, user_name ON users
    FOR EACH ROW
    WHEN (NEW.display_name IS DISTINCT FROM OLD.display_name
        OR NEW.user_name IS DISTINCT FROM OLD.user_name)
    EXECUTE FUNCTION user_name_to_memberships();

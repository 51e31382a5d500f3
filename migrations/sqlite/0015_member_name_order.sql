-- A group's user members in the console's name order, kept beside each membership, so a page
-- of members walks the group's own index and reads one user row per member shown. Before, a
-- group of more than 10,000 members was listed by walking the organisation's name index and
-- testing each user for membership: 3.2 s at a million users for the first page of a
-- 10,001-member group whose members sort last. The key is the console's name key (display
-- name, else userName, lower-cased), kept by triggers in the transaction of each change.
ALTER TABLE group_members ADD COLUMN sort_key TEXT;

UPDATE group_members SET sort_key = (
    SELECT lower(COALESCE(u.display_name, u.user_name)) FROM users AS u
    WHERE u.id = group_members.member_id
) WHERE member_type = 'User';

CREATE INDEX group_members_by_name ON group_members (group_id, sort_key, member_id)
    WHERE sort_key IS NOT NULL;

CREATE TRIGGER group_members_name_on_add AFTER INSERT ON group_members
    WHEN NEW.member_type = 'User'
BEGIN
    UPDATE group_members SET sort_key = (
        SELECT lower(COALESCE(u.display_name, u.user_name)) FROM users AS u
        WHERE u.id = NEW.member_id
    ) WHERE group_id = NEW.group_id AND member_id = NEW.member_id;
END;

CREATE TRIGGER users_name_to_memberships AFTER UPDATE OF display_name, user_name ON users
    WHEN NEW.display_name IS NOT OLD.display_name OR NEW.user_name IS NOT OLD.user_name
BEGIN
    UPDATE group_members SET sort_key = lower(COALESCE(NEW.display_name, NEW.user_name))
        WHERE member_id = NEW.id AND member_type = 'User';
END;

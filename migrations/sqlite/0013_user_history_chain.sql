-- A user's successful changes leave the target index as well (its creation left it in 0012).
-- Each one landed on a random leaf of the index, inside the log's write transaction, and
-- PATCH /Users is most of a sync's writes. A user's history is a chain instead:
-- - `users.last_entry` is the log entry of the user's latest change. The change that writes
--   the user's row sets it, so it costs no page the change does not write anyway;
-- - `provisioning_log.prev_entry` is the entry of the change before it. The same statement
--   moves the old `last_entry` to `users.prev_entry`, returns it, and the log writes it with
--   the entry (store/scim_users.rs, provlog/mod.rs).
-- The history page follows the chain by entry id (the time key). Failed changes, rare, stay in
-- the target index, and so do all of a group's entries.
ALTER TABLE users ADD COLUMN last_entry TEXT;
ALTER TABLE users ADD COLUMN prev_entry TEXT;
ALTER TABLE provisioning_log ADD COLUMN prev_entry TEXT;

-- The chain of the entries already written: one ordered pass over the old target index (named:
-- without planner statistics SQLite would walk the whole log once per entry).
UPDATE provisioning_log SET prev_entry = chain.prev
FROM (
    SELECT p.tenant_id, p.at, p.id,
        LAG(p.id) OVER (PARTITION BY p.tenant_id, p.target_id ORDER BY p.at, p.id) AS prev
    FROM provisioning_log AS p INDEXED BY provisioning_log_target
    WHERE p.target_id IS NOT NULL AND p.operation <> 'user_read' AND p.operation <> 'group_read'
        AND p.operation <> 'user_create' AND p.operation LIKE 'user%' AND p.outcome = 'success'
) AS chain
WHERE chain.prev IS NOT NULL AND provisioning_log.tenant_id = chain.tenant_id
    AND provisioning_log.at = chain.at AND provisioning_log.id = chain.id;

UPDATE users SET last_entry = latest.id
FROM (
    SELECT p.tenant_id, p.target_id, p.id,
        ROW_NUMBER() OVER (PARTITION BY p.tenant_id, p.target_id ORDER BY p.at DESC, p.id DESC) AS n
    FROM provisioning_log AS p INDEXED BY provisioning_log_target
    WHERE p.target_id IS NOT NULL AND p.operation <> 'user_read' AND p.operation <> 'group_read'
        AND p.operation <> 'user_create' AND p.operation LIKE 'user%' AND p.outcome = 'success'
) AS latest
WHERE latest.n = 1 AND users.tenant_id = latest.tenant_id AND users.id = latest.target_id;

-- The predicate is repeated word for word by the queries that use the index
-- (store/provlog.rs IN_TARGET_INDEX).
DROP INDEX provisioning_log_target;
CREATE INDEX provisioning_log_target ON provisioning_log (tenant_id, target_id, at, id)
    WHERE target_id IS NOT NULL AND operation <> 'user_read' AND operation <> 'group_read'
        AND operation <> 'user_create' AND (outcome <> 'success' OR operation NOT LIKE 'user%');

-- A user's creation leaves the target index. A new user's id is random, so its entry landed on
-- a random leaf of the index: one page read and one page written per POST /Users, inside the
-- log's write transaction. A user's creation entry is found instead through the operation
-- index, near the user's creation time (store/provlog.rs `creation_of`); that index now ends
-- with the target, so the walk tests each creation it meets without reading its row. Groups
-- keep their creations in the target index: a deleted group's name is read from its entries.
-- The predicates are repeated word for word by the queries that use the indexes
-- (store/provlog.rs IN_TARGET_INDEX, CHANGES_ONLY).
DROP INDEX provisioning_log_target;
CREATE INDEX provisioning_log_target ON provisioning_log (tenant_id, target_id, at, id)
    WHERE target_id IS NOT NULL AND operation <> 'user_read' AND operation <> 'group_read'
        AND operation <> 'user_create';
DROP INDEX provisioning_log_operation;
CREATE INDEX provisioning_log_operation ON provisioning_log (tenant_id, operation, at, id, target_id)
    WHERE operation <> 'user_read' AND operation <> 'group_read';

-- A user's creation leaves the target index. A new user's id is random, so its entry landed on
-- a random leaf of the index: one page read and one page written per POST /Users, inside the
-- log's write transaction, which cost creations about 10% of their throughput. A user's
-- creation entry is found instead through the operation index, near the user's creation time
-- (store/provlog.rs `creation_of`). Groups keep theirs: a deleted group's name is read from its
-- entries. The predicate is repeated word for word by the queries that use the index
-- (store/provlog.rs IN_TARGET_INDEX).
DROP INDEX provisioning_log_target;
CREATE INDEX provisioning_log_target ON provisioning_log (tenant_id, target_id, at, id)
    WHERE target_id IS NOT NULL AND operation <> 'user_read' AND operation <> 'group_read'
        AND operation <> 'user_create';

-- The target index serves a resource's provisioning history (its changes) and the last name
-- known for a deleted target. Lookups, most of Entra's traffic, are left out: their targets
-- are random keys, so indexing them cost one index page written per entry. The predicate is
-- repeated word for word by the queries that use the index (store/provlog.rs CHANGES_ONLY);
-- `id` completes the history's order (at, id), so no sort is needed.
DROP INDEX provisioning_log_target;
CREATE INDEX provisioning_log_target ON provisioning_log (tenant_id, target_id, at, id)
    WHERE target_id IS NOT NULL AND operation <> 'user_read' AND operation <> 'group_read';

-- The outcome and operation indexes keep only the rare entries (failures and rejections;
-- changes), as on SQLite (where the log is also re-keyed by time, migration 0011 there): a
-- filter for the common ones walks the time index, where they are most of what it meets. The
-- queries repeat each predicate word for word (store/provlog.rs).
DROP INDEX provisioning_log_outcome;
CREATE INDEX provisioning_log_outcome ON provisioning_log (tenant_id, outcome, at, id)
    WHERE outcome <> 'success';
DROP INDEX provisioning_log_operation;
CREATE INDEX provisioning_log_operation ON provisioning_log (tenant_id, operation, at, id)
    WHERE operation <> 'user_read' AND operation <> 'group_read';

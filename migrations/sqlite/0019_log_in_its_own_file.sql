-- The provisioning log moves to a file of its own beside the directory's (`bitabiz.db` ->
-- `bitabiz-log.db`, store/mod.rs `log_file_of`), attached here as `provlog`. SQLite has one
-- write lock per file: in the directory's file each of the log's commits held the lock that
-- SCIM's writes wait for. The log's statements reach the directory's tables through an
-- attachment the other way round, which a foreign key cannot cross (organisations are never
-- deleted, so the old keys' cascade had nothing to do).
-- This creates the tables in the log's file. The rows already written move after the
-- migrations, table by table, copy first and drop second, each in a transaction of one file
-- (store/mod.rs `move_log_to_its_file`): SQLite commits the files of one transaction one
-- after the other, so a crash between them could have lost the copy.
CREATE TABLE IF NOT EXISTS provlog.provisioning_log (
    tenant_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    id TEXT NOT NULL,
    duration_us BIGINT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    operation TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    target_name TEXT,
    outcome TEXT NOT NULL,
    status BIGINT NOT NULL,
    scim_type TEXT,
    error_detail TEXT,
    client_addr TEXT NOT NULL DEFAULT '',
    request_body TEXT,
    response_body TEXT,
    parent_id TEXT,
    prev_entry TEXT,
    PRIMARY KEY (tenant_id, at, id)
) WITHOUT ROWID;

-- The same partial indexes, predicates word for word (store/provlog.rs repeats them).
CREATE INDEX IF NOT EXISTS provlog.provisioning_log_outcome
    ON provisioning_log (tenant_id, outcome, at, id)
    WHERE outcome <> 'success';
CREATE INDEX IF NOT EXISTS provlog.provisioning_log_parent
    ON provisioning_log (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS provlog.provisioning_log_operation
    ON provisioning_log (tenant_id, operation, at, id, target_id)
    WHERE operation <> 'user_read' AND operation <> 'group_read';
CREATE INDEX IF NOT EXISTS provlog.provisioning_log_target
    ON provisioning_log (tenant_id, target_id, at, id)
    WHERE target_id IS NOT NULL AND operation <> 'user_read' AND operation <> 'group_read'
        AND operation <> 'user_create' AND (outcome <> 'success' OR operation NOT LIKE 'user%');

CREATE TABLE IF NOT EXISTS provlog.provisioning_hourly (
    tenant_id TEXT NOT NULL,
    hour BIGINT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    failures BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0,
    dropped BIGINT NOT NULL DEFAULT 0,
    last_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, hour)
);

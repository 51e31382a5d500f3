-- The provisioning log is keyed by what every listing walks: (organisation, time, id). As a
-- WITHOUT ROWID table the key is the table itself, so an entry is one B-tree insert instead of
-- six (rowid table, id index, time index, outcome index, operation index, target index). An
-- entry is still found by id: its id starts with its time (hex milliseconds), which gives the
-- key. The outcome and operation indexes keep only the rare entries (failures and rejections;
-- changes): a filter for the common ones (successes; lookups) walks the time key, where they
-- are most of what it meets. The queries repeat each index's predicate word for word
-- (store/provlog.rs), as SQLite uses a partial index only then.
CREATE TABLE provisioning_log_keyed (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
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
    PRIMARY KEY (tenant_id, at, id)
) WITHOUT ROWID;

INSERT INTO provisioning_log_keyed (tenant_id, at, id, duration_us, method, path, operation,
    action, target_type, target_id, target_name, outcome, status, scim_type, error_detail,
    client_addr, request_body, response_body, parent_id)
SELECT tenant_id, at, id, duration_us, method, path, operation, action, target_type, target_id,
    target_name, outcome, status, scim_type, error_detail, client_addr, request_body,
    response_body, parent_id
FROM provisioning_log ORDER BY tenant_id, at, id;

DROP TABLE provisioning_log;
ALTER TABLE provisioning_log_keyed RENAME TO provisioning_log;

CREATE INDEX provisioning_log_outcome ON provisioning_log (tenant_id, outcome, at, id)
    WHERE outcome <> 'success';
CREATE INDEX provisioning_log_operation ON provisioning_log (tenant_id, operation, at, id)
    WHERE operation <> 'user_read' AND operation <> 'group_read';
CREATE INDEX provisioning_log_target ON provisioning_log (tenant_id, target_id, at, id)
    WHERE target_id IS NOT NULL AND operation <> 'user_read' AND operation <> 'group_read';
CREATE INDEX provisioning_log_parent ON provisioning_log (parent_id) WHERE parent_id IS NOT NULL;

-- One live first-run setup code at a time, with an expiry, and leases that let one instance at
-- a time run each background job (several instances share one database).

-- Every code ever issued, so the setup page can tell an expired or replaced code from a wrong
-- one. Codes issued before this migration had no expiry: they count as expired (0), and the
-- next start issues a fresh one.
ALTER TABLE setup_codes ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;

-- The live code: at most one row (id = 1). Issuing is one conditional upsert on this row, so
-- instances starting together cannot each issue their own.
CREATE TABLE setup_code_live (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- One row per background job: who holds it and until when. Taken and renewed by one
-- conditional upsert (only by its holder, or by anyone once it has expired). last_run_at keeps
-- the job's schedule when the lease moves to another instance.
CREATE TABLE job_leases (
    job TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_run_at BIGINT NOT NULL DEFAULT 0
);

-- Sign-in attempts are reserved before the password is checked (so concurrent attempts cannot
-- all pass the throttle); a reservation is released by its id when the attempt succeeds.
ALTER TABLE sign_in_failures ADD COLUMN attempt_id TEXT;
CREATE INDEX sign_in_failures_attempt ON sign_in_failures (attempt_id);

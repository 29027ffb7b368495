-- Issue 10: sign-in attempts counted in the database, so the check-and-count is one atomic
-- statement and every node sees the same counts. `key` names what is counted (a username
-- or a client address); the count restarts once `expires_at` (the end of its window) has
-- passed, and purge_expired removes such rows.
CREATE TABLE login_attempts (
    key        TEXT    PRIMARY KEY,
    attempts   BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX login_attempts_expires_at ON login_attempts (expires_at);

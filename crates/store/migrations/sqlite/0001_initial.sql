-- Strongroom store, SQLite schema v1.
-- Timestamps are Unix seconds (INTEGER); JSON is TEXT; booleans are INTEGER 0/1.

CREATE TABLE clients (
    client_id               TEXT    PRIMARY KEY NOT NULL,
    metadata                TEXT    NOT NULL,
    registration_token_hash TEXT,
    created_at              INTEGER NOT NULL
);

CREATE TABLE users (
    subject       TEXT    PRIMARY KEY NOT NULL,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    claims        TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE jti_cache (
    namespace  TEXT    NOT NULL,
    jti        TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, jti)
);
CREATE INDEX jti_cache_expires_at ON jti_cache (expires_at);

CREATE TABLE pushed_requests (
    key        TEXT    PRIMARY KEY NOT NULL,
    client_id  TEXT    NOT NULL,
    grant_id   TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0,
    data       TEXT    NOT NULL
);
CREATE INDEX pushed_requests_expires_at ON pushed_requests (expires_at);

CREATE TABLE codes (
    key        TEXT    PRIMARY KEY NOT NULL,
    client_id  TEXT    NOT NULL,
    grant_id   TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0,
    data       TEXT    NOT NULL
);
CREATE INDEX codes_expires_at ON codes (expires_at);

CREATE TABLE tokens (
    id         TEXT    PRIMARY KEY NOT NULL,
    kind       TEXT    NOT NULL,
    grant_id   TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0,
    data       TEXT    NOT NULL
);
CREATE INDEX tokens_grant_id ON tokens (grant_id);
CREATE INDEX tokens_client_id ON tokens (client_id);
CREATE INDEX tokens_subject ON tokens (subject);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY NOT NULL,
    subject    TEXT    NOT NULL,
    auth_time  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX sessions_subject ON sessions (subject);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE consents (
    subject    TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (subject, client_id)
);

-- seq keeps "oldest first" stable when two keys share a created_at second.
CREATE TABLE signing_keys (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    kid               TEXT    NOT NULL UNIQUE,
    alg               TEXT    NOT NULL,
    state             TEXT    NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    public_jwk        TEXT    NOT NULL,
    private_encrypted BLOB    NOT NULL,
    created_at        INTEGER NOT NULL,
    state_changed_at  INTEGER NOT NULL
);

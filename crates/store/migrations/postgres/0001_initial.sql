-- Strongroom store, PostgreSQL schema v1.
-- Timestamps are Unix seconds (BIGINT); JSON is JSONB; private keys are BYTEA.

CREATE TABLE clients (
    client_id               TEXT   PRIMARY KEY,
    metadata                JSONB  NOT NULL,
    registration_token_hash TEXT,
    created_at              BIGINT NOT NULL
);

CREATE TABLE users (
    subject       TEXT   PRIMARY KEY,
    username      TEXT   NOT NULL UNIQUE,
    password_hash TEXT   NOT NULL,
    claims        JSONB  NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE jti_cache (
    namespace  TEXT   NOT NULL,
    jti        TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, jti)
);
CREATE INDEX jti_cache_expires_at ON jti_cache (expires_at);

CREATE TABLE pushed_requests (
    key        TEXT    PRIMARY KEY,
    client_id  TEXT    NOT NULL,
    grant_id   TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL,
    used       BOOLEAN NOT NULL DEFAULT FALSE,
    data       JSONB   NOT NULL
);
CREATE INDEX pushed_requests_expires_at ON pushed_requests (expires_at);

CREATE TABLE codes (
    key        TEXT    PRIMARY KEY,
    client_id  TEXT    NOT NULL,
    grant_id   TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL,
    used       BOOLEAN NOT NULL DEFAULT FALSE,
    data       JSONB   NOT NULL
);
CREATE INDEX codes_expires_at ON codes (expires_at);

CREATE TABLE tokens (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    grant_id   TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    issued_at  BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE,
    data       JSONB   NOT NULL
);
CREATE INDEX tokens_grant_id ON tokens (grant_id);
CREATE INDEX tokens_client_id ON tokens (client_id);
CREATE INDEX tokens_subject ON tokens (subject);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE sessions (
    id         TEXT   PRIMARY KEY,
    subject    TEXT   NOT NULL,
    auth_time  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    data       JSONB  NOT NULL
);
CREATE INDEX sessions_subject ON sessions (subject);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE consents (
    subject    TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    scope      TEXT   NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (subject, client_id)
);

-- seq keeps "oldest first" stable when two keys share a created_at second.
CREATE TABLE signing_keys (
    seq               BIGSERIAL PRIMARY KEY,
    kid               TEXT   NOT NULL UNIQUE,
    alg               TEXT   NOT NULL,
    state             TEXT   NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    public_jwk        JSONB  NOT NULL,
    private_encrypted BYTEA  NOT NULL,
    created_at        BIGINT NOT NULL,
    state_changed_at  BIGINT NOT NULL
);

-- Issue 13: the audit log. One row per security-relevant event; `data` is the whole event
-- as the server wrote it (never a secret or token value). Queried by client or subject,
-- newest first; old rows are removed by retention, not by expiry.
CREATE TABLE audit_events (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT NOT NULL,
    event     TEXT   NOT NULL,
    client_id TEXT,
    subject   TEXT,
    data      JSONB  NOT NULL
);
CREATE INDEX audit_events_client_id ON audit_events (client_id, id);
CREATE INDEX audit_events_subject ON audit_events (subject, id);
CREATE INDEX audit_events_at ON audit_events (at);

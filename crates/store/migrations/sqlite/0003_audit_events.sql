-- Issue 13: the audit log. One row per security-relevant event; `data` is the whole event
-- as the server wrote it (never a secret or token value). Queried by client or subject,
-- newest first; old rows are removed by retention, not by expiry.
CREATE TABLE audit_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    event     TEXT    NOT NULL,
    client_id TEXT,
    subject   TEXT,
    data      TEXT    NOT NULL
);
CREATE INDEX audit_events_client_id ON audit_events (client_id, id);
CREATE INDEX audit_events_subject ON audit_events (subject, id);
CREATE INDEX audit_events_at ON audit_events (at);

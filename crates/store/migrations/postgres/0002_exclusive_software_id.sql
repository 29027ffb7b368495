-- Issue 12: one client per software statement's software_id, unless the directory allows
-- several. The column is set only for such exclusive registrations; the unique index makes
-- a second registration of the same software fail in the insert itself (NULLs never clash).
ALTER TABLE clients ADD COLUMN exclusive_software_id TEXT;
CREATE UNIQUE INDEX clients_exclusive_software_id ON clients (exclusive_software_id);

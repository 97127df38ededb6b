-- Streamboard schema, version 1: bookkeeping about this database itself.
-- Migrations are append-only: never edit a migration that has shipped; add a new one.
CREATE TABLE app_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

INSERT INTO app_meta (key, value) VALUES ('created_at', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

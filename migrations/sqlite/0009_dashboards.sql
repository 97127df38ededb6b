-- Streamboard schema, version 9: user-built dashboards.
-- Append-only: never edit; add a new migration.

-- A dashboard as the API's JSON document (contract::dashboard::Dashboard), checked before it
-- is written. Names need not be unique: an imported copy sits beside its original.
CREATE TABLE dashboard (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
) STRICT;

CREATE INDEX dashboard_name ON dashboard (name);

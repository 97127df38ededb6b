-- Streamboard schema, version 8: users, login sessions and API tokens.
-- Append-only: never edit; add a new migration.

-- A person who logs in. `password_hash` is an argon2id PHC string; `role` is `viewer`,
-- `editor` or `admin`.
CREATE TABLE auth_user (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role           TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    password_hash  TEXT NOT NULL,
    created_ms     INTEGER NOT NULL
) STRICT;

-- A logged-in browser. Only the SHA-256 of the cookie's secret is stored, so a copy of the
-- database cannot be replayed as a cookie. Deleting the row ends the session at once.
CREATE TABLE auth_session (
    secret_hash  BLOB PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES auth_user (id) ON DELETE CASCADE,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL
) STRICT;

CREATE INDEX auth_session_user ON auth_session (user_id);

-- A script's bearer token, scoped to a role. Only the SHA-256 of the token is stored; the
-- token itself is shown once, when it is created. A revoked token keeps its row (audit).
CREATE TABLE auth_token (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    secret_hash  BLOB NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    created_by   TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    last_used_ms INTEGER,
    revoked_ms   INTEGER
) STRICT;

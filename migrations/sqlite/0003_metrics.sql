-- Streamboard schema, version 3: metric definitions and their history tiers.
-- (Version 2 is the consumer's checkpoints.) Append-only: never edit; add a new migration.

-- One row per metric *version*. Changing a definition retires its row (retired_ms) and inserts
-- a new one with a new id, so history rows always describe the definition that produced them
-- and a changed definition starts new buckets from the change on. Deleting retires the row and
-- keeps its history until retention ages it out (no cascade): nothing stored is rewritten.
-- Built-in metrics (records, bytes, ... per stream) have rows too, with builtin = 1.
CREATE TABLE metric (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    stream      TEXT NOT NULL,
    builtin     INTEGER NOT NULL DEFAULT 0,
    -- The definition as JSON (same field names as the API and the TOML file); NULL for built-ins.
    definition  TEXT,
    created_ms  INTEGER NOT NULL,
    retired_ms  INTEGER
) STRICT;

CREATE UNIQUE INDEX metric_active_name ON metric (name) WHERE retired_ms IS NULL;

-- Aggregates of one series of one metric over one period of a tier (1, 60 or 3600 seconds).
-- `series` is the JSON array of the dimension labels ('[]' without dimensions). `hist` is the
-- HdrHistogram in the V2 deflate encoding, NULL for metrics without a value histogram.
-- Rows are written by the engine's flush (UPSERT merging deltas) in the same transaction as the
-- consumer's checkpoints.
CREATE TABLE metric_bucket (
    metric_id  INTEGER NOT NULL REFERENCES metric (id),
    tier_s     INTEGER NOT NULL,
    series     TEXT NOT NULL,
    start_s    INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    sum        REAL NOT NULL,
    min        REAL NOT NULL,
    max        REAL NOT NULL,
    hist       BLOB,
    PRIMARY KEY (metric_id, tier_s, series, start_s)
) STRICT, WITHOUT ROWID;

CREATE INDEX metric_bucket_age ON metric_bucket (tier_s, start_s);

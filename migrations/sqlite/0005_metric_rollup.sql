-- Streamboard schema, version 5: open roll-ups of the 1-minute and 1-hour tiers.
-- Append-only: never edit; add a new migration.

-- A 1-minute or 1-hour `metric_bucket` row whose period has received 1-second data that the
-- row may not include yet. The flush writes only 1-second rows (and these markers) in its
-- transaction; a marked row is rebuilt from the tier below it (1-minute rows from 1-second
-- rows, 1-hour rows from 1-minute rows) when its period has closed, and before any read of its
-- tier, so a marked row is never trusted as stored. The rebuild is exact and idempotent, which
-- makes it safe after a kill -9 at any moment: the 1-second rows and the markers are committed
-- together with the consumer's checkpoints. Retention keeps the rows a marked period needs.
CREATE TABLE metric_rollup (
    metric_id  INTEGER NOT NULL REFERENCES metric (id),
    tier_s     INTEGER NOT NULL,
    series     TEXT NOT NULL,
    start_s    INTEGER NOT NULL,
    PRIMARY KEY (metric_id, tier_s, series, start_s)
) STRICT, WITHOUT ROWID;

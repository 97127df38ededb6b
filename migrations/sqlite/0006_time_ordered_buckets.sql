-- Streamboard schema, version 6: `metric_bucket` and `metric_rollup` keyed in time order inside
-- a metric. Append-only: never edit; add a new migration.
--
-- Why: migrations 0003 and 0005 key rows series-major, (metric_id, tier_s, series, start_s).
-- Every flush writes the newest second of every changed series, and with that key the newest
-- rows of 10,000 series sit on ~10,000 different B-tree leaf pages: once the table outgrows the
-- page cache, each flush read and rewrote ~10,000 pages (~40 MB of WAL), and flushes got slower
-- as the table grew. Keyed (metric_id, tier_s, start_s, series), the rows one flush writes for
-- a metric are adjacent at the end of its range: a few dozen pages per flush, appended.
--
-- Reads: range reads of one metric and tier (`start_s >= ? AND start_s < ?`: the history query,
-- the roll-up rebuild of one period) use the key prefix directly and read rows in time order.
-- Reads in series order (one series' history, the export's series-by-series pages) use the
-- partial index `metric_bucket_series` below for the 1-minute and 1-hour tiers. It leaves out
-- the 1-second tier on purpose: the flush writes 1-second rows every second, and an index in
-- series order would put their entries back on ~10,000 scattered pages. Roll-up rows are written
-- once per period (a minute, an hour), so indexing them costs little. The price: a read of ONE
-- series of the 1-second tier scans every series of the metric over the range (at most the
-- 2 hours the history query reads at 1 s, or an export's range at 1 s resolution).
--
-- The data is copied as stored (HdrHistogram V2 blobs unchanged).

CREATE TABLE metric_bucket_v6 (
    metric_id  INTEGER NOT NULL REFERENCES metric (id),
    tier_s     INTEGER NOT NULL,
    series     TEXT NOT NULL,
    start_s    INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    sum        REAL NOT NULL,
    min        REAL NOT NULL,
    max        REAL NOT NULL,
    hist       BLOB,
    PRIMARY KEY (metric_id, tier_s, start_s, series)
) STRICT, WITHOUT ROWID;

INSERT INTO metric_bucket_v6 (metric_id, tier_s, series, start_s, count, sum, min, max, hist)
SELECT metric_id, tier_s, series, start_s, count, sum, min, max, hist FROM metric_bucket
ORDER BY metric_id, tier_s, start_s, series;

DROP TABLE metric_bucket;
ALTER TABLE metric_bucket_v6 RENAME TO metric_bucket;

-- Retention deletes by age across metrics (same index as 0003).
CREATE INDEX metric_bucket_age ON metric_bucket (tier_s, start_s);

-- Series order for the 1-minute and 1-hour tiers (see above). SQLite uses a partial index only
-- when the query itself says `tier_s <> 1`: the queries that want it add that term literally (not
-- `tier_s > 1`, which the planner would take as the index range instead of `tier_s = ?`).
CREATE INDEX metric_bucket_series ON metric_bucket (metric_id, tier_s, series, start_s)
WHERE tier_s <> 1;

-- Same columns and meaning as 0005; only the key order changes (the flush marks the periods of
-- 10,000 series at once, and readers look marks up by metric, tier and time range).
CREATE TABLE metric_rollup_v6 (
    metric_id  INTEGER NOT NULL REFERENCES metric (id),
    tier_s     INTEGER NOT NULL,
    series     TEXT NOT NULL,
    start_s    INTEGER NOT NULL,
    PRIMARY KEY (metric_id, tier_s, start_s, series)
) STRICT, WITHOUT ROWID;

INSERT INTO metric_rollup_v6 (metric_id, tier_s, series, start_s)
SELECT metric_id, tier_s, series, start_s FROM metric_rollup
ORDER BY metric_id, tier_s, start_s, series;

DROP TABLE metric_rollup;
ALTER TABLE metric_rollup_v6 RENAME TO metric_rollup;

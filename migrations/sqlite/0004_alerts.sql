-- Streamboard schema, version 4: alert rules, their instances, transitions and the outbox.
-- Append-only: never edit; add a new migration.

-- The rule as the API's JSON (same field names), normalised by validation.
CREATE TABLE alert_rule (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    spec        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
) STRICT;

-- Each instance's state as of its last transition, so a restart neither re-fires a firing
-- alert nor forgets to resolve it. Written in the same transaction as the transition.
CREATE TABLE alert_instance (
    rule_id       INTEGER NOT NULL REFERENCES alert_rule (id) ON DELETE CASCADE,
    instance      TEXT NOT NULL,
    state         TEXT NOT NULL,
    since_ms      INTEGER NOT NULL,
    last_data_ms  INTEGER NOT NULL,
    PRIMARY KEY (rule_id, instance)
) STRICT;

-- Every transition of every instance. No foreign key: history outlives a deleted rule.
-- `notification`: 'sent' (outbox rows written), 'silenced', or 'none'.
CREATE TABLE alert_transition (
    id            INTEGER PRIMARY KEY,
    rule_id       INTEGER NOT NULL,
    rule          TEXT NOT NULL,
    metric        TEXT NOT NULL,
    instance      TEXT NOT NULL,
    from_state    TEXT NOT NULL,
    to_state      TEXT NOT NULL,
    value         REAL,
    threshold     REAL NOT NULL,
    at_ms         INTEGER NOT NULL,
    severity      TEXT NOT NULL,
    notification  TEXT NOT NULL,
    in_app        INTEGER NOT NULL
) STRICT;

CREATE INDEX alert_transition_at ON alert_transition (at_ms);
CREATE INDEX alert_transition_rule ON alert_transition (rule_id, at_ms);

-- The durable outbox: one row per (transition, external target), written with the transition.
-- A row is delivered at most once successfully (delivered_ms set in the same statement that
-- records success); failures back off via next_attempt_ms; after too many it is given up
-- (failed_ms) with the last error kept.
CREATE TABLE alert_outbox (
    id               INTEGER PRIMARY KEY,
    transition_id    INTEGER NOT NULL REFERENCES alert_transition (id),
    target           TEXT NOT NULL,
    payload          TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    delivered_ms     INTEGER,
    failed_ms        INTEGER,
    last_error       TEXT,
    UNIQUE (transition_id, target)
) STRICT;

CREATE INDEX alert_outbox_pending ON alert_outbox (target, id)
    WHERE delivered_ms IS NULL AND failed_ms IS NULL;

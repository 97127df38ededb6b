-- Streamboard schema, version 7: notification templates and grouped notifications.
-- Append-only: never edit; add a new migration.

-- The template the row's payload is rendered with at delivery (the rule's template for the
-- target's kind when the transition was stored); NULL sends the JSON payload.
ALTER TABLE alert_outbox ADD COLUMN template TEXT;

-- The in-app text rendered from the rule's in-app template; NULL: the default text.
ALTER TABLE alert_transition ADD COLUMN message TEXT;

-- Grouped notifications (rules with `series = "each"` and a group interval): NULL: not
-- grouped; 0: notifying, waiting for its group's notification; 1: sent in a group (the
-- group's outbox rows carry its first transition's id).
ALTER TABLE alert_transition ADD COLUMN grouped INTEGER;

CREATE INDEX alert_transition_waiting ON alert_transition (rule_id, id) WHERE grouped = 0;

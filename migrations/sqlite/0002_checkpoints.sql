-- Streamboard schema, version 2: consumer checkpoints.
-- One row per (application, stream, shard): the last sequence number (and KPL sub-sequence)
-- whose effect is stored, and whether the shard has been read to its end. Written in the same
-- transaction as the effect of the records it covers.
CREATE TABLE consumer_checkpoints (
    application     TEXT    NOT NULL,
    stream          TEXT    NOT NULL,
    shard           TEXT    NOT NULL,
    sequence_number TEXT,
    sub_sequence    INTEGER,
    shard_finished  INTEGER NOT NULL DEFAULT 0 CHECK (shard_finished IN (0, 1)),
    updated_at      TEXT    NOT NULL,
    PRIMARY KEY (application, stream, shard)
) STRICT;

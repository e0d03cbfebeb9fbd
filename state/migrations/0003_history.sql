-- History: what a record belongs to (a line item's deal, a note's lead), keys waiting for another key, and mapping
-- drift found by the daemon or a writer.

-- The record another record belongs to, as a key (`deal:77`), written by the caller with the shadow, '' when it
-- belongs to none, NULL for records stored before this version (the caller fills those in once).
ALTER TABLE records ADD COLUMN ref TEXT;
CREATE INDEX records_ref ON records (ref, kind) WHERE ref <> '';
CREATE INDEX records_unreferenced ON records (kind) WHERE ref IS NULL;

-- A destination key that cannot be written before another key (`on_key`: a deal before its contact reached the
-- destination, or before a Sell record is known). Due again when the awaited key's outcome finishes in the same
-- destination, or when a change of that record is stored, else after a growing recheck delay.
CREATE TABLE waits (
    sink        TEXT NOT NULL,
    key         TEXT NOT NULL,
    on_key      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    since       REAL NOT NULL,                -- waiting on on_key since
    checks      INTEGER NOT NULL DEFAULT 1,   -- times the key was found still waiting
    PRIMARY KEY (sink, key)
) WITHOUT ROWID;
CREATE INDEX waits_on ON waits (on_key, sink);

-- When the key was last claimed: a link written after it was claimed releases a waiter at once.
ALTER TABLE outbox ADD COLUMN claimed_at REAL;

-- Mapping drift: something the configuration names that no longer exists where it should.
CREATE TABLE drift (
    scope       TEXT NOT NULL,                -- who found it: "sell" (the daemon's check) or a destination name
    subject     TEXT NOT NULL,                -- what drifted: a config key, a destination field or product
    problem     TEXT NOT NULL,
    since       REAL NOT NULL,
    PRIMARY KEY (scope, subject)
) WITHOUT ROWID;

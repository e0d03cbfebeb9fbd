-- Feedback to Sell: the outcome of each person in each destination written back on the Sell record.
-- `outcomes`: the latest finishing outcome of a key in a destination that feeds back (delivered, skipped, dead,
-- deleted) with its reason: a change of it queues the key for the `feedback` queue (a delivery like any other).
CREATE TABLE outcomes (
    key         TEXT NOT NULL,
    sink        TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    seq         INTEGER NOT NULL,             -- the newest delivery it settled
    at          REAL NOT NULL,
    PRIMARY KEY (key, sink)
) WITHOUT ROWID;
-- `feedback`: what syncd wrote on a Sell record: the tags it set there and still owns (only those it may remove),
-- and its recent writes, each noted before it is sent (their echo on the Firehose is recognised by them).
CREATE TABLE feedback (
    kind        TEXT NOT NULL,
    record_id   INTEGER NOT NULL,
    owned       TEXT NOT NULL DEFAULT '[]',   -- JSON list of tag names
    writes      TEXT NOT NULL DEFAULT '[]',   -- JSON list of {"tags": [...], "fields": {...}, "at": epoch s}, newest last
    updated_at  REAL NOT NULL,
    PRIMARY KEY (kind, record_id)
) WITHOUT ROWID

-- A key's deliveries and its outbox rows found by (key, sink) instead of (sink, key): a page's deliveries go to the
-- same key in every destination, so their index entries now share one leaf page instead of one page per
-- destination (each page a transaction dirties is written whole to the WAL: at 1M deliveries, most of what a page
-- commits).
DROP INDEX deliveries_key;
CREATE INDEX deliveries_key ON deliveries (key, sink, status);

CREATE TABLE outbox_new (
    sink        TEXT NOT NULL,
    key         TEXT NOT NULL,
    first_seq   INTEGER NOT NULL,
    due_at      REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    claimed     INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    claims      INTEGER NOT NULL DEFAULT 0,
    claimed_at  REAL,
    claimed_by  TEXT,
    unsure      INTEGER NOT NULL DEFAULT 0,
    verify_at   REAL,
    PRIMARY KEY (key, sink)
);
INSERT INTO outbox_new (sink, key, first_seq, due_at, attempts, claimed, last_error, claims, claimed_at, claimed_by,
                        unsure, verify_at)
SELECT sink, key, first_seq, due_at, attempts, claimed, last_error, claims, claimed_at, claimed_by, unsure, verify_at
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_claim ON outbox (sink, claimed, first_seq);

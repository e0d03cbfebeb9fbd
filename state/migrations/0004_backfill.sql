-- History carried from Sell's Core API (backfills) beside the Firehose, and the proof that nothing is missing.
--
-- The shadow remembers what wrote it: a change read from a stream ('stream') or a record read from the Core API
-- ('snapshot'), the time of that version (a change's event time, a snapshot's updated_at, epoch seconds), the
-- store's seq of the event that wrote it (a backfill tells what was written after it captured the positions),
-- and the last backfill whose scan saw the record (what a finished scan did not see may be gone from Sell).
ALTER TABLE records ADD COLUMN origin TEXT NOT NULL DEFAULT 'stream';
ALTER TABLE records ADD COLUMN version_at REAL;
ALTER TABLE records ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN seen_job INTEGER;

-- A lower bound on when the oldest event a stream has not read yet was appended (epoch seconds): Sell drops it,
-- and the position with it, 72 hours later. At the top it is when the page was read, below the top, the event
-- time of the newest change read.
ALTER TABLE positions ADD COLUMN unread_since REAL;
UPDATE positions SET unread_since = updated_at WHERE at_top = 1;

-- Work the daemon carries out for a command (or for itself): backfills and reconciliations. A command queues a
-- job and follows it here, the daemon that owns the state file runs it with its own limiters.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL CHECK (kind IN ('backfill', 'reconcile')),
    params       TEXT NOT NULL,                 -- JSON: what to do
    reason       TEXT NOT NULL DEFAULT '',      -- why: start, expired, operator
    state        TEXT NOT NULL DEFAULT 'requested'
                 CHECK (state IN ('requested', 'running', 'done', 'failed', 'cancelled')),
    capture_seq  INTEGER,                       -- a backfill: the highest event seq when it captured the positions
    result       TEXT,                          -- JSON: what came of it
    error        TEXT,
    requested_at REAL NOT NULL,
    started_at   REAL,
    finished_at  REAL,
    updated_at   REAL NOT NULL
);
CREATE INDEX jobs_open ON jobs (state, id);

-- One row per part of a backfill (a Core API resource read in id order): where its scan stands, so a backfill
-- that stopped (SIGKILL included) goes on from the last page it stored, and how far it has come.
CREATE TABLE backfill_parts (
    job          INTEGER NOT NULL,
    part         TEXT NOT NULL,
    ord          INTEGER NOT NULL,              -- parts run in this order (look-up data before what needs it)
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'scanning', 'done')),
    cursor_offset INTEGER NOT NULL DEFAULT -1,  -- the list position of the last record stored (-1: none yet)
    cursor_id    INTEGER,                       -- that record's id (the next page must reach back to it)
    first_id     INTEGER,                       -- the lowest id of the list when the scan began (progress)
    top_id       INTEGER,                       -- the highest id when the scan began (progress)
    records      INTEGER NOT NULL DEFAULT 0,    -- records stored
    requests     INTEGER NOT NULL DEFAULT 0,    -- Core API requests made for them
    started_at   REAL,
    finished_at  REAL,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (job, part)
) WITHOUT ROWID

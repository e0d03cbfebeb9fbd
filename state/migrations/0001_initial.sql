-- The first schema: positions, events, the shadow, deliveries and their per-key outbox, links, dead letters.

CREATE TABLE positions (
    stream      TEXT PRIMARY KEY,
    position    TEXT NOT NULL,
    at_top      INTEGER NOT NULL DEFAULT 0,
    updated_at  REAL NOT NULL,
    expired     INTEGER NOT NULL DEFAULT 0,
    stopped     TEXT                          -- why polling stopped (401/403), NULL while it runs
);

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    stream      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    record_id   INTEGER NOT NULL,
    action      TEXT NOT NULL,
    sequence    INTEGER NOT NULL,
    event_id    TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    ingested_at REAL NOT NULL,
    stale       INTEGER NOT NULL DEFAULT 0,   -- older than the shadow when it arrived: stored, not delivered
    body        BLOB NOT NULL,
    UNIQUE (kind, record_id, sequence, action)
);
CREATE INDEX events_ingested ON events (ingested_at);

-- The shadow: the last known state of every Sell record.
CREATE TABLE records (
    kind        TEXT NOT NULL,
    record_id   INTEGER NOT NULL,
    sequence    INTEGER NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0,
    email       TEXT NOT NULL DEFAULT '',
    body        BLOB NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (kind, record_id)
) WITHOUT ROWID;
CREATE INDEX records_email ON records (email) WHERE email <> '';

CREATE TABLE deliveries (
    sink        TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    key         TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'skipped', 'dead')),
    reason      TEXT,
    dead_letter INTEGER,
    created_at  REAL NOT NULL,
    updated_at  REAL,
    PRIMARY KEY (seq, sink)
) WITHOUT ROWID;
CREATE INDEX deliveries_key ON deliveries (sink, key, status);
CREATE INDEX deliveries_status ON deliveries (sink, status, seq);

-- One row per destination key with pending deliveries: what dispatchers claim.
CREATE TABLE outbox (
    sink        TEXT NOT NULL,
    key         TEXT NOT NULL,
    first_seq   INTEGER NOT NULL,
    due_at      REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    claimed     INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    PRIMARY KEY (sink, key)
);
CREATE INDEX outbox_claim ON outbox (sink, claimed, first_seq);

CREATE TABLE links (
    sink        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    record_id   INTEGER NOT NULL,
    remote_id   TEXT,                         -- the record's id in the destination
    digest      TEXT,                         -- digest of the last payload written (unchanged -> not sent again)
    sent        BLOB,                         -- the last payload written, as JSON (for tag removals, renames)
    updated_at  REAL NOT NULL,
    PRIMARY KEY (sink, kind, record_id)
) WITHOUT ROWID;
CREATE INDEX links_remote ON links (sink, remote_id);

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sink        TEXT NOT NULL,
    key         TEXT NOT NULL,
    reason      TEXT NOT NULL,
    http_status INTEGER,
    request     TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL
);
CREATE INDEX dead_letters_sink ON dead_letters (sink, id);

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    stream      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    raw         BLOB NOT NULL,
    created_at  REAL NOT NULL
);

-- Destination state other processes (syncd status) need to see: why it is paused, and until when.
CREATE TABLE sink_state (
    sink         TEXT PRIMARY KEY,
    paused       TEXT,
    paused_until REAL,
    updated_at   REAL NOT NULL
);

-- Running totals of outcomes, so counts survive the pruning of old events.
CREATE TABLE totals (
    sink        TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    n           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sink, outcome)
) WITHOUT ROWID;

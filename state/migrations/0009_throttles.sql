-- Throttle pauses of each API account (Sell's token, each destination): until when every call waits, for status
-- readers (a pause starting or growing replaces the row).
CREATE TABLE throttles (
    api         TEXT PRIMARY KEY,
    until       REAL NOT NULL,
    updated_at  REAL NOT NULL
)

"""Ingest: one page of a source stream stored in ONE transaction (events, shadow, deliveries, quarantine, position).

The caller hands over the page's rows and where each goes (routes); the store never looks inside a body.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from state.base import StoreBase
from state.rows import EventRow, Quarantined, Route

TEMP_TABLES = (
    """CREATE TEMP TABLE IF NOT EXISTS incoming (
        pos INTEGER PRIMARY KEY, stream TEXT, kind TEXT, record_id INTEGER, action TEXT, sequence INTEGER,
        event_id TEXT, occurred_at TEXT, body BLOB, rec_body BLOB, email TEXT, deleted INTEGER, bare INTEGER,
        ref TEXT NOT NULL DEFAULT '', version_at REAL, snapshot INTEGER NOT NULL DEFAULT 0, event_seq INTEGER,
        stale INTEGER NOT NULL DEFAULT 0)""",
    "CREATE TEMP TABLE IF NOT EXISTS incoming_routes (pos INTEGER, sink TEXT, key TEXT)",
    # The page's earlier rows of a record (STALE_STREAM), found by search rather than by comparing every pair.
    "CREATE INDEX IF NOT EXISTS temp.incoming_record ON incoming (kind, record_id, pos)",
)

# Which version of a record the shadow keeps (STALE_STREAM and STALE_SNAPSHOT mark what loses; the upserts below
# only take what does not):
#
# - stream changes of a record are ordered by their sequence: the highest wins, and on equal sequences a delete;
# - a stream change against a shadow a snapshot wrote (a record read from the Core API by a backfill) loses only
#   when it occurred strictly before the snapshot's updated_at: the snapshot already holds it. Sell's v2
#   `meta.version` is not known to count like the Firehose's `sequence`, so the two are never compared; on the
#   same second the change wins (the stream also carries every change after it, so the shadow ends up right);
# - a snapshot replaces a shadow written before its backfill captured the stream positions (every such change was
#   read before the snapshot was), unless that version is provably newer (a later time); a shadow a stream change
#   wrote after the capture keeps it (that change, and every later one, come from the stream); against another
#   snapshot the later updated_at wins, then the higher version.
#
# A "bare" delete (only the id) keeps the last known body, so deletes can still find the e-mail the record had and
# what it belonged to.
STALE_STREAM = """
UPDATE temp.incoming SET stale = 1 WHERE EXISTS (SELECT 1 FROM records r
    WHERE r.kind = incoming.kind AND r.record_id = incoming.record_id AND CASE r.origin
        WHEN 'snapshot' THEN incoming.version_at < r.version_at
        ELSE incoming.sequence < r.sequence END)
 OR EXISTS (SELECT 1 FROM temp.incoming i WHERE i.kind = incoming.kind AND i.record_id = incoming.record_id
    AND i.pos < incoming.pos AND i.sequence > incoming.sequence)
"""
STALE_SNAPSHOT = """
UPDATE temp.incoming SET stale = 1 WHERE EXISTS (SELECT 1 FROM records r
    WHERE r.kind = incoming.kind AND r.record_id = incoming.record_id AND (
        r.version_at > incoming.version_at
        OR (r.event_seq > :capture_seq AND (r.origin = 'stream' OR r.version_at > incoming.version_at
            OR (r.version_at = incoming.version_at AND r.sequence >= incoming.sequence)))))
"""
_EVENT_SEQ = """
UPDATE temp.incoming SET event_seq = (SELECT e.seq FROM events e WHERE e.kind = incoming.kind
    AND e.record_id = incoming.record_id AND e.sequence = incoming.sequence AND e.action = incoming.action)
"""
_UPSERT_SHADOW = """
INSERT INTO records (kind, record_id, sequence, deleted, email, body, updated_at, ref, origin, version_at, event_seq)
SELECT kind, record_id, sequence, deleted, email, rec_body, :now, ref, IIF(snapshot, 'snapshot', 'stream'),
       version_at, event_seq FROM temp.incoming
WHERE stale = 0 AND bare = 0 ORDER BY pos
ON CONFLICT (kind, record_id) DO UPDATE SET
    sequence = excluded.sequence, deleted = excluded.deleted, body = excluded.body,
    updated_at = excluded.updated_at, ref = excluded.ref, origin = excluded.origin, version_at = excluded.version_at,
    event_seq = excluded.event_seq
WHERE excluded.origin = 'snapshot' OR records.origin = 'snapshot'
   OR excluded.sequence > records.sequence
   OR (excluded.sequence = records.sequence AND excluded.deleted >= records.deleted)
"""
# The e-mail of a record the upsert above updated, set only where it changed: naming a column in an UPDATE rewrites
# its index entry even when the value is the same (one more page written per event). The winning row of the page
# is the one whose event the shadow now points at.
_UPDATE_EMAIL = """
UPDATE records SET email = i.email FROM temp.incoming i
WHERE i.kind = records.kind AND i.record_id = records.record_id AND i.stale = 0 AND i.bare = 0
  AND i.event_seq = records.event_seq AND records.email <> i.email
"""
_UPSERT_BARE_DELETE = """
INSERT INTO records (kind, record_id, sequence, deleted, email, body, updated_at, ref, origin, version_at, event_seq)
SELECT kind, record_id, sequence, 1, email, rec_body, :now, ref, IIF(snapshot, 'snapshot', 'stream'), version_at,
       event_seq FROM temp.incoming
WHERE stale = 0 AND bare = 1 ORDER BY pos
ON CONFLICT (kind, record_id) DO UPDATE SET
    sequence = excluded.sequence, deleted = 1, updated_at = excluded.updated_at, origin = excluded.origin,
    version_at = COALESCE(excluded.version_at, records.version_at), event_seq = excluded.event_seq
WHERE excluded.origin = 'snapshot' OR records.origin = 'snapshot' OR excluded.sequence >= records.sequence
"""
QUEUE_DELIVERIES = """
INSERT OR IGNORE INTO deliveries (sink, seq, key, status, created_at)
SELECT r.sink, e.seq, r.key, 'pending', :now FROM temp.incoming i
JOIN temp.incoming_routes r ON r.pos = i.pos JOIN events e ON e.seq = i.event_seq
WHERE e.seq > :before AND e.stale = 0
"""
# The outbox rows of the page's new deliveries. `+sink, +key`: grouping by the plain columns lets SQLite walk the
# whole deliveries_key index (sorted by key and sink) instead of the page's few rows by primary key, a cost that grew
# with the store (57 ms a page at 1M deliveries).
QUEUE_KEYS = """
INSERT INTO outbox (sink, key, first_seq, due_at)
SELECT sink, key, MIN(seq), :now FROM deliveries WHERE seq > :before
GROUP BY +sink, +key ON CONFLICT (sink, key) DO NOTHING
"""
# Keys waiting on a record of the page (a deal waiting for its stage to be known) are due at once.
_RELEASE_WAITERS = """
UPDATE outbox SET due_at = MIN(due_at, :now) WHERE (sink, key) IN (
    SELECT w.sink, w.key FROM temp.incoming i JOIN waits w ON w.on_key = i.kind || ':' || i.record_id
    WHERE i.stale = 0)
"""


@dataclass(frozen=True, slots=True)
class StreamPosition:
    stream: str
    position: str
    at_top: bool
    updated_at: float
    expired: bool
    stopped: str | None
    # A lower bound on when the oldest event not read yet was appended (epoch seconds; None when unknown): Sell drops
    # it, and the position with it, 72 hours later.
    unread_since: float | None = None
    failures: int = 0  # reads of the page after `position` that failed in a row
    last_error: str | None = None  # why the last of them failed


@dataclass(frozen=True, slots=True)
class IngestResult:
    received: int
    new: int
    duplicates: int
    stale: int
    deliveries: int
    quarantined: int


class Ingesting(StoreBase):
    """Positions and the ingest of pages."""

    async def position(self, stream: str) -> StreamPosition | None:
        async with (
            self.reading() as db,
            db.execute(
                f"{POSITION_COLUMNS} WHERE stream = ?",
                (stream,),
            ) as cur,
        ):
            row = await cur.fetchone()
        return position_of(row) if row else None

    async def ingest(
        self,
        stream: str,
        events: Sequence[EventRow],
        routes: Sequence[Route] = (),
        *,
        position: str,
        at_top: bool,
        quarantined: Sequence[Quarantined] = (),
    ) -> IngestResult:
        """Store one page of `stream` in ONE transaction: its events (repeats of a kind, record id, sequence and
        action ignored), the shadow records (never overwritten by an older sequence), a pending delivery for each
        route of a new event that is not stale, quarantined items, and the stream's new position. Keys waiting on a
        record of the page are due at once."""
        now = self._clock()
        # What is left unread was appended after this page was read (at the top), or after the newest change read
        # (below it; an empty page below the top leaves the bound where it was).
        unread = now if at_top else max((e.version_at for e in events if e.version_at is not None), default=None)

        def work(db: sqlite3.Connection) -> tuple[int, int, int]:
            counts = store_page(db, stream, events, routes, now, STALE_STREAM, {})
            if quarantined:
                db.executemany(
                    "INSERT INTO quarantine (stream, reason, raw, created_at) VALUES (?,?,?,?)",
                    [(stream, q.reason, q.raw, now) for q in quarantined],
                )
            db.execute(
                "INSERT INTO positions (stream, position, at_top, updated_at, unread_since) VALUES (?,?,?,?,?)"
                " ON CONFLICT (stream) DO UPDATE SET position = excluded.position, at_top = excluded.at_top,"
                " updated_at = excluded.updated_at, expired = 0, stopped = NULL, failures = 0, last_error = NULL,"
                " unread_since = COALESCE(excluded.unread_since, positions.unread_since, excluded.updated_at)",
                (stream, position, int(at_top), now, unread),
            )
            return counts

        new, stale, queued = await self.in_transaction(work)
        return IngestResult(
            received=len(events),
            new=new,
            duplicates=len(events) - new,
            stale=stale,
            deliveries=queued,
            quarantined=len(quarantined),
        )

    async def mark_stream(self, stream: str, *, expired: bool = False, stopped: str | None = None) -> None:
        """Record that a stream's position expired or that polling it stopped (and why)."""
        async with self.transaction() as db:
            await db.execute(
                "UPDATE positions SET expired = ?, stopped = ?, at_top = 0, updated_at = ? WHERE stream = ?",
                (int(expired), stopped, self._clock(), stream),
            )
            await db.execute(
                "INSERT OR IGNORE INTO positions (stream, position, at_top, updated_at, expired, stopped)"
                " VALUES (?, '', 0, ?, ?, ?)",
                (stream, self._clock(), int(expired), stopped),
            )

    async def note_failure(self, stream: str, failures: int, error: str) -> None:
        """Record that reading the stream's next page failed `failures` times in a row, the last with `error`
        (cleared by the next page stored)."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO positions (stream, position, at_top, updated_at, failures, last_error)"
                " VALUES (?, '', 0, ?, ?, ?) ON CONFLICT (stream) DO UPDATE SET failures = excluded.failures,"
                " last_error = excluded.last_error",
                (stream, self._clock(), failures, error),
            )

    async def set_position(self, stream: str, position: str, *, unread_since: float | None = None) -> None:
        """Move a stream's stored position by hand (`unread_since`: when the oldest event left to read from it was
        appended, None when unknown); clears expired and stopped."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO positions (stream, position, at_top, updated_at, unread_since) VALUES (?,?,0,?,?)"
                " ON CONFLICT (stream) DO UPDATE SET position = excluded.position, at_top = 0,"
                " updated_at = excluded.updated_at, expired = 0, stopped = NULL, unread_since = excluded.unread_since",
                (stream, position, self._clock(), unread_since),
            )

    async def streams_caught_up_since(self, streams: Iterable[str], since: float) -> bool:
        """Whether every named stream reached its top at or after `since`."""
        wanted = list(streams)
        if not wanted:
            return True
        marks = ",".join("?" * len(wanted))
        sql = f"SELECT COUNT(*) FROM positions WHERE stream IN ({marks}) AND at_top = 1 AND updated_at >= ?"
        (n,) = await self.peek(lambda db: db.execute(sql, (*wanted, since)).fetchone())
        return int(n) == len(wanted)


def store_page(
    db: sqlite3.Connection,
    stream: str,
    events: Sequence[EventRow],
    routes: Sequence[Route],
    now: float,
    stale_sql: str,
    params: dict[str, Any],
) -> tuple[int, int, int]:
    """Inside the caller's transaction (synchronously, on the connection's worker thread): the events of one page
    (repeats ignored), stale ones marked by `stale_sql` (with `params`), the shadow records they leave, keys waiting
    on those records due at once, and a pending delivery (with its outbox key) for each route of a new event that
    is not stale. Returns (new events, new stale events, deliveries queued)."""
    db.execute("DELETE FROM temp.incoming")
    db.execute("DELETE FROM temp.incoming_routes")
    if not events:
        return 0, 0, 0
    db.executemany(
        "INSERT INTO temp.incoming (pos, stream, kind, record_id, action, sequence, event_id, occurred_at, body,"
        " rec_body, email, deleted, bare, ref, version_at, snapshot) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (
                pos,
                stream,
                row.kind,
                row.record_id,
                row.action,
                row.sequence,
                row.event_id,
                row.occurred_at,
                row.body,
                row.record,
                row.email,
                int(row.deleted),
                int(row.bare),
                row.ref,
                row.version_at,
                int(row.snapshot),
            )
            for pos, row in enumerate(events)
        ],
    )
    if routes:
        db.executemany(
            "INSERT INTO temp.incoming_routes (pos, sink, key) VALUES (?,?,?)", [(r.pos, r.sink, r.key) for r in routes]
        )
    db.execute(stale_sql, params)
    before = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
    cur = db.execute(
        "INSERT OR IGNORE INTO events (stream, kind, record_id, action, sequence, event_id, occurred_at,"
        " ingested_at, stale, body) SELECT stream, kind, record_id, action, sequence, event_id,"
        " occurred_at, :now, stale, body FROM temp.incoming ORDER BY pos",
        {"now": now},
    )
    new = cur.rowcount
    stale = db.execute("SELECT COUNT(*) FROM events WHERE seq > ? AND stale = 1", (before,)).fetchone()[0]
    db.execute(_EVENT_SEQ)
    db.execute(_UPSERT_SHADOW, {"now": now})
    db.execute(_UPDATE_EMAIL)
    db.execute(_UPSERT_BARE_DELETE, {"now": now})
    db.execute(_RELEASE_WAITERS, {"now": now})
    cur = db.execute(QUEUE_DELIVERIES, {"now": now, "before": before})
    queued = cur.rowcount
    if queued:
        db.execute(QUEUE_KEYS, {"now": now, "before": before})
    return new, int(stale), queued


POSITION_COLUMNS = (
    "SELECT stream, position, at_top, updated_at, expired, stopped, unread_since, failures, last_error FROM positions"
)


def position_of(row: Any) -> StreamPosition:
    """A `POSITION_COLUMNS` row as a StreamPosition."""
    return StreamPosition(
        stream=row[0],
        position=row[1],
        at_top=bool(row[2]),
        updated_at=float(row[3]),
        expired=bool(row[4]),
        stopped=row[5],
        unread_since=float(row[6]) if row[6] is not None else None,
        failures=int(row[7]),
        last_error=row[8],
    )

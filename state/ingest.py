"""Ingest: one page of a source stream stored in ONE transaction (events, shadow, deliveries, quarantine, position).

The caller hands over the page's rows and where each goes (routes); the store never looks inside a body.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from state.base import StoreBase, scalar
from state.rows import EventRow, Quarantined, Route

TEMP_TABLES = (
    """CREATE TEMP TABLE IF NOT EXISTS incoming (
        pos INTEGER PRIMARY KEY, stream TEXT, kind TEXT, record_id INTEGER, action TEXT, sequence INTEGER,
        event_id TEXT, occurred_at TEXT, body BLOB, rec_body BLOB, email TEXT, deleted INTEGER, bare INTEGER,
        ref TEXT NOT NULL DEFAULT '', stale INTEGER NOT NULL DEFAULT 0)""",
    "CREATE TEMP TABLE IF NOT EXISTS incoming_routes (pos INTEGER, sink TEXT, key TEXT)",
)

# The shadow keeps the highest sequence; on equal sequences a delete wins. A "bare" delete (only the id) keeps the
# last known snapshot, so deletes can still find the e-mail the record had and what it belonged to.
_UPSERT_SHADOW = """
INSERT INTO records (kind, record_id, sequence, deleted, email, body, updated_at, ref)
SELECT kind, record_id, sequence, deleted, email, rec_body, :now, ref FROM temp.incoming
WHERE stale = 0 AND bare = 0 ORDER BY pos
ON CONFLICT (kind, record_id) DO UPDATE SET
    sequence = excluded.sequence, deleted = excluded.deleted, email = excluded.email, body = excluded.body,
    updated_at = excluded.updated_at, ref = excluded.ref
WHERE excluded.sequence > records.sequence
   OR (excluded.sequence = records.sequence AND excluded.deleted >= records.deleted)
"""
_UPSERT_BARE_DELETE = """
INSERT INTO records (kind, record_id, sequence, deleted, email, body, updated_at, ref)
SELECT kind, record_id, sequence, 1, email, rec_body, :now, ref FROM temp.incoming
WHERE stale = 0 AND bare = 1 ORDER BY pos
ON CONFLICT (kind, record_id) DO UPDATE SET
    sequence = excluded.sequence, deleted = 1, updated_at = excluded.updated_at
WHERE excluded.sequence >= records.sequence
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
                "SELECT stream, position, at_top, updated_at, expired, stopped FROM positions WHERE stream = ?",
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
        rows = [
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
            )
            for pos, row in enumerate(events)
        ]
        routed = [(r.pos, r.sink, r.key) for r in routes]
        async with self.transaction() as db:
            await db.execute("DELETE FROM temp.incoming")
            await db.execute("DELETE FROM temp.incoming_routes")
            if rows:
                await db.executemany(
                    "INSERT INTO temp.incoming (pos, stream, kind, record_id, action, sequence, event_id,"
                    " occurred_at, body, rec_body, email, deleted, bare, ref) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
                if routed:
                    await db.executemany("INSERT INTO temp.incoming_routes (pos, sink, key) VALUES (?,?,?)", routed)
                # Stale: older than the shadow, or than an earlier item of the same record in this page.
                await db.execute(
                    "UPDATE temp.incoming SET stale = 1 WHERE sequence < (SELECT r.sequence FROM records r"
                    " WHERE r.kind = incoming.kind AND r.record_id = incoming.record_id)"
                    " OR EXISTS (SELECT 1 FROM temp.incoming i WHERE i.kind = incoming.kind"
                    " AND i.record_id = incoming.record_id AND i.pos < incoming.pos AND i.sequence > incoming.sequence)"
                )
                before = await scalar(db, "SELECT COALESCE(MAX(seq), 0) FROM events")
                cur = await db.execute(
                    "INSERT OR IGNORE INTO events (stream, kind, record_id, action, sequence, event_id, occurred_at,"
                    " ingested_at, stale, body) SELECT stream, kind, record_id, action, sequence, event_id,"
                    " occurred_at, :now, stale, body FROM temp.incoming ORDER BY pos",
                    {"now": now},
                )
                new = cur.rowcount
                stale = await scalar(db, "SELECT COUNT(*) FROM events WHERE seq > ? AND stale = 1", (before,))
                await db.execute(_UPSERT_SHADOW, {"now": now})
                await db.execute(_UPSERT_BARE_DELETE, {"now": now})
                await db.execute(_RELEASE_WAITERS, {"now": now})
                cur = await db.execute(
                    "INSERT OR IGNORE INTO deliveries (sink, seq, key, status, created_at)"
                    " SELECT r.sink, e.seq, r.key, 'pending', :now FROM temp.incoming i"
                    " JOIN temp.incoming_routes r ON r.pos = i.pos"
                    " JOIN events e ON e.kind = i.kind AND e.record_id = i.record_id"
                    " AND e.sequence = i.sequence AND e.action = i.action"
                    " WHERE e.seq > :before AND e.stale = 0",
                    {"now": now, "before": before},
                )
                queued = cur.rowcount
                if queued:
                    await db.execute(
                        "INSERT INTO outbox (sink, key, first_seq, due_at)"
                        " SELECT sink, key, MIN(seq), :now FROM deliveries WHERE seq > :before"
                        " GROUP BY sink, key ON CONFLICT (sink, key) DO NOTHING",
                        {"now": now, "before": before},
                    )
            else:
                new = stale = queued = 0
            if quarantined:
                await db.executemany(
                    "INSERT INTO quarantine (stream, reason, raw, created_at) VALUES (?,?,?,?)",
                    [(stream, q.reason, q.raw, now) for q in quarantined],
                )
            await db.execute(
                "INSERT INTO positions (stream, position, at_top, updated_at) VALUES (?,?,?,?)"
                " ON CONFLICT (stream) DO UPDATE SET position = excluded.position, at_top = excluded.at_top,"
                " updated_at = excluded.updated_at, expired = 0, stopped = NULL",
                (stream, position, int(at_top), now),
            )
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

    async def set_position(self, stream: str, position: str) -> None:
        """Move a stream's stored position by hand; clears expired and stopped."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO positions (stream, position, at_top, updated_at) VALUES (?,?,0,?)"
                " ON CONFLICT (stream) DO UPDATE SET position = excluded.position, at_top = 0,"
                " updated_at = excluded.updated_at, expired = 0, stopped = NULL",
                (stream, position, self._clock()),
            )

    async def streams_caught_up_since(self, streams: Iterable[str], since: float) -> bool:
        """Whether every named stream reached its top at or after `since`."""
        wanted = list(streams)
        if not wanted:
            return True
        marks = ",".join("?" * len(wanted))
        async with self.reading() as db:
            n = await scalar(
                db,
                f"SELECT COUNT(*) FROM positions WHERE stream IN ({marks}) AND at_top = 1 AND updated_at >= ?",
                (*wanted, since),
            )
        return int(n) == len(wanted)


def position_of(row: Any) -> StreamPosition:
    return StreamPosition(
        stream=row[0],
        position=row[1],
        at_top=bool(row[2]),
        updated_at=float(row[3]),
        expired=bool(row[4]),
        stopped=row[5],
    )

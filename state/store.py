"""The store: one writer connection to the SQLite file, and every read and write syncd makes of it.

All writes go through `transaction()`, which holds an async lock (one writer, no interleaved statements from other
tasks) and runs `BEGIN IMMEDIATE` … `COMMIT`. `ingest()` is one such transaction per Firehose page; `commit()` is one
per batch of delivery outcomes. Both are set-based so their cost barely depends on the page or batch size.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import anyio

from state.db import open_database
from syncd.events import ChangeEvent, CustomField, decode_event, decode_record, email_of, encode
from syncd.routing import route
from syncd.work import (
    Dead,
    Deferred,
    Delivery,
    Done,
    KeyWork,
    Link,
    Outcome,
    Released,
    Retry,
    Shadow,
    Skipped,
    split_key,
)

Clock = Callable[[], float]

_TEMP_TABLES = (
    """CREATE TEMP TABLE IF NOT EXISTS incoming (
        pos INTEGER PRIMARY KEY, stream TEXT, kind TEXT, record_id INTEGER, action TEXT, sequence INTEGER,
        event_id TEXT, occurred_at TEXT, body BLOB, rec_body BLOB, email TEXT, deleted INTEGER, bare INTEGER,
        stale INTEGER NOT NULL DEFAULT 0)""",
    "CREATE TEMP TABLE IF NOT EXISTS incoming_routes (pos INTEGER, sink TEXT, key TEXT)",
)

# The shadow keeps the highest sequence; on equal sequences a delete wins. A "bare" delete (only the id) keeps the
# last known snapshot, so deletes can still find the e-mail the record had.
_UPSERT_SHADOW = """
INSERT INTO records (kind, record_id, sequence, deleted, email, body, updated_at)
SELECT kind, record_id, sequence, deleted, email, rec_body, :now FROM temp.incoming
WHERE stale = 0 AND bare = 0 ORDER BY pos
ON CONFLICT (kind, record_id) DO UPDATE SET
    sequence = excluded.sequence, deleted = excluded.deleted, email = excluded.email, body = excluded.body,
    updated_at = excluded.updated_at
WHERE excluded.sequence > records.sequence
   OR (excluded.sequence = records.sequence AND excluded.deleted >= records.deleted)
"""
_UPSERT_BARE_DELETE = """
INSERT INTO records (kind, record_id, sequence, deleted, email, body, updated_at)
SELECT kind, record_id, sequence, 1, email, rec_body, :now FROM temp.incoming
WHERE stale = 0 AND bare = 1 ORDER BY pos
ON CONFLICT (kind, record_id) DO UPDATE SET
    sequence = excluded.sequence, deleted = 1, updated_at = excluded.updated_at
WHERE excluded.sequence >= records.sequence
"""


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A Firehose item that could not be normalised, kept with its raw body."""

    reason: str
    raw: bytes


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


@dataclass(frozen=True, slots=True)
class SinkStatus:
    sink: str
    pending: int
    pending_keys: int
    oldest_pending_at: float | None
    done: int
    skipped: int
    dead: int
    dead_letters: int
    max_attempts: int
    paused: str | None
    paused_until: float | None


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    streams: list[StreamPosition]
    events: int
    quarantined: int
    sinks: list[SinkStatus]


class Store:
    """The durable state of one syncd instance."""

    def __init__(self, conn: aiosqlite.Connection, path: Path, sinks: Sequence[str], clock: Clock) -> None:
        self._conn = conn
        self.path = path
        self.sinks = tuple(sinks)
        self._clock = clock
        self._lock = anyio.Lock()

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        sinks: Sequence[str] = (),
        clock: Clock = time.time,
        readonly: bool = False,
    ) -> Store:
        """Open the store; `sinks` are the enabled destinations that `ingest` queues deliveries for."""
        conn = await open_database(path, readonly=readonly)
        store = cls(conn, Path(path), sinks, clock)
        if not readonly:
            await conn.execute("PRAGMA temp_store = MEMORY")
            for ddl in _TEMP_TABLES:
                await conn.execute(ddl)
            # Claims do not survive a process: whatever was in flight when it died is due again.
            await conn.execute("UPDATE outbox SET claimed = 0 WHERE claimed = 1")
        return store

    async def close(self) -> None:
        with anyio.CancelScope(shield=True):
            async with self._lock:
                await self._conn.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction; the lock keeps other tasks' statements out of it. Shielded from cancellation
        so a commit in progress is never abandoned halfway."""
        with anyio.CancelScope(shield=True):
            async with self._lock:
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    await self._conn.execute("ROLLBACK")
                    raise
                await self._conn.execute("COMMIT")

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """Reads that must not interleave with another task's transaction."""
        async with self._lock:
            yield self._conn

    # -----------------------------------------------------------------------------------------------------------
    # ingest

    async def position(self, stream: str) -> StreamPosition | None:
        async with (
            self.reading() as db,
            db.execute(
                "SELECT stream, position, at_top, updated_at, expired, stopped FROM positions WHERE stream = ?",
                (stream,),
            ) as cur,
        ):
            row = await cur.fetchone()
        return _position(row) if row else None

    async def ingest(
        self,
        stream: str,
        events: Sequence[ChangeEvent],
        *,
        position: str,
        at_top: bool,
        quarantined: Sequence[Quarantined] = (),
    ) -> IngestResult:
        """Store one Firehose page in ONE transaction: its events (repeats ignored), the shadow records (never
        overwritten by an older sequence), a pending delivery per enabled destination that routes each new event,
        quarantined items, and the stream's new position."""
        now = self._clock()
        rows = []
        routes = []
        for pos, event in enumerate(events):
            record = event.record
            bare = event.action == "deleted" and record == type(record)(id=record.id)
            rows.append(
                (
                    pos,
                    stream,
                    event.kind,
                    event.record_id,
                    event.action,
                    event.sequence,
                    event.event_id,
                    event.occurred_at.isoformat(),
                    encode(event),
                    encode(record),
                    email_of(record),
                    int(event.action == "deleted"),
                    int(bare),
                )
            )
            for sink in self.sinks:
                key = route(sink, event)
                if key is not None:
                    routes.append((pos, sink, key))
        async with self.transaction() as db:
            await db.execute("DELETE FROM temp.incoming")
            await db.execute("DELETE FROM temp.incoming_routes")
            if rows:
                await db.executemany(
                    "INSERT INTO temp.incoming (pos, stream, kind, record_id, action, sequence, event_id,"
                    " occurred_at, body, rec_body, email, deleted, bare) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
                if routes:
                    await db.executemany("INSERT INTO temp.incoming_routes (pos, sink, key) VALUES (?,?,?)", routes)
                # Stale: older than the shadow, or than an earlier item of the same record in this page.
                await db.execute(
                    "UPDATE temp.incoming SET stale = 1 WHERE sequence < (SELECT r.sequence FROM records r"
                    " WHERE r.kind = incoming.kind AND r.record_id = incoming.record_id)"
                    " OR EXISTS (SELECT 1 FROM temp.incoming i WHERE i.kind = incoming.kind"
                    " AND i.record_id = incoming.record_id AND i.pos < incoming.pos AND i.sequence > incoming.sequence)"
                )
                before = await _scalar(db, "SELECT COALESCE(MAX(seq), 0) FROM events")
                cur = await db.execute(
                    "INSERT OR IGNORE INTO events (stream, kind, record_id, action, sequence, event_id, occurred_at,"
                    " ingested_at, stale, body) SELECT stream, kind, record_id, action, sequence, event_id,"
                    " occurred_at, :now, stale, body FROM temp.incoming ORDER BY pos",
                    {"now": now},
                )
                new = cur.rowcount
                stale = await _scalar(db, "SELECT COUNT(*) FROM events WHERE seq > ? AND stale = 1", (before,))
                await db.execute(_UPSERT_SHADOW, {"now": now})
                await db.execute(_UPSERT_BARE_DELETE, {"now": now})
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
        """Record that a stream's position expired (410) or that polling it stopped (and why)."""
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
        """Move a stream's stored position by hand (`syncd position`); clears expired and stopped."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO positions (stream, position, at_top, updated_at) VALUES (?,?,0,?)"
                " ON CONFLICT (stream) DO UPDATE SET position = excluded.position, at_top = 0,"
                " updated_at = excluded.updated_at, expired = 0, stopped = NULL",
                (stream, position, self._clock()),
            )

    # -----------------------------------------------------------------------------------------------------------
    # dispatch

    async def claim(self, sink: str, limit: int) -> list[str]:
        """Claim up to `limit` due keys of `sink`, oldest first; a claimed key is not claimed again until its
        outcome is committed (or the process restarts)."""
        async with (
            self.transaction() as db,
            db.execute(
                "UPDATE outbox SET claimed = 1 WHERE sink = :sink AND key IN (SELECT key FROM outbox"
                " WHERE sink = :sink AND claimed = 0 AND due_at <= :now ORDER BY first_seq LIMIT :limit)"
                " RETURNING key, first_seq",
                {"sink": sink, "now": self._clock(), "limit": limit},
            ) as cur,
        ):
            rows = await cur.fetchall()
        return [key for key, _ in sorted(rows, key=lambda r: int(r[1]))]

    async def next_due(self, sink: str) -> float | None:
        """When the earliest unclaimed key of `sink` falls due (None when there is none)."""
        async with self.reading() as db:
            value = await _scalar(db, "SELECT MIN(due_at) FROM outbox WHERE sink = ? AND claimed = 0", (sink,))
        return float(value) if value is not None else None

    async def load_work(self, sink: str, keys: Sequence[str], *, per_key: int = 1000) -> list[KeyWork]:
        """The pending deliveries (oldest first, at most `per_key`), shadow and link of each claimed key."""
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        deliveries: dict[str, list[Delivery]] = {key: [] for key in keys}
        attempts: dict[str, int] = {}
        shadows: dict[tuple[str, int], Shadow] = {}
        links: dict[tuple[str, int], Link] = {}
        pairs = [split_key(key) for key in keys]
        pair_marks = ",".join("(?,?)" for _ in pairs)
        flat = [v for pair in pairs for v in pair]
        async with self.reading() as db:
            async with db.execute(
                "SELECT key, seq, body, ingested_at FROM (SELECT d.key, d.seq, e.body, e.ingested_at,"
                " ROW_NUMBER() OVER (PARTITION BY d.key ORDER BY d.seq) AS n"
                f" FROM deliveries d JOIN events e ON e.seq = d.seq WHERE d.sink = ? AND d.key IN ({marks})"
                " AND d.status = 'pending') WHERE n <= ? ORDER BY seq",
                (sink, *keys, per_key),
            ) as cur:
                async for key, seq, body, ingested_at in cur:
                    deliveries[key].append(Delivery(seq, decode_event(body), float(ingested_at)))
            async with db.execute(
                f"SELECT key, attempts FROM outbox WHERE sink = ? AND key IN ({marks})", (sink, *keys)
            ) as cur:
                async for key, n in cur:
                    attempts[key] = int(n)
            async with db.execute(
                "SELECT kind, record_id, sequence, deleted, body FROM records"
                f" WHERE (kind, record_id) IN (VALUES {pair_marks})",
                flat,
            ) as cur:
                async for kind, record_id, sequence, deleted, body in cur:
                    shadows[(kind, record_id)] = Shadow(kind, record_id, sequence, bool(deleted), decode_record(body))
            async with db.execute(
                "SELECT kind, record_id, remote_id, digest, sent FROM links"
                f" WHERE sink = ? AND (kind, record_id) IN (VALUES {pair_marks})",
                (sink, *flat),
            ) as cur:
                async for kind, record_id, remote_id, digest, sent in cur:
                    links[(kind, record_id)] = Link(remote_id, digest, json.loads(sent) if sent else None)
        return [
            KeyWork(
                sink=sink,
                key=key,
                attempts=attempts.get(key, 0),
                deliveries=tuple(deliveries[key]),
                shadow=shadows.get(pair),
                link=links.get(pair),
            )
            for key, pair in zip(keys, pairs, strict=True)
        ]

    async def shadow(self, kind: str, record_id: int) -> Shadow | None:
        async with (
            self.reading() as db,
            db.execute(
                "SELECT kind, record_id, sequence, deleted, body FROM records WHERE kind = ? AND record_id = ?",
                (kind, record_id),
            ) as cur,
        ):
            row = await cur.fetchone()
        if row is None:
            return None
        return Shadow(row[0], row[1], row[2], bool(row[3]), decode_record(row[4]))

    async def custom_field_names(self) -> frozenset[str] | None:
        """Names of the Sell custom fields defined now (None when no definition has been read yet)."""
        async with (
            self.reading() as db,
            db.execute("SELECT deleted, body FROM records WHERE kind = 'custom_field'") as cur,
        ):
            rows = await cur.fetchall()
        if not rows:
            return None
        names = set()
        for deleted, body in rows:
            record = decode_record(body)
            if not deleted and isinstance(record, CustomField) and record.name:
                names.add(record.name)
        return frozenset(names)

    async def live_peers(self, sink: str, kind: str, record_id: int, *, email: str, remote_id: str | None) -> list[str]:
        """Other live Sell people that map to the same destination contact (same e-mail, or the same remote
        id in `sink`), as keys: what the deletion guard checks before deleting anything."""
        found: set[str] = set()
        async with self.reading() as db:
            if email:
                async with db.execute(
                    "SELECT kind, record_id FROM records WHERE email = ? AND deleted = 0"
                    " AND kind IN ('lead', 'contact') AND NOT (kind = ? AND record_id = ?)",
                    (email, kind, record_id),
                ) as cur:
                    found.update([f"{k}:{i}" async for k, i in cur])
            if remote_id:
                async with db.execute(
                    "SELECT l.kind, l.record_id FROM links l JOIN records r"
                    " ON r.kind = l.kind AND r.record_id = l.record_id"
                    " WHERE l.sink = ? AND l.remote_id = ? AND r.deleted = 0"
                    " AND NOT (l.kind = ? AND l.record_id = ?)",
                    (sink, remote_id, kind, record_id),
                ) as cur:
                    found.update([f"{k}:{i}" async for k, i in cur])
        return sorted(found)

    async def streams_caught_up_since(self, streams: Iterable[str], since: float) -> bool:
        """Whether every named stream reached the top of its Firehose at or after `since`."""
        wanted = list(streams)
        if not wanted:
            return True
        marks = ",".join("?" * len(wanted))
        async with self.reading() as db:
            n = await _scalar(
                db,
                f"SELECT COUNT(*) FROM positions WHERE stream IN ({marks}) AND at_top = 1 AND updated_at >= ?",
                (*wanted, since),
            )
        return int(n) == len(wanted)

    async def commit(self, sink: str, outcomes: Sequence[Outcome]) -> None:
        """Record a batch of outcomes in one transaction and requeue or retire their keys."""
        if not outcomes:
            return
        now = self._clock()
        finished: dict[str, None] = {}
        rescheduled: dict[str, None] = {}
        totals: dict[str, int] = {}
        async with self.transaction() as db:
            for outcome in outcomes:
                match outcome:
                    case Done():
                        await _set_status(db, sink, outcome.seqs, "done", outcome.detail or None, now)
                        kind, record_id = split_key(outcome.key)
                        if outcome.unlink:
                            await db.execute(
                                "DELETE FROM links WHERE sink = ? AND kind = ? AND record_id = ?",
                                (sink, kind, record_id),
                            )
                        elif outcome.remote_id is not None or outcome.digest is not None:
                            await _upsert_link(
                                db,
                                sink,
                                kind,
                                record_id,
                                outcome.remote_id,
                                outcome.digest,
                                outcome.sent,
                                now,
                            )
                        totals["done"] = totals.get("done", 0) + len(outcome.seqs)
                        finished[outcome.key] = None
                    case Skipped():
                        await _set_status(db, sink, outcome.seqs, "skipped", outcome.reason, now)
                        if outcome.digest is not None:
                            kind, record_id = split_key(outcome.key)
                            await _upsert_link(db, sink, kind, record_id, None, outcome.digest, None, now)
                        totals["skipped"] = totals.get("skipped", 0) + len(outcome.seqs)
                        finished[outcome.key] = None
                    case Dead():
                        cur = await db.execute(
                            "INSERT INTO dead_letters (sink, key, reason, http_status, request, attempts,"
                            " created_at) VALUES (?,?,?,?,?,?,?)",
                            (
                                sink,
                                outcome.key,
                                outcome.reason,
                                outcome.http_status,
                                outcome.request,
                                outcome.attempts,
                                now,
                            ),
                        )
                        await db.executemany(
                            "UPDATE deliveries SET status = 'dead', dead_letter = ?, reason = ?, updated_at = ?"
                            " WHERE sink = ? AND seq = ?",
                            [(cur.lastrowid, outcome.reason, now, sink, seq) for seq in outcome.seqs],
                        )
                        totals["dead"] = totals.get("dead", 0) + len(outcome.seqs)
                        finished[outcome.key] = None
                    case Retry():
                        await db.execute(
                            "UPDATE outbox SET claimed = 0, attempts = attempts + 1, due_at = ?, last_error = ?"
                            " WHERE sink = ? AND key = ?",
                            (outcome.at, outcome.error, sink, outcome.key),
                        )
                        rescheduled[outcome.key] = None
                    case Deferred():
                        await db.execute(
                            "UPDATE outbox SET claimed = 0, due_at = ?, last_error = ? WHERE sink = ? AND key = ?",
                            (outcome.at, outcome.reason, sink, outcome.key),
                        )
                        rescheduled[outcome.key] = None
                    case Released():
                        await db.execute(
                            "UPDATE outbox SET claimed = 0 WHERE sink = ? AND key = ?", (sink, outcome.key)
                        )
                        rescheduled[outcome.key] = None
            retire = [(sink, key) for key in finished if key not in rescheduled]
            if retire:
                await db.executemany(
                    "DELETE FROM outbox WHERE sink = ? AND key = ? AND NOT EXISTS (SELECT 1 FROM deliveries d"
                    " WHERE d.sink = outbox.sink AND d.key = outbox.key AND d.status = 'pending')",
                    retire,
                )
                # Deliveries that arrived while the key was in flight: due at once, with a fresh attempt count.
                await db.executemany(
                    "UPDATE outbox SET claimed = 0, attempts = 0, due_at = ?, last_error = NULL,"
                    " first_seq = (SELECT MIN(d.seq) FROM deliveries d WHERE d.sink = outbox.sink"
                    " AND d.key = outbox.key AND d.status = 'pending') WHERE sink = ? AND key = ?",
                    [(now, s, k) for s, k in retire],
                )
            if totals:
                await db.executemany(
                    "INSERT INTO totals (sink, outcome, n) VALUES (?,?,?)"
                    " ON CONFLICT (sink, outcome) DO UPDATE SET n = n + excluded.n",
                    [(sink, outcome, n) for outcome, n in totals.items()],
                )

    async def set_sink_state(self, sink: str, *, paused: str | None, until: float | None = None) -> None:
        """Record (for `syncd status` in another process) whether a destination is paused, and why."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO sink_state (sink, paused, paused_until, updated_at) VALUES (?,?,?,?)"
                " ON CONFLICT (sink) DO UPDATE SET paused = excluded.paused,"
                " paused_until = excluded.paused_until, updated_at = excluded.updated_at",
                (sink, paused, until, self._clock()),
            )

    # -----------------------------------------------------------------------------------------------------------
    # reporting and upkeep

    async def pending(self, sink: str | None = None) -> int:
        """Pending deliveries, of one destination or of all."""
        async with self.reading() as db:
            if sink is None:
                value = await _scalar(db, "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'")
            else:
                value = await _scalar(
                    db, "SELECT COUNT(*) FROM deliveries WHERE sink = ? AND status = 'pending'", (sink,)
                )
        return int(value)

    async def status(self) -> StatusSnapshot:
        async with self.reading() as db:
            return await read_status(db)

    async def prune(self, older_than: float, *, chunk: int = 5000) -> int:
        """Delete events ingested before `older_than` whose deliveries are all done or skipped (and events that
        no destination took); dead and pending ones stay. Returns how many events went."""
        removed = 0
        while True:
            async with self.transaction() as db:
                async with db.execute(
                    "SELECT seq FROM events e WHERE ingested_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries d"
                    " WHERE d.seq = e.seq AND d.status IN ('pending', 'dead')) ORDER BY seq LIMIT ?",
                    (older_than, chunk),
                ) as cur:
                    seqs = [(row[0],) async for row in cur]
                if seqs:
                    await db.executemany("DELETE FROM deliveries WHERE seq = ?", seqs)
                    await db.executemany("DELETE FROM events WHERE seq = ?", seqs)
                await db.execute("DELETE FROM quarantine WHERE created_at < ?", (older_than,))
            removed += len(seqs)
            if len(seqs) < chunk:
                return removed


async def read_status(db: aiosqlite.Connection) -> StatusSnapshot:
    """Everything `syncd status` shows, read in one go (also from a read-only connection)."""
    async with db.execute(
        "SELECT stream, position, at_top, updated_at, expired, stopped FROM positions ORDER BY stream"
    ) as cur:
        streams = [_position(row) async for row in cur]
    events = int(await _scalar(db, "SELECT COUNT(*) FROM events"))
    quarantined = int(await _scalar(db, "SELECT COUNT(*) FROM quarantine"))
    names: set[str] = set()
    for sql in (
        "SELECT DISTINCT sink FROM totals",
        "SELECT DISTINCT sink FROM outbox",
        "SELECT sink FROM sink_state",
        "SELECT DISTINCT sink FROM dead_letters",
    ):
        async with db.execute(sql) as cur:
            names.update([row[0] async for row in cur])
    sinks = [await _sink_status(db, name) for name in sorted(names)]
    return StatusSnapshot(streams=streams, events=events, quarantined=quarantined, sinks=sinks)


async def _sink_status(db: aiosqlite.Connection, sink: str) -> SinkStatus:
    counts: dict[str, int] = {}
    async with db.execute("SELECT outcome, n FROM totals WHERE sink = ?", (sink,)) as cur:
        async for outcome, n in cur:
            counts[outcome] = int(n)
    pending = int(await _scalar(db, "SELECT COUNT(*) FROM deliveries WHERE sink = ? AND status = 'pending'", (sink,)))
    oldest = await _scalar(
        db,
        "SELECT created_at FROM deliveries WHERE sink = ? AND status = 'pending' ORDER BY seq LIMIT 1",
        (sink,),
    )
    dead = int(await _scalar(db, "SELECT COUNT(*) FROM deliveries WHERE sink = ? AND status = 'dead'", (sink,)))
    letters = int(await _scalar(db, "SELECT COUNT(*) FROM dead_letters WHERE sink = ?", (sink,)))
    keys = int(await _scalar(db, "SELECT COUNT(*) FROM outbox WHERE sink = ?", (sink,)))
    attempts = int(await _scalar(db, "SELECT COALESCE(MAX(attempts), 0) FROM outbox WHERE sink = ?", (sink,)))
    async with db.execute("SELECT paused, paused_until FROM sink_state WHERE sink = ?", (sink,)) as cur:
        state = await cur.fetchone()
    return SinkStatus(
        sink=sink,
        pending=pending,
        pending_keys=keys,
        oldest_pending_at=float(oldest) if oldest is not None else None,
        done=counts.get("done", 0),
        skipped=counts.get("skipped", 0),
        dead=dead,
        dead_letters=letters,
        max_attempts=attempts,
        paused=state[0] if state else None,
        paused_until=state[1] if state else None,
    )


def _position(row: Any) -> StreamPosition:
    return StreamPosition(
        stream=row[0],
        position=row[1],
        at_top=bool(row[2]),
        updated_at=float(row[3]),
        expired=bool(row[4]),
        stopped=row[5],
    )


async def _scalar(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    async with db.execute(sql, params) as cur:
        row = await cur.fetchone()
    return row[0] if row else None


async def _set_status(
    db: aiosqlite.Connection, sink: str, seqs: Sequence[int], status: str, reason: str | None, now: float
) -> None:
    await db.executemany(
        "UPDATE deliveries SET status = ?, reason = ?, updated_at = ? WHERE sink = ? AND seq = ?"
        " AND status = 'pending'",
        [(status, reason, now, sink, seq) for seq in seqs],
    )


async def _upsert_link(
    db: aiosqlite.Connection,
    sink: str,
    kind: str,
    record_id: int,
    remote_id: str | None,
    digest: str | None,
    sent: dict[str, Any] | None,
    now: float,
) -> None:
    await db.execute(
        "INSERT INTO links (sink, kind, record_id, remote_id, digest, sent, updated_at) VALUES (?,?,?,?,?,?,?)"
        " ON CONFLICT (sink, kind, record_id) DO UPDATE SET"
        " remote_id = COALESCE(excluded.remote_id, links.remote_id),"
        " digest = COALESCE(excluded.digest, links.digest), sent = COALESCE(excluded.sent, links.sent),"
        " updated_at = excluded.updated_at",
        (sink, kind, record_id, remote_id, digest, json.dumps(sent) if sent is not None else None, now),
    )

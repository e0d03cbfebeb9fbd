"""Backfills in the store: the capture of the stream positions, the parts of a scan and their checkpoints, and the
ingest of snapshot pages (records read from Sell's Core API) in ONE transaction each, checkpoint included.

A snapshot page goes through the same path as a stream page (events, shadow, deliveries; state.ingest.store_page),
only the rule of which version the shadow keeps differs (state.ingest.STALE_SNAPSHOT): a snapshot never replaces a
version a stream change wrote after the backfill captured the positions.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from state.base import StoreBase, scalar
from state.ingest import STALE_SNAPSHOT, IngestResult, store_page
from state.records import RECORD_COLUMNS, record_row
from state.rows import EventRow, Quarantined, RecordRow, Route

PART_COLUMNS = (
    "SELECT job, part, ord, state, cursor_offset, cursor_id, first_id, top_id, records, requests, started_at,"
    " finished_at, updated_at FROM backfill_parts"
)


@dataclass(frozen=True, slots=True)
class PartRow:
    """Where one part of a backfill (one Core API listing read in id order) stands."""

    job: int
    part: str
    ord: int
    state: str  # pending | scanning | done
    cursor_offset: int  # the list position of the last record stored (-1: none yet)
    cursor_id: int | None  # that record's id
    first_id: int | None  # the lowest id when the scan began
    top_id: int | None  # the highest id when the scan began
    records: int
    requests: int
    started_at: float | None
    finished_at: float | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class LinkRow:
    """What a destination holds of one record, as syncd last wrote it, and whether the shadow has it deleted."""

    key: str
    remote_id: str | None
    sent: dict[str, Any] | None
    deleted: bool | None  # None: the shadow holds no such record


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a scan stands after a page: the list position and id of the last record it stored."""

    offset: int
    record_id: int | None


def part_row(row: Any) -> PartRow:
    return PartRow(
        job=int(row[0]),
        part=str(row[1]),
        ord=int(row[2]),
        state=str(row[3]),
        cursor_offset=int(row[4]),
        cursor_id=row[5],
        first_id=row[6],
        top_id=row[7],
        records=int(row[8]),
        requests=int(row[9]),
        started_at=row[10],
        finished_at=row[11],
        updated_at=float(row[12]),
    )


class Backfills(StoreBase):
    """What a backfill asks of the store."""

    async def capture(self, job: int, positions: Mapping[str, str], parts: Sequence[str]) -> int:
        """Start a backfill in ONE transaction: the job running, the highest event seq so far kept as its capture
        point, the given streams' positions set (the heads read just before: the Firehose takes over from there),
        and its parts queued in order. Returns the capture point."""
        now = self._clock()
        async with self.transaction() as db:
            capture_seq = int(await scalar(db, "SELECT COALESCE(MAX(seq), 0) FROM events"))
            await db.execute(
                "UPDATE jobs SET state = 'running', capture_seq = ?, started_at = COALESCE(started_at, ?),"
                " updated_at = ? WHERE id = ?",
                (capture_seq, now, now, job),
            )
            await db.executemany(
                "INSERT INTO positions (stream, position, at_top, updated_at, unread_since) VALUES (?,?,0,?,?)"
                " ON CONFLICT (stream) DO UPDATE SET position = excluded.position, at_top = 0,"
                " updated_at = excluded.updated_at, expired = 0, stopped = NULL, unread_since = excluded.unread_since",
                [(stream, position, now, now) for stream, position in positions.items()],
            )
            await db.executemany(
                "INSERT OR IGNORE INTO backfill_parts (job, part, ord, updated_at) VALUES (?,?,?,?)",
                [(job, part, n, now) for n, part in enumerate(parts)],
            )
        return capture_seq

    async def parts(self, job: int) -> list[PartRow]:
        """The parts of a backfill, in the order they run."""
        async with self.reading() as db, db.execute(f"{PART_COLUMNS} WHERE job = ? ORDER BY ord", (job,)) as cur:
            return [part_row(row) async for row in cur]

    async def begin_part(self, job: int, part: str, *, first_id: int | None, top_id: int | None) -> None:
        """A part's scan begins: what its list held (the lowest and highest id), for its progress."""
        now = self._clock()
        async with self.transaction() as db:
            await db.execute(
                "UPDATE backfill_parts SET state = 'scanning', first_id = COALESCE(first_id, ?),"
                " top_id = COALESCE(top_id, ?), started_at = COALESCE(started_at, ?), updated_at = ?"
                " WHERE job = ? AND part = ?",
                (first_id, top_id, now, now, job, part),
            )

    async def count_requests(self, job: int, part: str, requests: int) -> None:
        """Requests a part made that stored nothing (probes, refused pages)."""
        if requests:
            async with self.transaction() as db:
                await db.execute(
                    "UPDATE backfill_parts SET requests = requests + ?, updated_at = ? WHERE job = ? AND part = ?",
                    (requests, self._clock(), job, part),
                )

    async def ingest_snapshots(
        self,
        job: int,
        part: str,
        stream: str,
        events: Sequence[EventRow],
        routes: Sequence[Route] = (),
        *,
        capture_seq: int,
        cursor: Cursor,
        requests: int = 1,
        quarantined: Sequence[Quarantined] = (),
        finished: bool = False,
    ) -> IngestResult:
        """Store one page of a backfill in ONE transaction: its snapshots (and deletes of records found gone) as
        events, the shadow they leave (never replacing a version a stream change wrote after `capture_seq`), a
        pending delivery per route of each new one that is not stale, the records marked as seen by this job, items
        that could not be read in quarantine, and the part's checkpoint (`cursor`, done when `finished`)."""
        now = self._clock()

        def work(db: sqlite3.Connection) -> tuple[int, int, int]:
            counts = store_page(db, stream, events, routes, now, STALE_SNAPSHOT, {"capture_seq": capture_seq})
            if events:
                # By primary key, one record at a time (a join on the page would scan every record per page).
                db.executemany(
                    "UPDATE records SET seen_job = ? WHERE kind = ? AND record_id = ?",
                    [(job, row.kind, row.record_id) for row in events],
                )
            if quarantined:
                db.executemany(
                    "INSERT INTO quarantine (stream, reason, raw, created_at) VALUES (?,?,?,?)",
                    [(stream, q.reason, q.raw, now) for q in quarantined],
                )
            db.execute(
                "UPDATE backfill_parts SET cursor_offset = ?, cursor_id = COALESCE(?, cursor_id),"
                " records = records + ?, requests = requests + ?, updated_at = ?,"
                " state = IIF(?, 'done', state), finished_at = IIF(?, ?, finished_at) WHERE job = ? AND part = ?",
                (
                    cursor.offset,
                    cursor.record_id,
                    len(events) + len(quarantined),
                    requests,
                    now,
                    int(finished),
                    int(finished),
                    now,
                    job,
                    part,
                ),
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

    async def finish_part(self, job: int, part: str) -> None:
        now = self._clock()
        async with self.transaction() as db:
            await db.execute(
                "UPDATE backfill_parts SET state = 'done', finished_at = COALESCE(finished_at, ?), updated_at = ?"
                " WHERE job = ? AND part = ?",
                (now, now, job, part),
            )

    async def unseen(
        self, job: int, kind: str, capture_seq: int, *, after: int = 0, limit: int = 100
    ) -> list[RecordRow]:
        """Live records of `kind` (ids above `after`, lowest first) that the job's scans did not see and that no
        change read after the capture wrote: each is either gone from Sell (its delete was lost with an expired
        position) or was skipped by a scan, which the caller asks Sell about."""
        async with (
            self.reading() as db,
            db.execute(
                f"{RECORD_COLUMNS} WHERE kind = ? AND deleted = 0 AND record_id > ?"
                " AND (seen_job IS NULL OR seen_job <> ?) AND event_seq <= ? ORDER BY record_id LIMIT ?",
                (kind, after, job, capture_seq, limit),
            ) as cur,
        ):
            return [record_row(row) async for row in cur]

    async def mark_seen(self, job: int, kind: str, record_ids: Sequence[int]) -> None:
        """Records a job saw without storing a snapshot of them (unchanged, or already newer)."""
        if record_ids:
            async with self.transaction() as db:
                await db.executemany(
                    "UPDATE records SET seen_job = ? WHERE kind = ? AND record_id = ?",
                    [(job, kind, record_id) for record_id in record_ids],
                )

    async def live_ids(self, kind: str, *, after: int = 0, limit: int = 1000) -> list[int]:
        """Ids of the live records of `kind` the shadow holds, above `after`, lowest first."""
        async with (
            self.reading() as db,
            db.execute(
                "SELECT record_id FROM records WHERE kind = ? AND deleted = 0 AND record_id > ? ORDER BY record_id"
                " LIMIT ?",
                (kind, after, limit),
            ) as cur,
        ):
            return [int(row[0]) async for row in cur]

    async def highest_seq(self) -> int:
        """The highest event seq stored so far (what a reconciliation's reads come after)."""
        async with self.reading() as db:
            return int(await scalar(db, "SELECT COALESCE(MAX(seq), 0) FROM events"))

    async def links_of(self, sink: str, kinds: Sequence[str]) -> list[LinkRow]:
        """Every record of `kinds` that `sink` holds something of (a remote id or what was written), by key."""
        marks = ",".join("?" * len(kinds))
        async with (
            self.reading() as db,
            db.execute(
                "SELECT l.kind, l.record_id, l.remote_id, l.sent, r.deleted FROM links l LEFT JOIN records r"
                f" ON r.kind = l.kind AND r.record_id = l.record_id WHERE l.sink = ? AND l.kind IN ({marks})"
                " ORDER BY l.kind, l.record_id",
                (sink, *kinds),
            ) as cur,
        ):
            return [
                LinkRow(
                    f"{kind}:{record_id}",
                    remote,
                    json.loads(sent) if sent else None,
                    None if deleted is None else bool(deleted),
                )
                async for kind, record_id, remote, sent, deleted in cur
            ]

    async def emails_of(self, kinds: Sequence[str]) -> list[tuple[str, str, bool]]:
        """(key, normalised e-mail, deleted) of every record of `kinds` the shadow holds with an e-mail."""
        marks = ",".join("?" * len(kinds))
        async with (
            self.reading() as db,
            db.execute(
                f"SELECT kind, record_id, email, deleted FROM records WHERE kind IN ({marks}) AND email <> ''"
                " ORDER BY kind, record_id",
                tuple(kinds),
            ) as cur,
        ):
            return [(f"{kind}:{record_id}", str(email), bool(deleted)) async for kind, record_id, email, deleted in cur]

    async def id_range(self, kind: str) -> tuple[int | None, int | None]:
        """The lowest and highest id of the live records of `kind` the shadow holds."""
        async with (
            self.reading() as db,
            db.execute(
                "SELECT MIN(record_id), MAX(record_id) FROM records WHERE kind = ? AND deleted = 0", (kind,)
            ) as cur,
        ):
            row = await cur.fetchone()
        return (row[0], row[1]) if row is not None else (None, None)

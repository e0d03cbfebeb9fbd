"""Status and reports: what status readers, health and metrics show, read in one go (also read-only), and the
counts a run's report adds."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiosqlite

from state.backfill import PART_COLUMNS, PartRow, part_row
from state.base import StoreBase, scalar
from state.drift import read_drift
from state.ingest import POSITION_COLUMNS, StreamPosition, position_of
from state.jobs import JOB_COLUMNS, JobRow, job_row
from state.requeue import TOUCHED
from state.rows import DriftRow, Wait, WaitingKey

WAITS_SHOWN = 20  # waiting keys listed per destination (the oldest waits first)


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
    waiting: int = 0  # keys waiting on another key
    waits: list[WaitingKey] = field(default_factory=list)  # the longest-waiting of them
    checking: int = 0  # keys whose late-write check is still to come (written again once no late write can land)


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    streams: list[StreamPosition]
    events: int  # stored changes read from the streams (requeues not counted)
    quarantined: int
    sinks: list[SinkStatus]
    drift: list[DriftRow] = field(default_factory=list)
    throttles: dict[str, float] = field(default_factory=dict)  # API -> until when its last throttle pause held calls
    # Jobs (backfills, reconciliations): those still open and the latest finished of each kind, newest first, and
    # the parts of each backfill among them.
    jobs: list[JobRow] = field(default_factory=list)
    parts: dict[int, list[PartRow]] = field(default_factory=dict)


async def read_jobs(db: aiosqlite.Connection) -> tuple[list[JobRow], dict[int, list[PartRow]]]:
    """The open jobs and the latest finished one of each kind (newest first), with their backfill parts."""
    async with db.execute(
        f"{JOB_COLUMNS} WHERE state IN ('requested', 'running') OR id IN"
        " (SELECT MAX(id) FROM jobs WHERE state NOT IN ('requested', 'running') GROUP BY kind) ORDER BY id DESC"
    ) as cur:
        jobs = [job_row(row) async for row in cur]
    parts: dict[int, list[PartRow]] = {}
    for job in jobs:
        if job.kind == "backfill":
            async with db.execute(f"{PART_COLUMNS} WHERE job = ? ORDER BY ord", (job.id,)) as cur:
                parts[job.id] = [part_row(row) async for row in cur]
    return jobs, parts


async def read_status(db: aiosqlite.Connection) -> StatusSnapshot:
    """Everything a status reader shows, read in one go (also from a read-only connection)."""
    async with db.execute(f"{POSITION_COLUMNS} ORDER BY stream") as cur:
        streams = [position_of(row) async for row in cur]
    events = int(await scalar(db, "SELECT COUNT(*) FROM events WHERE action <> ?", (TOUCHED,)))
    quarantined = int(await scalar(db, "SELECT COUNT(*) FROM quarantine"))
    names: set[str] = set()
    for sql in (
        "SELECT DISTINCT sink FROM totals",
        "SELECT DISTINCT sink FROM outbox",
        "SELECT sink FROM sink_state",
        "SELECT DISTINCT sink FROM dead_letters",
        "SELECT DISTINCT sink FROM waits",
    ):
        async with db.execute(sql) as cur:
            names.update([row[0] async for row in cur])
    sinks = [await _sink_status(db, name) for name in sorted(names)]
    async with db.execute("SELECT api, until FROM throttles ORDER BY api") as cur:
        throttles = {str(api): float(until) async for api, until in cur}
    jobs, parts = await read_jobs(db)
    return StatusSnapshot(
        streams=streams,
        events=events,
        quarantined=quarantined,
        sinks=sinks,
        drift=await read_drift(db),
        throttles=throttles,
        jobs=jobs,
        parts=parts,
    )


async def _sink_status(db: aiosqlite.Connection, sink: str) -> SinkStatus:
    counts: dict[str, int] = {}
    async with db.execute("SELECT outcome, n FROM totals WHERE sink = ?", (sink,)) as cur:
        async for outcome, n in cur:
            counts[outcome] = int(n)
    pending = int(await scalar(db, "SELECT COUNT(*) FROM deliveries WHERE sink = ? AND status = 'pending'", (sink,)))
    oldest = await scalar(
        db,
        "SELECT created_at FROM deliveries WHERE sink = ? AND status = 'pending' ORDER BY seq LIMIT 1",
        (sink,),
    )
    dead = int(await scalar(db, "SELECT COUNT(*) FROM deliveries WHERE sink = ? AND status = 'dead'", (sink,)))
    letters = int(await scalar(db, "SELECT COUNT(*) FROM dead_letters WHERE sink = ?", (sink,)))
    keys = int(await scalar(db, "SELECT COUNT(*) FROM outbox WHERE sink = ?", (sink,)))
    attempts = int(await scalar(db, "SELECT COALESCE(MAX(attempts), 0) FROM outbox WHERE sink = ?", (sink,)))
    async with db.execute("SELECT paused, paused_until FROM sink_state WHERE sink = ?", (sink,)) as cur:
        state = await cur.fetchone()
    waiting = int(await scalar(db, "SELECT COUNT(*) FROM waits WHERE sink = ?", (sink,)))
    checking = int(await scalar(db, "SELECT COUNT(*) FROM outbox WHERE sink = ? AND verify_at IS NOT NULL", (sink,)))
    async with db.execute(
        "SELECT w.key, w.on_key, w.reason, w.since, w.checks, o.due_at FROM waits w LEFT JOIN outbox o"
        " ON o.sink = w.sink AND o.key = w.key WHERE w.sink = ? ORDER BY w.since, w.key LIMIT ?",
        (sink, WAITS_SHOWN),
    ) as cur:
        waits = [
            WaitingKey(sink, str(key), Wait(str(on), str(reason), float(since), int(checks)), due)
            async for key, on, reason, since, checks, due in cur
        ]
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
        waiting=waiting,
        waits=waits,
        checking=checking,
    )


class Reporting(StoreBase):
    """Status and counts, for status readers and reports."""

    async def status(self) -> StatusSnapshot:
        async with self.reading() as db:
            return await read_status(db)

    async def events_by_stream(self) -> dict[str, int]:
        """Stored events per stream (pruned ones no longer count; requeues are no stream's)."""
        async with (
            self.reading() as db,
            db.execute("SELECT stream, COUNT(*) FROM events WHERE action <> ? GROUP BY stream", (TOUCHED,)) as cur,
        ):
            return {str(stream): int(n) async for stream, n in cur}

    async def deliveries_by_sink(self) -> dict[str, int]:
        """Stored deliveries per destination, whatever their status."""
        async with self.reading() as db, db.execute("SELECT sink, COUNT(*) FROM deliveries GROUP BY sink") as cur:
            return {str(sink): int(n) async for sink, n in cur}

    async def skip_reasons(self) -> list[tuple[str, str, int]]:
        """(destination, reason, deliveries) of every skipped delivery still stored; "" for no reason."""
        async with (
            self.reading() as db,
            db.execute(
                "SELECT sink, COALESCE(reason, ''), COUNT(*) FROM deliveries WHERE status = 'skipped'"
                " GROUP BY sink, reason"
            ) as cur,
        ):
            return [(str(sink), str(reason), int(n)) async for sink, reason, n in cur]

"""Jobs: work the daemon carries out on a command's behalf (a backfill, a reconciliation), queued and followed here.

A command queues a job (`request_job`) and reads its progress from the store; the daemon that owns the state file
runs it (`start_job` ... `finish_job`). A job left running by a process that died is taken up again by the next
owner from where its checkpoints say it stood.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from state.base import StoreBase

OPEN = ("requested", "running")
JOB_COLUMNS = (
    "SELECT id, kind, params, reason, state, capture_seq, result, error, requested_at, started_at, finished_at"
    " FROM jobs"
)


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    kind: str  # backfill | reconcile
    params: str  # JSON
    reason: str  # start | expired | operator
    state: str  # requested | running | done | failed | cancelled
    capture_seq: int | None
    result: str | None  # JSON
    error: str | None
    requested_at: float
    started_at: float | None
    finished_at: float | None

    @property
    def open(self) -> bool:
        return self.state in OPEN


def job_row(row: Any) -> JobRow:
    return JobRow(
        id=int(row[0]),
        kind=str(row[1]),
        params=str(row[2]),
        reason=str(row[3]),
        state=str(row[4]),
        capture_seq=int(row[5]) if row[5] is not None else None,
        result=row[6],
        error=row[7],
        requested_at=float(row[8]),
        started_at=float(row[9]) if row[9] is not None else None,
        finished_at=float(row[10]) if row[10] is not None else None,
    )


class Jobs(StoreBase):
    """Queueing, reading and finishing jobs."""

    async def request_job(self, kind: str, params: str, *, reason: str = "operator") -> JobRow:
        """Queue a job (or return the open one of the same kind with the same params: asking twice runs it once)."""
        now = self._clock()
        async with self.transaction() as db:
            async with db.execute(
                f"{JOB_COLUMNS} WHERE kind = ? AND params = ? AND state IN ('requested', 'running')"
                " ORDER BY id LIMIT 1",
                (kind, params),
            ) as cur:
                row = await cur.fetchone()
            if row is not None:
                return job_row(row)
            cur = await db.execute(
                "INSERT INTO jobs (kind, params, reason, requested_at, updated_at) VALUES (?,?,?,?,?)",
                (kind, params, reason, now, now),
            )
            job_id = cur.lastrowid
            async with db.execute(f"{JOB_COLUMNS} WHERE id = ?", (job_id,)) as cur:
                created = await cur.fetchone()
        return job_row(created)

    async def job(self, job_id: int) -> JobRow | None:
        async with self.reading() as db, db.execute(f"{JOB_COLUMNS} WHERE id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        return job_row(row) if row is not None else None

    async def jobs(self, kind: str | None = None, *, states: Sequence[str] = (), limit: int = 20) -> list[JobRow]:
        """The newest jobs (of `kind`, in `states`), newest first."""
        where, params = [], []
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            params.extend(states)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        async with (
            self.reading() as db,
            db.execute(f"{JOB_COLUMNS}{clause} ORDER BY id DESC LIMIT ?", (*params, limit)) as cur,
        ):
            return [job_row(row) async for row in cur]

    async def open_jobs(self, kind: str) -> list[JobRow]:
        """The jobs of `kind` still to run or running, oldest first."""
        return sorted(await self.jobs(kind, states=OPEN, limit=1000), key=lambda j: j.id)

    async def start_job(self, job_id: int) -> None:
        now = self._clock()
        async with self.transaction() as db:
            await db.execute(
                "UPDATE jobs SET state = 'running', started_at = COALESCE(started_at, ?), updated_at = ?"
                " WHERE id = ? AND state IN ('requested', 'running')",
                (now, now, job_id),
            )

    async def finish_job(self, job_id: int, state: str, *, result: str | None = None, error: str | None = None) -> None:
        """Close a job as done, failed or cancelled, with what came of it."""
        now = self._clock()
        async with self.transaction() as db:
            await db.execute(
                "UPDATE jobs SET state = ?, result = COALESCE(?, result), error = ?, finished_at = ?, updated_at = ?"
                " WHERE id = ?",
                (state, result, error, now, now, job_id),
            )

    async def set_job_result(self, job_id: int, result: str) -> None:
        """Record what a running job has found so far (a reconciliation's report, for its command to show)."""
        async with self.transaction() as db:
            await db.execute("UPDATE jobs SET result = ?, updated_at = ? WHERE id = ?", (result, self._clock(), job_id))

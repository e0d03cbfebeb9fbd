"""How far a backfill has come, read from the store (so any process can show it: the daemon running it, or the
`syncd backfill` that asked for it), and shown as progress bars on a terminal or as log events otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from state import JobRow, PartRow, Store
from syncd.backfill.job import estimate_part
from syncd.logs import get_logger

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

REFRESH = 0.5  # seconds between readings of the store


@dataclass(frozen=True, slots=True)
class PartProgress:
    name: str
    state: str
    records: int
    total: int | None  # estimated from the ids read so far (exact once done)
    fraction: float | None


@dataclass(frozen=True, slots=True)
class JobProgress:
    job: JobRow
    parts: tuple[PartProgress, ...]

    @property
    def records(self) -> int:
        return sum(p.records for p in self.parts)


async def read_progress(store: Store, job_id: int) -> JobProgress | None:
    """The job and where each of its parts stands (None when there is no such job)."""
    job = await store.job(job_id)
    if job is None:
        return None
    return JobProgress(job, tuple(part_progress(row) for row in await store.parts(job_id)))


def part_progress(row: PartRow) -> PartProgress:
    estimate = estimate_part(row)
    return PartProgress(row.part, row.state, row.records, estimate.total, estimate.fraction)


async def deliveries(store: Store) -> None:
    """Bars of what each destination still has to deliver, until cancelled (after a backfill, while the daemon
    that ran it delivers what it queued)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    tasks: dict[str, TaskID] = {}
    columns = (
        TextColumn("delivering to {task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bars:
        while True:
            for sink in (await store.status()).sinks:
                total = sink.done + sink.skipped + sink.dead + sink.pending
                task = tasks.get(sink.sink)
                if task is None:
                    task = tasks[sink.sink] = bars.add_task(sink.sink, total=total)
                bars.update(task, completed=total - sink.pending, total=total)
            await anyio.sleep(REFRESH * 2)


async def follow(store: Store, job_id: int, *, terminal: bool | None = None, events: bool = True) -> JobRow:
    """Show the job's progress until it is finished; its final row. Bars on a terminal, log events otherwise
    (`events` False: none, when this process is the daemon doing the job, whose own `backfill_progress` events
    say it)."""
    shown = sys.stderr.isatty() if terminal is None else terminal
    if shown:
        return await _bars(store, job_id)
    return await _events(store, job_id, logged=events)


async def _events(store: Store, job_id: int, *, logged: bool) -> JobRow:
    log = get_logger(job=job_id)
    last = 0.0
    while True:
        progress = await read_progress(store, job_id)
        if progress is None:
            raise LookupError(f"no backfill job {job_id}")
        if not progress.job.open:
            return progress.job
        if logged and time.monotonic() - last >= 5.0:
            last = time.monotonic()
            current = next((p for p in progress.parts if p.state == "scanning"), None)
            log.info(
                "backfill_progress",
                part=current.name if current else None,
                records=current.records if current else None,
                part_total=current.total if current else None,
                percent=round(current.fraction * 100, 1) if current and current.fraction is not None else None,
                records_total=progress.records,
            )
        await anyio.sleep(REFRESH)


async def _bars(store: Store, job_id: int) -> JobRow:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    tasks: dict[str, TaskID] = {}
    columns = (
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bars:
        while True:
            progress = await read_progress(store, job_id)
            if progress is None:
                raise LookupError(f"no backfill job {job_id}")
            _update(bars, tasks, progress.parts)
            if not progress.job.open:
                return progress.job
            await anyio.sleep(REFRESH)


def _update(bars: Progress, tasks: dict[str, TaskID], parts: Sequence[PartProgress]) -> None:
    for part in parts:
        if part.state == "pending":
            continue
        task = tasks.get(part.name)
        total = part.total if part.total is not None else None
        if task is None:
            task = tasks[part.name] = bars.add_task(part.name, total=total, rate="")
        speed = bars.tasks[task].speed
        rate = f"{speed:,.0f}/s" if speed else ""
        bars.update(task, completed=part.records, total=total, rate=rate)

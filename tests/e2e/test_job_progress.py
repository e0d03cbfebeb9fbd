"""A command that becomes the daemon to run its job (`syncd backfill` with no daemon running) shows the job's
progress only while the daemon runs: the daemon closes its store when it stops, and a reader of a closed store
fails."""

from __future__ import annotations

from pathlib import Path

import anyio.lowlevel

from state import Store
from syncd.backfill.job import job_params
from syncd.commands.jobs import run_job
from tests.e2e.world import person, world


async def test_a_progress_watcher_reading_when_the_daemon_stops_is_stopped_before_the_store_closes(
    tmp_path: Path,
) -> None:
    """run_job returns the finished job, with no error, though its watcher reads the store without pause until it
    is stopped (the daemon's store closes after the daemon stops)."""
    with world(tmp_path) as w:
        w.append("leads", *[person("lead", i) for i in range(1, 21)])
        reads = 0

        async def watch(store: Store, job_id: int, beside: bool) -> None:
            nonlocal reads
            while True:  # as a progress display does, but with no pause between reads
                await store.job(job_id)
                reads += 1
                await anyio.lowlevel.checkpoint()

        job = await run_job(w.config(), "backfill", job_params(["leads"]), daemon={"backfill": ["leads"]}, watch=watch)
    assert job is not None and job.state == "done"
    assert reads > 0

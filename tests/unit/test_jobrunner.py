"""The job runner on a real store: an expected failure is the job's result with its text, a bug fails the job
saying so and the runner goes on to the next, a failing store stops the runner, and a done job keeps its result."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from state import JobRow, Store
from syncd.errors import StoreError
from syncd.jobrunner import JobRunner
from syncd.ledger import Ledger
from tests.support import await_until


class Expected(Exception):
    pass


class Runner(JobRunner):
    """Runs jobs (of a kind the store accepts) whose params say what to do: ok, expected, bug or store."""

    kind = "reconcile"

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger)
        self.finished_jobs: list[int] = []

    async def execute(self, job: JobRow) -> dict[str, Any]:
        do = json.loads(job.params)["do"]
        if do == "expected":
            raise Expected("the account refused")
        if do == "bug":
            raise KeyError("oops")
        if do == "store":
            raise StoreError("disk I/O error")
        return {"did": do}

    def failure(self, job: JobRow, exc: Exception) -> str | None:
        return str(exc) if isinstance(exc, Expected) else None

    def finished(self, job: JobRow, result: dict[str, Any], seconds: float) -> None:
        self.finished_jobs.append(job.id)


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    opened = Ledger(await Store.open(tmp_path / "syncd.db", sinks=("salesmanago",)))
    yield opened
    await opened.close()


async def queue(ledger: Ledger, do: str) -> JobRow:
    return await ledger.store.request_job("reconcile", json.dumps({"do": do}))


async def run_until_none_open(runner: Runner) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(runner.run)

        async def idle() -> bool:
            return not await runner.pending()

        await await_until(idle, what="every queued job to end")
        tg.cancel_scope.cancel()


async def test_expected_failures_and_bugs_fail_their_jobs_and_the_next_job_still_runs(ledger: Ledger) -> None:
    """An expected failure stores its text, a bug stores "internal error" and logs reconcile_crashed, and the job
    queued after them is done with its result."""
    runner = Runner(ledger)
    expected, bug, ok = await queue(ledger, "expected"), await queue(ledger, "bug"), await queue(ledger, "ok")
    with capture_logs() as logs:
        await run_until_none_open(runner)
    states = {j.id: (j.state, j.error, j.result) for j in await ledger.store.jobs("reconcile")}
    assert states[expected.id] == ("failed", "the account refused", None)
    assert states[bug.id] == ("failed", "internal error: KeyError", None)
    assert states[ok.id] == ("done", None, json.dumps({"did": "ok"}))
    assert runner.finished_jobs == [ok.id]
    assert [e["job"] for e in logs if e["event"] == "reconcile_crashed"] == [bug.id]
    assert [e["job"] for e in logs if e["event"] == "reconcile_started"] == [expected.id, bug.id, ok.id]
    assert runner.running is None


async def test_a_failing_store_is_not_taken_for_the_jobs_failure(ledger: Ledger) -> None:
    """A StoreError inside a job leaves the runner (the daemon handles the store) and the job is not marked failed."""
    runner = Runner(ledger)
    job = await queue(ledger, "store")
    with pytest.raises(StoreError):
        await runner.run()
    assert (await ledger.store.job(job.id)) is not None
    assert (await ledger.store.job(job.id)).state == "running"  # type: ignore[union-attr]
    assert runner.running is None

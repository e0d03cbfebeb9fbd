"""Running the store's jobs of one kind (backfills, reconciliations): oldest first, one at a time, woken when one is
queued; a failure the job knows is its result, a bug fails the job saying so instead of stopping the daemon, and the
store itself failing is the daemon's to handle."""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from typing import Any

import anyio

from state import JobRow
from syncd.errors import StoreError
from syncd.ledger import Ledger
from syncd.logs import get_logger

CHECK_EVERY = 1.0  # seconds between looks for jobs queued by a command


class JobRunner(ABC):
    """Runs the jobs of `kind`; a subclass says how one runs, which failures it expects and what it logs."""

    kind: str

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.running: JobRow | None = None
        self._wake = anyio.Event()
        self._log = get_logger()

    def wake(self) -> None:
        """Look for queued jobs now instead of at the next check."""
        self._wake.set()

    async def pending(self) -> bool:
        """Whether a job of this kind is queued or running."""
        return self.running is not None or bool(await self.ledger.store.open_jobs(self.kind))

    async def run(self) -> None:
        """Run queued jobs until cancelled (a cancelled job goes on next time from its checkpoints)."""
        while True:
            for job in await self.ledger.store.open_jobs(self.kind):
                await self._run_one(job)
            self._wake = anyio.Event()
            with anyio.move_on_after(CHECK_EVERY):
                await self._wake.wait()

    @abstractmethod
    async def execute(self, job: JobRow) -> dict[str, Any]:
        """Run `job` to its result (JSON-serialisable), raising what `failure` knows when it cannot finish."""

    @abstractmethod
    def failure(self, job: JobRow, exc: Exception) -> str | None:
        """The error text of an expected failure of `job` (logged by the subclass), or None for a bug."""

    def started(self, job: JobRow) -> None:
        """Log that `job` starts, with what it was asked to do."""
        self._log.info(f"{self.kind}_started", job=job.id, params=json.loads(job.params))

    @abstractmethod
    def finished(self, job: JobRow, result: dict[str, Any], seconds: float) -> None:
        """Called when `job` is done with `result` after `seconds` (for logging)."""

    async def _run_one(self, job: JobRow) -> None:
        self.running = job
        started = time.monotonic()
        try:
            await self.ledger.store.start_job(job.id)
            self.started(job)
            try:
                result = await self.execute(job)
            except StoreError:
                raise
            except Exception as exc:
                error = self.failure(job, exc)
                if error is None:
                    self._log.exception(f"{self.kind}_crashed", job=job.id, error=type(exc).__name__)
                    error = f"internal error: {type(exc).__name__}"
                await self.ledger.store.finish_job(job.id, "failed", error=error)
                return
            await self.ledger.store.finish_job(job.id, "done", result=json.dumps(result))
            self.finished(job, result, time.monotonic() - started)
        finally:
            self.running = None

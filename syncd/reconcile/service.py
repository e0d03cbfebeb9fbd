"""The daemon's reconciliations: jobs queued by `syncd reconcile`, run one at a time with the daemon's own limiters
(Sell's, which its pollers share, and each destination's, which its dispatchers share); the report is the job's
result, for the command to print."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from state import JobRow
from syncd.backfill.scan import ScanFailed, Scanner
from syncd.errors import CallError
from syncd.jobrunner import JobRunner
from syncd.ledger import Ledger
from syncd.reconcile.job import KIND, Reconcile, job_params
from syncd.reconcile.report import problems_in
from syncd.sinks.base import Writer


class ReconcileService(JobRunner):
    """Runs the store's reconciliation jobs, oldest first."""

    kind = KIND

    def __init__(
        self,
        ledger: Ledger,
        scanner: Scanner,
        writers: Mapping[str, Writer],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ledger)
        self.scanner = scanner
        self.writers = writers
        self.clock = clock

    async def request(self, sinks: Sequence[str], *, repair: bool) -> JobRow:
        job = await self.ledger.store.request_job(KIND, job_params(sinks, repair=repair), reason="operator")
        self.wake()
        return job

    async def execute(self, job: JobRow) -> dict[str, Any]:
        return await Reconcile(
            job, ledger=self.ledger, scanner=self.scanner, writers=self.writers, clock=self.clock
        ).run()

    def failure(self, job: JobRow, exc: Exception) -> str | None:
        if not isinstance(exc, ScanFailed | CallError):
            return None
        error = exc.message if isinstance(exc, CallError) else str(exc)
        self._log.error("reconcile_failed", job=job.id, error=error)
        return error

    def finished(self, job: JobRow, result: dict[str, Any], seconds: float) -> None:
        self._log.info("reconcile_done", job=job.id, differences=problems_in(result), seconds=result["seconds"])

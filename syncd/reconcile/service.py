"""The daemon's reconciliations: jobs queued by `syncd reconcile`, run one at a time with the daemon's own limiters
(Sell's, which its pollers share, and each destination's, which its dispatchers share); the report is the job's
result, for the command to print."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence

import anyio

from state import JobRow
from syncd.backfill.scan import ScanFailed, Scanner
from syncd.errors import CallError, StoreError
from syncd.ledger import Ledger
from syncd.logs import get_logger
from syncd.reconcile.job import KIND, Reconcile, job_params
from syncd.reconcile.report import problems_in
from syncd.sinks.base import Writer

CHECK_EVERY = 1.0  # seconds between looks for jobs queued by a command


class ReconcileService:
    """Runs the store's reconciliation jobs, oldest first."""

    def __init__(
        self,
        ledger: Ledger,
        scanner: Scanner,
        writers: Mapping[str, Writer],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self.scanner = scanner
        self.writers = writers
        self.clock = clock
        self.running: JobRow | None = None
        self._wake = anyio.Event()
        self._log = get_logger()

    async def request(self, sinks: Sequence[str], *, repair: bool) -> JobRow:
        job = await self.ledger.store.request_job(KIND, job_params(sinks, repair=repair), reason="operator")
        self._wake.set()
        return job

    async def pending(self) -> bool:
        return self.running is not None or bool(await self.ledger.store.open_jobs(KIND))

    async def run(self) -> None:
        while True:
            for job in await self.ledger.store.open_jobs(KIND):
                await self._run_one(job)
            self._wake = anyio.Event()
            with anyio.move_on_after(CHECK_EVERY):
                await self._wake.wait()

    async def _run_one(self, job: JobRow) -> None:
        self.running = job
        try:
            await self.ledger.store.start_job(job.id)
            self._log.info("reconcile_started", job=job.id, params=json.loads(job.params))
            try:
                result = await Reconcile(
                    job, ledger=self.ledger, scanner=self.scanner, writers=self.writers, clock=self.clock
                ).run()
            except (ScanFailed, CallError) as exc:
                error = exc.message if isinstance(exc, CallError) else str(exc)
                await self.ledger.store.finish_job(job.id, "failed", error=error)
                self._log.error("reconcile_failed", job=job.id, error=error)
                return
            except StoreError:
                raise  # the store itself failing is the daemon's to handle
            except Exception as exc:  # a bug must not stop the daemon: the job fails saying so
                self._log.exception("reconcile_crashed", job=job.id, error=type(exc).__name__)
                await self.ledger.store.finish_job(job.id, "failed", error=f"internal error: {type(exc).__name__}")
                return
            await self.ledger.store.finish_job(job.id, "done", result=json.dumps(result))
            self._log.info("reconcile_done", job=job.id, differences=problems_in(result), seconds=result["seconds"])
        finally:
            self.running = None

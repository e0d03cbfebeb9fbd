"""The daemon's backfills: jobs queued by `syncd backfill`, by a first run with `[sell] start = "backfill"`, or by an
expired stream with `[sell] on_expired = "backfill"`, run one at a time with the daemon's own Sell limiter (the one
its pollers share: the token's 10 requests a second). A job a stopped daemon left running goes on from its
checkpoints when the next one starts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from state import JobRow
from syncd.backfill.job import Backfill, job_params, job_streams
from syncd.backfill.scan import ScanFailed, Scanner
from syncd.config import SellConfig
from syncd.jobrunner import JobRunner
from syncd.ledger import Ledger
from syncd.ratelimit import Limiter
from syncd.sell.core import CoreApi
from syncd.sell.poller import FirehoseClient

KIND = "backfill"


class BackfillService(JobRunner):
    """Runs the store's backfill jobs, oldest first."""

    kind = KIND

    def __init__(
        self,
        ledger: Ledger,
        config: SellConfig,
        limiter: Limiter,
        firehose: FirehoseClient,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(ledger)
        self.config = config
        self.limiter = limiter
        self.firehose = firehose
        self.clock = clock
        self.api = CoreApi(config, limiter)
        self.scanner = Scanner(self.api, limiter, max_backoff=config.max_backoff, rng=rng)

    async def request(self, streams: Sequence[str], *, reason: str) -> JobRow:
        """Queue a backfill of `streams` (or find the one already queued) and wake the runner."""
        job = await self.ledger.store.request_job(KIND, job_params(streams), reason=reason)
        self._log.info("backfill_requested", job=job.id, streams=sorted(set(streams)), reason=reason)
        self.wake()
        return job

    async def covering(self, stream: str) -> JobRow | None:
        """The queued or running backfill that reads `stream`, if any."""
        for job in await self.ledger.store.open_jobs(KIND):
            if stream in job_streams(job):
                return job
        return None

    async def ensure(self, stream: str, *, reason: str) -> JobRow:
        """A backfill that reads `stream`: the one queued or running, or a new one."""
        return await self.covering(stream) or await self.request([stream], reason=reason)

    async def needs_position(self, stream: str) -> bool:
        """Whether `stream` waits for a backfill to capture its position: it has none usable (never read with
        `start = "backfill"`, or expired) and a backfill is on its way or should be."""
        stored = await self.ledger.position(stream)
        if stored is not None and stored.position and not stored.expired:
            return False
        if stored is None or not stored.position:
            return self.config.start == "backfill"
        return True

    async def wait_position(self, stream: str, within: float | None = None) -> bool:
        """Whether `stream` has a usable position again (a backfill captured it) within `within` seconds (None:
        however long it takes)."""
        with anyio.move_on_after(within if within is not None else float("inf")):
            while True:
                stored = await self.ledger.position(stream)
                if stored is not None and stored.position and not stored.expired:
                    return True
                await anyio.sleep(0.1)
        return False

    async def execute(self, job: JobRow) -> dict[str, Any]:
        return await Backfill(
            job,
            ledger=self.ledger,
            scanner=self.scanner,
            firehose=self.firehose,
            limiter=self.limiter,
            clock=self.clock,
        ).run()

    def failure(self, job: JobRow, exc: Exception) -> str | None:
        if not isinstance(exc, ScanFailed):
            return None
        self._log.error(
            "backfill_failed",
            job=job.id,
            streams=job_streams(job),
            error=str(exc),
            http_status=exc.error.http_status,
            hint="the streams go on from where the backfill began; fix the cause and run"
            " `syncd backfill` again (it reads everything again, nothing is lost)",
        )
        return str(exc)

    def finished(self, job: JobRow, result: dict[str, Any], seconds: float) -> None:
        self._log.info(
            "backfill_done",
            job=job.id,
            streams=job_streams(job),
            records=result["records"],
            requests=result["requests"],
            found_again=result["found_again"],
            gone=result["gone"],
            quarantined=result["quarantined"],
            duration_ms=round(seconds * 1000, 1),
        )

    async def aclose(self) -> None:
        await self.api.aclose()

"""One poller per Firehose stream: read pages from the stored position and hand each to the store's ingest.

The position advances only inside the same transaction that stores the page's events and deliveries, so a crash
at any instant re-reads at most one page. A page that cannot be decoded, a throttle (429/409), a 5xx, a timeout or a
dropped connection is retried with jittered backoff from the same position, each failure recorded in the store; a
page that failed `FAILING_AFTER` times in a row makes the stream "failing" (status, readiness). 401/403 (or another
refusal of Sell's own) stop the stream loudly, and it is probed again with backoff, resuming by itself once Sell
answers; 410 marks it expired, loudly. A single item that cannot be normalised is quarantined with its raw body and
the page goes on.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio

from state import IngestResult, Quarantined, StreamPosition
from syncd.config import SellConfig
from syncd.errors import (
    CallError,
    DestinationError,
    PermanentError,
    RateLimited,
    StreamExpired,
    TransientError,
)
from syncd.events import ChangeEvent
from syncd.logs import get_logger
from syncd.ratelimit import Limiter
from syncd.retry import RetryPolicy
from syncd.sell.normalise import NormaliseError, normalise
from syncd.sell.wire import decode_page

Sleep = Callable[[float], Awaitable[None]]
FAILING_AFTER = 5  # reads of one page failing in a row that make the stream "failing" (readiness; status too)


class PollStore(Protocol):
    """The part of the store a poller uses (syncd.ledger.Ledger implements it)."""

    async def position(self, stream: str) -> StreamPosition | None:
        """The stream's stored position (None before its first page)."""
        ...

    async def ingest(
        self,
        stream: str,
        events: Sequence[ChangeEvent],
        *,
        position: str,
        at_top: bool,
        quarantined: Sequence[Quarantined] = (),
    ) -> IngestResult:
        """Store one page and the stream's new position in one transaction."""
        ...

    async def mark_stream(self, stream: str, *, expired: bool = False, stopped: str | None = None) -> None:
        """Record that the stream's position expired, or that polling it stopped and why."""
        ...

    async def note_failure(self, stream: str, failures: int, error: str) -> None:
        """Record that reading the stream's next page failed `failures` times in a row, the last with `error`."""
        ...


class Room(Protocol):
    """What a poller asks before storing a page (syncd.diskspace.DiskBudget: the state file's budget)."""

    def queued(self, deliveries: int) -> None:
        """A page queued this many deliveries."""
        ...

    async def wait_for_room(self) -> None:
        """Return once there is room to store another page."""
        ...


class FirehoseClient(Protocol):
    """Reads one Firehose page (syncd.sell.client.SellClient implements it)."""

    async def fetch_page(self, stream: str, position: str, limit: int) -> bytes:
        """The raw body of one page from `position`; raises a classified CallError on any failure."""
        ...


@dataclass
class StreamState:
    """What the rest of the process (status, health, --until-idle) needs to know about one stream's poller."""

    stream: str
    phase: str = "starting"  # starting | backfilling | reading | at_top | backing_off | expired | stopped
    at_top: bool = False
    events: int = 0
    duplicates: int = 0
    quarantined: int = 0
    failures: int = 0  # reads of the same page that failed in a row
    last_error: str = ""
    probes: int = 0  # reads tried since the stream stopped
    top_read_at: float = 0.0  # (monotonic) when the last read that reached the top was asked for

    @property
    def finished(self) -> bool:
        """Whether this poller makes no progress now: expired (for good, until an operator acts) or stopped
        (probed again with backoff, resuming by itself once Sell answers)."""
        return self.phase in ("expired", "stopped")

    @property
    def failing(self) -> bool:
        """Whether the same page has failed `FAILING_AFTER` times in a row."""
        return self.failures >= FAILING_AFTER


class Poller:
    def __init__(
        self,
        stream: str,
        *,
        client: FirehoseClient,
        store: PollStore,
        config: SellConfig,
        limiter: Limiter,
        backlog: Room | None = None,
        rng: random.Random | None = None,
        sleep: Sleep = anyio.sleep,
        on_ingest: Callable[[int], None] | None = None,
    ) -> None:
        self.stream = stream
        self.client = client
        self.store = store
        self.config = config
        self.limiter = limiter
        self.backlog = backlog
        self.policy = RetryPolicy(base=0.5, cap=config.max_backoff)
        self.probe_policy = RetryPolicy(base=1.0, cap=config.max_backoff)
        self.rng = rng or random.Random()
        self._sleep = sleep
        self._on_ingest = on_ingest
        self.state = StreamState(stream)
        self._log = get_logger(stream=stream)

    async def start_position(self) -> str:
        """The stored position; the first time, `start` ("tail" or "top"). With `start = "backfill"` a backfill
        captures the first position (the daemon waits for it): without one the stream cannot start."""
        stored = await self.store.position(self.stream)
        if stored is not None and stored.position:
            return stored.position
        if self.config.start == "backfill":
            raise PermanentError(f"the {self.stream} stream has no position yet: a backfill must capture one first")
        return self.config.start

    async def run(self) -> StreamState:
        """Poll until cancelled, or until the stream cannot go on (its position expired, or it has none to start
        from); returns its final state. A stream Sell refuses (401/403, ...) stops, loudly, and is probed again with
        backoff until a page reads."""
        self.state.phase, self.state.at_top, self.state.last_error = "starting", False, ""
        try:
            position = await self.start_position()
        except PermanentError as exc:
            return await self._finish("stopped", exc, expired=False)
        self._log.info("stream_started", position_kind=_kind_of(position), limit=self.config.page_limit)
        while True:
            if self.backlog is not None:
                await self.backlog.wait_for_room()
            try:
                position = await self.poll_once(position)
            except StreamExpired as exc:
                return await self._finish("expired", exc, expired=True)
            except (DestinationError, PermanentError) as exc:
                await self._stop(exc)
                continue
            except TransientError as exc:
                await self._back_off(exc)
                continue
            if self.state.at_top:
                self.state.phase = "at_top"
                await self._sleep(self.config.poll_interval)

    async def poll_once(self, position: str) -> str:
        """Read and ingest one page from `position`; returns the new position."""
        if self.state.phase != "stopped":  # a stopped stream stays stopped until a probe reads a page
            self.state.phase = "reading" if not self.state.at_top else self.state.phase
        await self.limiter.acquire()
        started = time.monotonic()
        body = await self.client.fetch_page(self.stream, position, self.config.page_limit)
        page = decode_page(body)
        events: list[ChangeEvent] = []
        quarantined: list[Quarantined] = []
        for raw in page.items:
            try:
                events.append(normalise(self.stream, raw))  # decoded where it lies in the page: no copy
            except NormaliseError as exc:
                quarantined.append(Quarantined(str(exc), bytes(raw)))
                self._log.warning("item_quarantined", reason=str(exc))
        result = await self.store.ingest(
            self.stream, events, position=page.position, at_top=page.top, quarantined=quarantined
        )
        state = self.state
        state.events += result.new
        state.duplicates += result.duplicates
        state.quarantined += result.quarantined
        state.at_top = page.top
        if page.top:
            state.top_read_at = started
        if state.phase == "stopped":
            self._log.info("stream_resumed", after_probes=state.probes)
            state.phase = "reading"
        elif state.failures:
            self._log.info("stream_recovered", after_failures=state.failures)
        state.failures = state.probes = 0
        state.last_error = ""
        if result.received or not page.top:
            self._log.info(
                "page_ingested",
                events=result.received,
                new=result.new,
                duplicates=result.duplicates,
                stale=result.stale,
                deliveries=result.deliveries,
                quarantined=result.quarantined,
                top=page.top,
                duration_ms=round((time.monotonic() - started) * 1000, 1),
            )
        if result.deliveries:
            if self.backlog is not None:
                self.backlog.queued(result.deliveries)
            if self._on_ingest is not None:
                self._on_ingest(result.deliveries)
        return page.position

    async def _back_off(self, exc: CallError) -> None:
        state = self.state
        if state.phase == "stopped":  # a probe that got no answer: the stream is still stopped
            await self._probe_later(exc)
            return
        state.failures += 1
        state.phase = "backing_off"
        state.last_error = exc.message
        delay = self.policy.backoff(state.failures, self.rng)
        if isinstance(exc, RateLimited):
            # Every stream shares the token's limit: hold them all, not just this one.
            self.limiter.pause(delay)
        self._log.warning(
            "poll_failed",
            error=exc.message,
            http_status=exc.http_status,
            attempt=state.failures,
            retry_in_s=round(delay, 3),
        )
        await self.store.note_failure(self.stream, state.failures, exc.message)
        if state.failures == FAILING_AFTER:
            self._log.error(
                "stream_failing",
                error=exc.message,
                failures=state.failures,
                hint="the same page keeps failing; syncd keeps retrying it (see syncd status)",
            )
        await self._sleep(delay)

    async def _stop(self, exc: CallError) -> None:
        """Sell refused the stream (401/403, or a refusal of its own): stop, say why, and probe again later."""
        state = self.state
        if state.phase != "stopped":
            state.phase = "stopped"
            state.at_top = False
            state.probes = 0
            state.last_error = exc.message
            await self.store.mark_stream(self.stream, stopped=exc.message)
            self._log.error(
                "stream_stopped",
                error=exc.message,
                http_status=exc.http_status,
                hint="fix the token (or what Sell refused); syncd probes again with backoff and resumes by itself",
            )
        await self._probe_later(exc)

    async def _probe_later(self, exc: CallError) -> None:
        state = self.state
        state.probes += 1
        state.last_error = exc.message
        delay = self.probe_policy.backoff(state.probes, self.rng)
        if state.probes > 1:
            self._log.info("stream_probe_failed", error=exc.message, attempt=state.probes, retry_in_s=round(delay, 3))
        await self._sleep(delay)

    async def _finish(self, phase: str, exc: CallError, *, expired: bool) -> StreamState:
        # An expired stream the daemon re-syncs itself is never finished: nothing waits for an operator.
        self.state.phase = "backfilling" if expired and self.config.on_expired == "backfill" else phase
        self.state.at_top = False
        self.state.last_error = exc.message
        await self.store.mark_stream(self.stream, expired=expired, stopped=None if expired else exc.message)
        if expired:
            self._log.error(
                "stream_expired",
                error=exc.message,
                http_status=exc.http_status,
                hint=self.expired_hint(),
            )
        else:
            self._log.error("stream_stopped", error=exc.message, http_status=exc.http_status)
        return self.state

    def expired_hint(self) -> str:
        """What the operator can do about an expired position (what the daemon does itself, with `on_expired`)."""
        if self.config.on_expired == "backfill":
            return (
                "the position is older than Sell's 72-hour retention; syncd re-syncs the stream through the Core API"
                " (on_expired = backfill) and goes on from the new head"
            )
        return (
            f"the position is older than Sell's 72-hour retention; re-sync it with `syncd backfill --streams"
            f" {self.stream}` (safe while syncd runs), or skip what was lost with `syncd position --stream"
            f" {self.stream} --set top`"
        )


def _kind_of(position: str) -> str:
    return position if position in ("tail", "top") else "stored"

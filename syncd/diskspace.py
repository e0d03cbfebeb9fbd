"""Polling pauses only to protect the disk, and then loudly.

A destination that is down keeps its backlog in the store while the others go on: no count of pending deliveries
ever stops ingest. What is limited is the state file: `state.max_size` bytes in use, and `state.min_free` bytes left
free on its filesystem. When either is reached, finished events are pruned at once (before their retention: under
pressure, the history kept for `syncd replay` goes first); only if that does not make room does polling pause, with
an error naming the budget and how many hours are left before the oldest unread position expires (Sell keeps 72
hours), repeated while it lasts, and /readyz unready. Polling resumes once use is below 90 % of the budget and the
free space above its floor again (deliveries finishing and pruning make room, or the budget is raised).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio

from state import StreamPosition
from syncd.logs import get_logger
from syncd.sell.expiry import expiry

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
RESUME_AT = 0.9  # polling resumes below this share of max_size (and with min_free back, plus a tenth)
PRUNE_EVERY = 10  # while paused, finished events are pruned again every this many checks
REPORT_EVERY = 600.0  # seconds between the error lines while polling stays paused


@dataclass(frozen=True, slots=True)
class Usage:
    """How much of the state file is in use (bytes), and how much its filesystem has free (None: unknown)."""

    used: int
    free: int | None


class SpaceStore(Protocol):
    """What the budget asks of the store (syncd.ledger.Ledger implements it)."""

    async def usage(self) -> Usage:
        """Bytes the state file uses, and bytes free on its filesystem."""
        ...

    async def prune_finished(self) -> int:
        """Delete every finished event, whatever its age; how many went."""
        ...

    async def position(self, stream: str) -> StreamPosition | None:
        """A stream's stored position (for the hours left before it expires)."""
        ...


def _mb(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def over_budget(usage: Usage, *, max_size: int, min_free: int, resuming: bool = False) -> str:
    """Why `usage` is over the budget of `max_size` bytes in use and `min_free` bytes left free ("" when it is
    not); `resuming` asks with the margin polling resumes at (below 90 % of max_size, a tenth above min_free)."""
    limit = max_size * (RESUME_AT if resuming else 1.0)
    floor = min_free * (1.1 if resuming else 1.0)
    if usage.used >= limit:
        return f"the state file uses {_mb(usage.used)} of its {_mb(max_size)} budget (state.max_size)"
    if usage.free is not None and usage.free <= floor:
        return (
            f"{_mb(usage.free)} left free on the state file's filesystem, at its {_mb(min_free)} floor (state.min_free)"
        )
    return ""


class DiskBudget:
    """The state file's budget, shared by every poller: `wait_for_room` returns at once while there is room, and
    holds every poller while there is none."""

    def __init__(
        self,
        store: SpaceStore,
        *,
        max_size: int,
        min_free: int,
        streams: Sequence[str],
        check_every: float = 1.0,
        sleep: Sleep = anyio.sleep,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self.store = store
        self.max_size = max_size
        self.min_free = min_free
        self.streams = tuple(streams)
        self.check_every = check_every
        self._sleep = sleep
        self._clock = clock
        self._monotonic = monotonic
        self._checked = -float("inf")
        self._lock = anyio.Lock()
        self.paused = False
        self.reason = ""  # why polling is paused (while it is)
        self.expires_in: float | None = None  # seconds before the oldest unread position expires (while paused)
        self._log = get_logger()

    def queued(self, deliveries: int) -> None:
        """A page queued deliveries (the budget looks at the file itself, so this changes nothing)."""

    def over(self, usage: Usage, *, resuming: bool = False) -> str:
        """Why `usage` is over the budget ("" when it is not); `resuming` asks with the margin polling resumes at."""
        return over_budget(usage, max_size=self.max_size, min_free=self.min_free, resuming=resuming)

    async def wait_for_room(self) -> None:
        """Return when there is room to store another page; prune, then pause, when there is none."""
        if self._monotonic() - self._checked < self.check_every and not self.paused:
            return
        async with self._lock:  # one poller checks (and waits); the others then find the answer fresh
            if self._monotonic() - self._checked < self.check_every:
                return
            usage = await self.store.usage()
            if self.over(usage):
                pruned = await self.store.prune_finished()
                usage = await self.store.usage()
                reason = self.over(usage)
                if pruned:
                    self._log.warning("state_pruned_early", events=pruned, room_left=not reason)
                if reason:
                    await self._pause(reason)
            self._checked = self._monotonic()

    async def _pause(self, reason: str) -> None:
        self.expires_in = await self._expires_in()  # known before anyone is told polling paused
        self.paused, self.reason = True, reason
        checks, reported = 0, -float("inf")
        while True:
            if self._monotonic() - reported >= REPORT_EVERY:
                reported = self._monotonic()
                self.expires_in = await self._expires_in()
                hours = round(self.expires_in / 3600, 1) if self.expires_in is not None else None
                self._log.error(
                    "polling_paused" if checks == 0 else "polling_still_paused",
                    reason=self.reason,
                    expires_in_h=hours,
                    hint="make room for the state file (raise state.max_size, free the disk) or let the destinations"
                    " catch up, before the oldest unread position expires",
                )
            await self._sleep(self.check_every)
            checks += 1
            if checks % PRUNE_EVERY == 0:
                await self.store.prune_finished()
            usage = await self.store.usage()
            if not self.over(usage, resuming=True):
                break
            self.reason = self.over(usage) or self.reason
        self.paused, self.reason, self.expires_in = False, "", None
        self._log.info("polling_resumed", used_mb=round(usage.used / 1e6, 1))

    async def _expires_in(self) -> float | None:
        """Seconds before the first of the streams' unread positions expires (None when none is known)."""
        now = self._clock()
        lefts = []
        for stream in self.streams:
            stored = await self.store.position(stream)
            if stored is not None and stored.position and not stored.expired:
                left = expiry(stored, now=now, margin=0.0).expires_in
                if left is not None:
                    lefts.append(left)
        return min(lefts) if lefts else None

    def describe(self) -> str:
        """One line for readiness while paused."""
        if not self.paused:
            return ""
        left = (
            f"; the oldest unread position expires in {self.expires_in / 3600:.1f} h"
            if self.expires_in is not None
            else ""
        )
        return f"polling paused: {self.reason}{left}"

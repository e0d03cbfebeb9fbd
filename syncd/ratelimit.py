"""The client-side rate limiter: one per API account, shared by every task that calls that account.

A sliding window (never more than `count` calls in any `period`), which is what Ontraport's rolling 180/min and
Sell's 10/s mean; a token bucket would allow twice the count across a window edge. The limiter can also be paused as a
whole (a 429, or `X-Rate-Limit-Remaining` reaching zero): every caller then waits for the reset instead of each
retrying on its own, so a throttled account sees at most one refused call per pause. A pause never lasts longer than
`max_pause` (the destination's `max_backoff`), whatever a server asks, and each one is announced (`on_pause`) with
its end in wall-clock time, for status readers, health and metrics.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import islice

import anyio

from syncd.units import Rate

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Calls leave here a little before they reach the server; keep a margin so its window never sees one too many.
_MARGIN = 0.05


@dataclass
class Ticket:
    """The calls one unit of work (a dispatcher's batch) was let through, across every limiter: while it is 0 the
    work has sent nothing to any server, so a stopping daemon may drop it without leaving a write in flight.
    `syncd.httpclient` counts each request as it ends: `void` when it certainly had no effect (it never left, or
    the server refused it unprocessed), else `reached`. The work left no write anywhere when no request reached a
    server and every call let through was void."""

    calls: int = 0
    void: int = 0
    reached: int = 0

    @property
    def sent_nothing(self) -> bool:
        """Whether no call of the work can have taken effect."""
        return self.reached == 0 and self.void >= self.calls


TICKET: ContextVar[Ticket | None] = ContextVar("syncd_limiter_ticket", default=None)


class Limiter:
    """At most `rate` calls, FIFO among waiters, plus whole-account pauses."""

    def __init__(
        self,
        name: str,
        rate: Rate | None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
        reserve: int = 1,
        max_pause: float | None = None,
        wall: Clock = time.time,
    ) -> None:
        self.name = name
        self.rate = rate
        self.reserve = reserve  # calls that may be in flight at once: kept back from a server's remaining count
        self.max_pause = max_pause  # the longest a server's wait may hold the account
        self.on_pause: Callable[[Limiter], None] | None = None  # told of every pause that starts or is extended
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self._calls: deque[float] = deque()
        self._lock = anyio.Lock(fast_acquire=True)  # no round of the event loop when free
        self._paused_until = 0.0
        self.waits = 0  # how many acquisitions had to wait (for metrics)
        self.waited = 0.0  # total seconds spent waiting
        self.pauses = 0  # whole-account pauses so far
        self.started = 0  # calls let through so far: a caller notes it after `acquire`, to tell `observe` which

    @property
    def paused_until(self) -> float:
        """Clock time before which no call may start (0 when not paused)."""
        return self._paused_until if self._paused_until > self._clock() else 0.0

    def delay(self) -> float:
        """Seconds the next call would wait now (0 when it may go at once). Pure look-up, counts nothing."""
        now = self._clock()
        wait = max(0.0, self._paused_until - now)
        if self.rate is not None and len(self._calls) >= self.rate.count:
            oldest = self._calls[len(self._calls) - int(self.rate.count)]
            wait = max(wait, oldest + self.rate.period + _MARGIN - now)
        return wait

    async def acquire(self) -> float:
        """Wait for a slot; returns the seconds waited."""
        start = self._clock()
        async with self._lock:
            while (wait := self.delay()) > 0:
                await self._sleep(wait)
            now = self._clock()
            self.started += 1
            ticket = TICKET.get()
            if ticket is not None:  # counted before the caller's next await: no cancel can fall in between
                ticket.calls += 1
            if self.rate is not None:
                self._calls.append(now)
                while len(self._calls) > self.rate.count:
                    self._calls.popleft()
        waited = self._clock() - start
        if waited > 0:
            self.waits += 1
            self.waited += waited
        return waited

    async def acquire_spare(self, spare: int, *, poll: float = 0.05) -> float:
        """Wait for a slot the account's other callers leave: only while nobody else waits for one and at least
        `spare` more calls than this one would still fit in the window (background work, such as feedback to
        Sell, never takes the slots the pollers need). Returns the seconds waited."""
        start = self._clock()
        while self._lock.locked() or self._delay(spare) > 0:
            await self._sleep(max(poll, self._delay(spare)))
        await self.acquire()
        return self._clock() - start

    def _delay(self, spare: int) -> float:
        """Like `delay`, with `spare` slots of the window kept free."""
        wait = self.delay()
        if self.rate is None or spare <= 0:
            return wait
        room = max(1, int(self.rate.count) - spare)  # calls of the window this caller may bring it to
        now = self._clock()
        if len(self._calls) >= room:
            oldest = self._calls[len(self._calls) - room]
            wait = max(wait, oldest + self.rate.period + _MARGIN - now)
        return wait

    def paused_until_wall(self) -> float | None:
        """The end of the current pause in wall-clock (epoch) seconds, for status readers; None when not paused."""
        left = self._paused_until - self._clock()
        return self._wall() + left if left > 0 else None

    def pause(self, seconds: float) -> bool:
        """Hold every caller for `seconds` from now (at most `max_pause`); True when this starts (or extends) a
        pause."""
        held = max(0.0, seconds) if self.max_pause is None else min(max(0.0, seconds), self.max_pause)
        until = self._clock() + held
        if until <= self._paused_until:
            return False
        if self._paused_until <= self._clock():
            self.pauses += 1
        self._paused_until = until
        if self.on_pause is not None:
            self.on_pause(self)
        return True

    def observe(self, remaining: int | None, reset: float | None, *, call: int | None = None) -> bool:
        """Use a response's rate-limit headers pre-emptively: with no more calls left in the window than may be in
        flight at once (`reserve`), pause until it resets (`reset`: seconds, or an epoch time a server sent
        instead), so the calls already on their way are the last ones. True when that started a pause.

        `call` is the answered call's number (`started` just after its `acquire`): every call let through after it
        may have reached the server after it answered, so the server's `remaining` is that much too high. On a
        busy machine many can start between an answer and the moment it is read here.

        No pause when this limiter's own calls account for every call the server counted (its window, `rate`,
        held those in the window up to the answered call): the sliding window already spaces the next ones, and a
        reset in whole seconds would stop a window's worth of calls for up to a second at every turn of the
        window. Calls the server counted beyond them (another client on the account, a lower limit there) pause."""
        if remaining is None or reset is None:
            return False
        later = max(0, self.started - call) if call is not None else 0
        if remaining - later > self.reserve or self._explains(remaining, call):
            return False
        return self.pause(reset_seconds(reset, self._wall()))

    def _explains(self, remaining: int, call: int | None) -> bool:
        """Whether this limiter's own calls in the window up to call number `call` are at least as many as the
        server counted (`rate.count - remaining`, the server's limit taken as this limiter's)."""
        if self.rate is None or call is None:
            return False
        index = len(self._calls) - 1 - (self.started - call)
        if not 0 <= index < len(self._calls):
            return False  # not among the calls kept: unknown
        at = self._calls[index]
        ours = sum(1 for t in islice(self._calls, index + 1) if t > at - self.rate.period)
        return self.rate.count - remaining <= ours


EPOCH_FLOOR = 1_000_000_000.0  # a "seconds until reset" this large is an epoch time (September 2001 on)


def reset_seconds(value: float, now: float) -> float:
    """Seconds until a rate-limit window resets, from a header that should hold seconds but may hold an epoch time
    (in seconds or milliseconds) instead; never negative."""
    if value >= EPOCH_FLOOR * 1000:
        value /= 1000.0
    if value >= EPOCH_FLOOR:
        return max(0.0, value - now)
    return max(0.0, value)

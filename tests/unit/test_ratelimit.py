"""The shared client-side limiter: a sliding window, FIFO waiters, and whole-account pauses (time is faked)."""

from __future__ import annotations

import anyio
import pytest

from syncd.ratelimit import Limiter
from syncd.units import Rate


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_never_more_than_count_in_any_window() -> None:
    """180 calls go at once, the 181st waits until the first leaves the rolling minute."""
    t = FakeTime()
    limiter = Limiter("op", Rate(180, 60), clock=t.clock, sleep=t.sleep)
    starts = []
    for _ in range(400):
        await limiter.acquire()
        starts.append(t.now)
    for i in range(len(starts) - 180):
        assert starts[i + 180] - starts[i] >= 60.0
    assert starts[179] == 1000.0 and starts[180] >= 1060.0
    assert limiter.waits > 0


async def test_unlimited_never_waits() -> None:
    """Without a rate the limiter only applies pauses."""
    t = FakeTime()
    limiter = Limiter("sm", None, clock=t.clock, sleep=t.sleep)
    for _ in range(1000):
        await limiter.acquire()
    assert t.sleeps == []


async def test_pause_holds_every_caller_until_the_reset() -> None:
    """A pause (a 429) holds all callers until it ends; a shorter pause does not shorten it."""
    t = FakeTime()
    limiter = Limiter("op", None, clock=t.clock, sleep=t.sleep)
    assert limiter.pause(30) is True
    assert limiter.pause(5) is False
    assert limiter.paused_until == 1030.0
    await limiter.acquire()
    assert t.now == 1030.0
    assert limiter.pauses == 1
    assert limiter.paused_until == 0.0


@pytest.mark.parametrize(
    ("remaining", "reset", "paused"),
    [(0, 12.0, True), (1, 12.0, True), (2, 12.0, False), (None, 12.0, False), (0, None, False)],
)
def test_rate_limit_headers_pause_pre_emptively(remaining: int | None, reset: float | None, paused: bool) -> None:
    """X-Rate-Limit-Remaining at or below the reserve pauses until X-Rate-Limit-Reset, before any 429."""
    t = FakeTime()
    limiter = Limiter("op", None, clock=t.clock, sleep=t.sleep)
    assert limiter.observe(remaining, reset) is paused
    assert (limiter.paused_until > 0) is paused


async def test_concurrent_callers_share_one_window() -> None:
    """Many tasks acquiring at once still respect the single window (real clock, tiny period)."""
    limiter = Limiter("sell", Rate(5, 0.2))
    stamps: list[float] = []

    async def call() -> None:
        await limiter.acquire()
        stamps.append(anyio.current_time())

    async with anyio.create_task_group() as tg:
        for _ in range(15):
            tg.start_soon(call)
    stamps.sort()
    for i in range(len(stamps) - 5):
        assert stamps[i + 5] - stamps[i] >= 0.2

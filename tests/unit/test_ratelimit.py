"""The shared client-side limiter: a sliding window, FIFO waiters, and whole-account pauses (time is faked)."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from syncd.ratelimit import Limiter, reset_seconds
from syncd.units import Rate
from tests.support import FakeClock

NOW = 1_795_000_000.0


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


@pytest.mark.parametrize(("started_after", "paused"), [(0, False), (2, False), (3, True), (5, True)])
async def test_calls_let_through_after_the_answered_one_count_against_its_remaining(
    started_after: int, paused: bool
) -> None:
    """An answer saying 5 calls remain, read once `started_after` more calls have been let through (a busy machine
    reads answers late): those may have reached the server after it answered, so with a reserve of 2 the account
    pauses once 2 or fewer are really left. (Before, only the header was read: more calls than the reserve went out
    on a stale count and were refused.)"""
    t = FakeTime()
    limiter = Limiter("op", None, clock=t.clock, sleep=t.sleep, reserve=2)
    await limiter.acquire()
    call = limiter.started
    for _ in range(started_after):
        await limiter.acquire()
    assert limiter.observe(5, 1.0, call=call) is paused


@pytest.mark.parametrize(
    ("answered", "remaining", "paused"), [(10, 0, False), (10, 1, False), (5, 0, True), (5, 5, False)]
)
async def test_headers_pause_only_for_calls_the_limiters_own_window_does_not_hold(
    answered: int, remaining: int, paused: bool
) -> None:
    """With a rate, a low X-Rate-Limit-Remaining that this limiter's own calls explain (as many of them in the
    window up to the answered call as the server counted) does not pause: its window already spaces the next
    calls. Calls the server counted beyond its own (another client on the account) pause as before."""
    t = FakeTime()
    limiter = Limiter("op", Rate(10, 1.0), clock=t.clock, sleep=t.sleep, reserve=2)
    numbers = []
    for _ in range(10):
        await limiter.acquire()
        numbers.append(limiter.started)
    assert limiter.observe(remaining, 1.0, call=numbers[answered - 1]) is paused


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


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(0.0, 0.0), (42.0, 42.0), (86_400.0, 86_400.0), (NOW + 30, 30.0), ((NOW + 30) * 1000, 30.0), (NOW - 5, 0.0)],
)
def test_a_reset_header_is_read_as_seconds_or_as_an_epoch_time(value: float, seconds: float) -> None:
    """X-Rate-Limit-Reset holds seconds until the reset; an epoch time (seconds or milliseconds) is read as one."""
    assert reset_seconds(value, NOW) == pytest.approx(seconds)


def test_a_pause_is_capped_announced_and_shown_in_wall_clock_time() -> None:
    """However long a server asks for, the pause lasts at most max_pause; each pause that starts or grows is
    announced, with its end in wall-clock time."""
    clock = FakeClock(100.0)
    limiter = Limiter("ontraport", None, clock=clock, max_pause=3.0, wall=lambda: NOW + clock.now)
    announced: list[float | None] = []
    limiter.on_pause = lambda lim: announced.append(lim.paused_until_wall())
    assert limiter.observe(0, (NOW + 10 * 365 * 86400) * 1.0)
    assert limiter.delay() == 3.0
    assert not limiter.pause(1.0)  # inside the pause already running
    assert announced == [NOW + 100.0 + 3.0]
    clock.advance(3.0)
    assert limiter.paused_until_wall() is None


@pytest.mark.parametrize(("spare", "burst"), [(0, 10), (2, 8), (9, 1), (50, 1)])
async def test_a_background_caller_leaves_spare_slots_of_the_window(spare: int, burst: int) -> None:
    """`acquire_spare` takes a slot only while `spare` more would still fit in the window (at least one call per
    window always goes), so feedback never takes the slots the pollers need."""
    t = FakeTime()
    limiter = Limiter("sell", Rate(10, 1), clock=t.clock, sleep=t.sleep)
    for _ in range(burst):
        await limiter.acquire_spare(spare)
    assert t.now == 1000.0
    await limiter.acquire_spare(spare)
    assert t.now > 1000.0
    await limiter.acquire()  # a foreground caller still finds its slots
    assert len([c for c in limiter._calls if c > t.now - 1]) <= 10


async def test_a_background_caller_waits_while_others_wait_for_a_slot() -> None:
    """While a foreground caller waits for a slot (the window is full), a background one does not go first."""
    t = FakeTime()
    limiter = Limiter("sell", Rate(2, 1), clock=t.clock, sleep=t.sleep)
    order: list[str] = []

    async def foreground() -> None:
        await limiter.acquire()
        order.append("poller")

    async def background() -> None:
        await anyio.lowlevel.checkpoint()
        await limiter.acquire_spare(1, poll=0.01)
        order.append("feedback")

    await limiter.acquire()
    await limiter.acquire()
    async with anyio.create_task_group() as tg:
        tg.start_soon(foreground)
        tg.start_soon(background)
    assert order == ["poller", "feedback"]

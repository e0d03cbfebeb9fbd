"""The state file's budget: polling pauses only to protect the disk, after pruning early, and says how long the
oldest unread position has left; it resumes with a margin (fake store and time)."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
import pytest
from structlog.testing import capture_logs

from state import StreamPosition
from syncd.config import RETENTION
from syncd.diskspace import DiskBudget, Usage
from tests.support import FakeClock

MB = 10**6
NOW = 1_795_000_000.0


@dataclass
class FakeSpace:
    """Usage answered in turn (the last repeats); pruning frees `freed` bytes the first time it finds something."""

    usages: list[Usage]
    freed: int = 0
    prunes: int = 0
    read_at: float = NOW - 10 * 3600  # the streams' oldest unread event: ten hours ago
    asked: list[str] = field(default_factory=list)

    async def usage(self) -> Usage:
        self.asked.append("usage")
        return self.usages.pop(0) if len(self.usages) > 1 else self.usages[0]

    async def prune_finished(self) -> int:
        self.prunes += 1
        if self.freed:
            self.usages = [Usage(u.used - self.freed, u.free) for u in self.usages]
            self.freed = 0
            return 40
        return 0

    async def position(self, stream: str) -> StreamPosition | None:
        return StreamPosition(stream, "cD0x", True, self.read_at, expired=False, stopped=None)


class Sleeps(FakeClock):
    def __init__(self) -> None:
        super().__init__(0.0)
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
        await anyio.lowlevel.checkpoint()


def budget(space: FakeSpace, time: Sleeps) -> DiskBudget:
    return DiskBudget(
        space,
        max_size=100 * MB,
        min_free=50 * MB,
        streams=["leads", "contacts"],
        check_every=1.0,
        sleep=time.sleep,
        clock=lambda: NOW + time.now,
        monotonic=time,
    )


@pytest.mark.parametrize(
    ("usage", "resuming", "over"),
    [
        (Usage(99 * MB, 10**12), False, ""),
        (Usage(100 * MB, 10**12), False, "uses 100.0 MB of its 100.0 MB budget (state.max_size)"),
        (Usage(95 * MB, 10**12), True, "uses 95.0 MB of its 100.0 MB budget"),
        (Usage(89 * MB, 10**12), True, ""),
        (Usage(1 * MB, 50 * MB), False, "50.0 MB left free on the state file's filesystem, at its 50.0 MB floor"),
        (Usage(1 * MB, 54 * MB), True, "54.0 MB left free"),
        (Usage(1 * MB, None), False, ""),
    ],
)
def test_over_the_budget_by_size_or_by_free_space(usage: Usage, resuming: bool, over: str) -> None:
    """The file over max_size, or its filesystem at min_free, is over the budget; resuming asks for 10 % to spare."""
    found = budget(FakeSpace([usage]), Sleeps()).over(usage, resuming=resuming)
    assert (over in found) if over else found == ""


async def test_pruning_early_makes_room_without_pausing() -> None:
    """Over the budget, finished events are pruned at once (before their retention); with room made, nothing
    pauses."""
    space = FakeSpace([Usage(120 * MB, 10**12)], freed=40 * MB)
    guard = budget(space, Sleeps())
    with capture_logs() as logs:
        await guard.wait_for_room()
    assert space.prunes == 1 and not guard.paused
    assert [e["event"] for e in logs] == ["state_pruned_early"]


async def test_polling_pauses_loudly_until_there_is_room_with_a_margin() -> None:
    """Still over after pruning: polling pauses with an error naming the budget and the hours before the oldest
    unread position expires (72 h after it was read: 62 h here), and resumes only below 90 % of the budget."""
    space = FakeSpace([Usage(120 * MB, 10**12)] * 3 + [Usage(95 * MB, 10**12)] * 3 + [Usage(80 * MB, 10**12)])
    time = Sleeps()
    guard = budget(space, time)
    seen: list[str] = []

    async def watch() -> None:
        while not guard.paused:
            await anyio.lowlevel.checkpoint()
        seen.append(guard.describe())

    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await guard.wait_for_room()
    assert not guard.paused and guard.describe() == ""
    assert time.slept == [1.0] * 5
    [paused] = [e for e in logs if e["event"] == "polling_paused"]
    assert paused["log_level"] == "error" and "of its 100.0 MB budget" in paused["reason"]
    assert paused["expires_in_h"] == round((RETENTION - 10 * 3600) / 3600, 1)
    assert [e["event"] for e in logs][-1] == "polling_resumed"
    assert seen and seen[0].startswith("polling paused: the state file uses 120.0 MB") and "62.0 h" in seen[0]


@pytest.mark.parametrize(
    ("usage", "over", "warned"),
    [
        (Usage(400 * MB, 10_000 * MB), False, ""),
        (Usage(1_000 * MB, 10_000 * MB), True, "the state file uses 1000.0 MB of its 1000.0 MB budget"),
        (Usage(400 * MB, 100 * MB), True, "100.0 MB left free on the state file's filesystem, at its 500.0 MB"),
        (Usage(400 * MB, None), False, ""),
    ],
)
def test_status_shows_the_state_file_against_its_budget(usage: Usage, over: bool, warned: str) -> None:
    """`syncd status` (another process) judges the state file by the daemon's own test: bytes in use and free, the
    limits, and at the budget why polling pauses, with a warning line in the table."""
    from syncd.commands.status import _state_lines, state_budget

    state = state_budget(usage, max_size=1_000 * MB, min_free=500 * MB)
    assert state["used_bytes"] == usage.used and state["free_bytes"] == usage.free
    assert state["budget"]["over"] is over and state["budget"]["max_size"] == 1_000 * MB
    assert state["budget"]["resume_below"] == 900 * MB  # a pause lasts until then
    lines = _state_lines(state)
    assert lines[0].startswith(f"state file: {usage.used / MB:.1f} MB in use of 1000.0 MB (state.max_size)")
    if over:
        assert warned in state["budget"]["reason"] and warned in lines[1] and lines[1].startswith("warning: ")
    else:
        assert state["budget"]["reason"] is None and len(lines) == 1

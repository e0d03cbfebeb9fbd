"""Wall-clock steps stretch no wait: with the wall clock stepped back a day while a destination is down (its
breaker open, its keys due for retry), the destination resumes as soon as it is back, not a day later; a step
while syncd was not running is repaired at start-up."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from syncd.config import load
from syncd.daemon import Daemon
from syncd.runtime import Runtime
from tests.e2e.world import World, person, world
from tests.support import await_until

DAY = 86_400.0


class SteppingClock:
    """The wall clock, which a test can step (mocked time: the monotonic clock goes on as it is)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


async def test_a_backward_step_of_a_day_does_not_pause_a_destination_for_a_day(w: World) -> None:
    """Ontraport down: its breaker opens and its keys wait for their retries; the wall clock steps back a day; once
    Ontraport is back every lead reaches it within seconds, and the step is logged."""
    clock = SteppingClock()
    w.stop("op")
    w.append("leads", *[person("lead", i) for i in range(1, 6)])
    config = w.config_text().replace('max_backoff = "200ms"', 'max_backoff = "2s"')
    (w.tmp_path / "syncd.toml").write_text(config)
    daemon = Daemon(load(w.tmp_path / "syncd.toml"), clock=clock, handle_signals=False)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            runtime: Runtime = await tg.start(daemon.run)
            state = next(d.state for d in runtime.dispatchers if d.sink == "ontraport")
            await await_until(lambda: _is(state.pause_kind == "unavailable"), deadline=20, what="the breaker")
            await await_until(lambda: _retries_due(w), deadline=20, what="keys waiting for their retries")
            clock.offset -= DAY
            w.start("op")
            await await_until(lambda: _is(len(w.op_by_email()) == 5), deadline=20, what="Ontraport to catch up")
            daemon.stop()
    [stepped] = [e for e in logs if e["event"] == "clock_stepped"]
    assert stepped["direction"] == "back" and DAY - 10 < stepped["step_s"] < DAY + 10
    assert stepped["times_moved"] > 0


async def test_a_step_while_syncd_was_stopped_is_repaired_at_start(w: World) -> None:
    """Times a run wrote lie a day ahead of the clock the next run starts with (stepped back meanwhile): it moves
    them back at start-up, and a delete stored before the step is carried out at once, not a day later."""
    w.append("leads", person("lead", 1))
    assert await w.run() == 0
    w.append("leads", person("lead", 1, 2, "deleted"))
    clock = SteppingClock()
    clock.offset = DAY  # the first run's clock was a day ahead: to the next one, its times lie a day in the future
    first = Daemon(w.config(), clock=clock, until_idle=True, handle_signals=False)
    w.op.fault(path="/1/Contact", method="DELETE", status=503, times=1000)  # the delete waits, stored
    w.sm.fault(path="/api/contact/delete", status=503, times=1000)
    async with anyio.create_task_group() as tg:
        await tg.start(first.run)
        await await_until(lambda: _stored_ahead(w), deadline=20, what="the delete stored a day ahead")
        first.stop()
    w.op.clear_faults()
    w.sm.clear_faults()
    with capture_logs() as logs, anyio.fail_after(30):
        assert await w.run() == 0  # the real clock: a day behind the first run's
    assert "lead1@example.org" not in w.op_by_email()
    assert w.sm_contacts()["lead1@example.org"].get("deleted") or "lead1@example.org" not in w.sm_contacts()
    [stepped] = [e for e in logs if e["event"] == "clock_stepped"]
    assert stepped["while_stopped"] is True and stepped["step_s"] > DAY - 60


async def _is(value: bool) -> bool:
    return value


async def _retries_due(w: World) -> bool:
    with sqlite3.connect(w.tmp_path / "syncd.db") as conn:
        n = conn.execute("SELECT COUNT(*) FROM outbox WHERE sink = 'ontraport' AND attempts > 0").fetchone()[0]
    return int(n) > 0


async def _stored_ahead(w: World) -> bool:
    with sqlite3.connect(w.tmp_path / "syncd.db") as conn:
        newest = conn.execute("SELECT MAX(ingested_at) FROM events").fetchone()[0]
        pending = conn.execute("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'").fetchone()[0]
    return newest is not None and newest > time.time() + DAY / 2 and int(pending) > 0

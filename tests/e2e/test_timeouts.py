"""A timeout bounds a call end to end, connect to last byte: an answer trickled a byte per second (every single
read well inside the timeout) is given up on at the timeout, for Sell's Firehose and for both destinations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from syncd.daemon import Daemon
from tests.e2e.world import World, person, world
from tests.support import await_until


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


async def test_a_trickled_answer_is_given_up_on_at_the_timeout(w: World) -> None:
    """A Firehose page, a SALESmanago upsert and an Ontraport write, each answered a byte at a time, every byte
    inside the timeout and the whole answer minutes long: each call ends at its timeout (500 ms, 2 s) as a
    transient failure, and everything is delivered."""
    # Each byte well inside the timeout (so no single read times out), the whole answer far beyond it.
    w.sell.fault(path="/v3/leads/stream", trickle=0.2, times=1)
    w.sm.fault(path="/api/contact/upsert", trickle=0.5, times=1)
    w.op.fault(path="/1/Contacts/saveorupdate", trickle=0.5, times=1)
    w.append("leads", person("lead", 1))
    config = w.config(sell='timeout = "500ms"')  # the destinations' timeout is the world's 2 s
    daemon = Daemon(config, handle_signals=False)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(daemon.run)
            await await_until(lambda: _delivered(w), deadline=30, what="the lead at both destinations")
            daemon.stop()
    timeouts = [
        (e["event"], e.get("sink") or e.get("stream"))
        for e in logs
        if e["event"] in ("poll_failed", "delivery_failed") and "did not answer in time" in str(e["error"])
    ]
    assert ("poll_failed", "leads") in timeouts
    assert ("delivery_failed", "salesmanago") in timeouts
    assert ("delivery_failed", "ontraport") in timeouts


async def _delivered(w: World) -> bool:
    return w.sm.get("state")["contacts"] == 1 and len(w.op_by_email()) == 1

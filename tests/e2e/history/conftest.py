"""Fixtures of the Ontraport history tests: one loopback server per module, a fresh account, store and clock per
test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from syncd.ledger import Ledger
from syncd.sandbox.ontraport.app import OntraportSandbox
from syncd.sandbox.server import ServerThread
from tests.e2e.history.harness import API_KEY, APP_ID, SINK, START, History
from tests.support import AppSwitch, FakeClock


@pytest.fixture(scope="module")
def switch() -> Iterator[tuple[AppSwitch, str]]:
    app = AppSwitch()
    with ServerThread(app) as server:
        yield app, server.url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def sandbox(switch: tuple[AppSwitch, str], clock: FakeClock) -> OntraportSandbox:
    made = OntraportSandbox(app_id=APP_ID, api_key=API_KEY, clock=clock, rate=None)
    switch[0].app = made.app
    return made


@pytest.fixture
async def history(
    tmp_path: Path, switch: tuple[AppSwitch, str], sandbox: OntraportSandbox, clock: FakeClock
) -> AsyncIterator[History]:
    store = await Ledger.open(tmp_path / "syncd.db", sinks=(SINK,), clock=clock)
    async with httpx.AsyncClient(base_url=switch[1], timeout=5) as control:
        made = History(store, switch[1], clock, control)
        try:
            yield made
        finally:
            for writer in made.writers:
                await writer.aclose()
            await store.close()

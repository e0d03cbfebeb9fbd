"""A stream Sell refuses (401) stops loudly and is probed again with backoff: readiness is red while it is stopped,
and it resumes by itself, without a restart, once Sell takes the token again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from structlog.testing import capture_logs

from syncd.config import load
from syncd.daemon import Daemon
from tests.e2e.world import SELL_TOKEN, World, person, world
from tests.support import await_until, free_port


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


async def test_a_revoked_sell_token_stops_the_stream_until_it_works_again(w: World) -> None:
    """With the token revoked, the leads stream stops (logged, stored, /readyz 503 naming it) while the process
    stays up; it is probed with backoff, and once the token is back the stream resumes by itself and its people
    reach both destinations."""
    port = free_port()
    file = w.tmp_path / "syncd.toml"
    file.write_text(w.config_text().replace("[health]\nenabled = false", f'[health]\nlisten = "127.0.0.1:{port}"'))
    w.append("leads", person("lead", 1))
    w.sell.post("tokens", {"tokens": ["a-token-someone-else-holds"]})  # syncd's token revoked
    daemon = Daemon(load(file), handle_signals=False)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await tg.start(daemon.run)

            async def stopped() -> bool:
                answer = await http.get("/readyz")
                return answer.status_code == 503 and "stream leads stopped: Sell answered 401" in answer.text

            await await_until(stopped, deadline=20, what="/readyz to report the stopped stream")
            await await_until(lambda: _probes(logs, 2), deadline=20, what="the stream to be probed again")
            w.sell.post("tokens", {"tokens": [SELL_TOKEN]})  # given back
            await await_until(lambda: _delivered(w), deadline=30, what="the lead at both destinations")

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await await_until(ready, deadline=10, what="/readyz to be ready again")
            daemon.stop()
    events = [e["event"] for e in logs if e.get("stream") == "leads" and e["event"].startswith("stream_")]
    assert events[:2] == ["stream_started", "stream_stopped"]
    assert events[-1] == "stream_resumed"


async def _probes(logs: list[dict[str, Any]], times: int) -> bool:
    return sum(1 for e in logs if e["event"] == "stream_probe_failed" and e.get("stream") == "leads") >= times


async def _delivered(w: World) -> bool:
    return w.sm.get("state")["contacts"] == 1 and len(w.op_by_email()) == 1

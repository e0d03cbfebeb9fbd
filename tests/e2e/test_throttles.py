"""Server-supplied waits are capped at max_backoff, and every throttle pause shows with its end: a `Retry-After`
of 28 hours or an epoch-valued `X-Rate-Limit-Reset` pause a destination for its max_backoff, visibly in /readyz,
/metrics and `syncd status`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from structlog.testing import capture_logs

from syncd.commands.cli import main
from syncd.config import load
from syncd.daemon import Daemon
from tests.e2e.world import World, person, world
from tests.support import await_until, free_port

CAP = 3.0  # the destinations' max_backoff here


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_a_server_asking_for_days_pauses_the_destination_for_max_backoff_and_says_so(
    w: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """SALESmanago answers 429 with Retry-After: 100000 (28 h) and Ontraport 429 with an X-Rate-Limit-Reset ten
    years ahead as an epoch time: each destination pauses for its 3 s max_backoff, /readyz, /metrics and
    `syncd status` show each pause with its end, and the lead reaches both within seconds."""
    w.sm.fault(
        path="/api/contact/upsert",
        status=429,
        headers={"Retry-After": "100000"},
        body=json.dumps({"success": False, "message": ["Too many requests"]}),
        times=1,
    )
    decade = str(int(time.time()) + 10 * 365 * 86400)
    w.op.fault(
        path="/1/Contacts/saveorupdate",
        status=429,
        headers={"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": decade},
        body="Rate limit exceeded",
        content_type="text/plain",
        times=1,
    )
    w.append("leads", person("lead", 1))
    port = free_port()
    file = w.tmp_path / "syncd.toml"
    text = w.config_text().replace("[health]\nenabled = false", f'[health]\nlisten = "127.0.0.1:{port}"')
    file.write_text(text.replace('max_backoff = "200ms"', f'max_backoff = "{CAP:g}s"'))
    daemon = Daemon(load(file), handle_signals=False)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await tg.start(daemon.run)

            async def both_throttled() -> dict[str, str] | None:
                found: dict[str, str] = (await http.get("/readyz")).json().get("throttled", {})
                return found if {"salesmanago", "ontraport"} <= set(found) else None

            shown = await await_until(both_throttled, deadline=20, what="/readyz to show both throttle pauses")
            seen = time.time()
            for api in ("salesmanago", "ontraport"):
                assert seen - 1 <= _epoch(shown[api]) <= seen + CAP + 0.5  # capped, not 28 hours or ten years
            metrics = (await http.get("/metrics")).text
            assert 'syncd_throttled_until_seconds{api="salesmanago"}' in metrics
            assert 'syncd_throttled_until_seconds{api="salesmanago"} 0.0' not in metrics
            capsys.readouterr()
            code = await anyio.to_thread.run_sync(main, ["status", "--json", "--config", str(file)])
            assert code == 0
            throttled = json.loads(capsys.readouterr().out)["throttled"]
            assert {"salesmanago", "ontraport"} <= set(throttled)
            assert all(0 < t["remaining_s"] <= CAP + 0.5 for t in throttled.values())
            await await_until(lambda: _delivered(w), deadline=20, what="the lead at both destinations")
            daemon.stop()
    asked = [e.get("asked_s") for e in logs if e["event"] == "destination_throttled"]
    assert 100000 in asked


async def _delivered(w: World) -> Any:
    return w.sm.get("state")["contacts"] == 1 and len(w.op_by_email()) == 1

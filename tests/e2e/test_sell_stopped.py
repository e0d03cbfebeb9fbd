"""A stream Sell refuses (401) stops loudly and is probed again with backoff: readiness is red while it is stopped,
and it resumes by itself, without a restart, once Sell takes the token again."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
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
from tests.support import Processes, await_until, free_port, wait_until


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
    return _delivered_now(w)


def test_a_real_syncd_run_probes_a_refused_stream_and_says_so_everywhere(w: World, processes: Processes) -> None:
    """The same with a real `syncd run`: Sell's 401 stops the leads stream (logged at error), /readyz answers 503
    naming it and `syncd status` from another process shows it stopped; it is probed again and again with a
    backoff capped at sell.max_backoff while the process stays up; once the token is back the stream resumes by
    itself, the lead reaches both destinations, /readyz is ready and status shows the stream running."""
    port = free_port()
    file = w.tmp_path / "syncd.toml"
    text = w.config_text().replace("[health]\nenabled = false", f'[health]\nlisten = "127.0.0.1:{port}"')
    file.write_text(text + '[log]\nformat = "json"\nlevel = "info"\n')
    w.append("leads", person("lead", 1))
    w.sell.post("tokens", {"tokens": ["a-token-someone-else-holds"]})  # syncd's token revoked
    log = w.tmp_path / "run.log"
    with log.open("wb") as out:
        daemon = processes.syncd("run", "--config", str(file), stdout=out)
    url = f"http://127.0.0.1:{port}"

    def readyz() -> httpx.Response | None:
        try:
            return httpx.get(f"{url}/readyz", timeout=5)
        except httpx.HTTPError:
            return None

    def stopped() -> bool:
        answer = readyz()
        return (
            answer is not None
            and answer.status_code == 503
            and "stream leads stopped: Sell answered 401" in answer.text
        )

    wait_until(stopped, timeout=30, what="/readyz to report the stopped stream")
    [stop] = wait_until(lambda: _logged(log, "stream_stopped", "leads"), timeout=10, what="stream_stopped logged")
    assert stop["level"] == "error" and stop["http_status"] == 401
    assert "Sell answered 401" in (_status(file)["streams"]["leads"]["stopped"] or "")
    probes = wait_until(lambda: len(found := _logged(log, "stream_probe_failed", "leads")) >= 3 and found, timeout=30)
    assert [p["attempt"] for p in probes] == list(range(2, len(probes) + 2))  # probed again and again
    assert all(0 < p["retry_in_s"] <= 0.1 for p in probes), probes  # with jittered backoff, up to sell.max_backoff
    assert daemon.poll() is None
    w.sell.post("tokens", {"tokens": [SELL_TOKEN]})  # given back
    wait_until(lambda: _delivered_now(w), timeout=30, what="the lead at both destinations")
    wait_until(lambda: (answer := readyz()) is not None and answer.status_code == 200, timeout=30, what="ready")
    assert _status(file)["streams"]["leads"]["stopped"] is None
    assert _logged(log, "stream_resumed", "leads")
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, log.read_text()[-3000:]


def _logged(log: Path, event: str, stream: str) -> list[dict[str, Any]]:
    """The JSON log lines for `event` of `stream` a `syncd run` has written so far (whole lines only)."""
    lines = [json.loads(line) for line in log.read_text().split("\n")[:-1] if line.startswith("{")]  # whole ones
    return [entry for entry in lines if entry["event"] == event and entry.get("stream") == stream]


def _status(file: Path) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "syncd", "status", "--json", "--config", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _delivered_now(w: World) -> bool:
    return bool(w.sm.get("state")["contacts"] == 1 and len(w.op_by_email()) == 1)

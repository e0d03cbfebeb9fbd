"""The daemon's console on a terminal: a real `syncd run` writing to a pseudo-terminal, and to a pipe."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.world import World, person, world
from tests.support import Processes, free_port

ANSI = re.compile(r"\033\[[0-9;]*m")
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (debug|info|warning|error|critical) +([a-z_]+)(?: |$)")
LEADS = 120


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def on_a_terminal(processes: Processes, *args: str, timeout: float = 60.0) -> tuple[int, list[str]]:
    """Run `syncd ARGS` with stdout and stderr on a pseudo-terminal; its exit code and the lines it printed."""
    master, slave = pty.openpty()
    proc = processes.syncd(*args, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(master)
    code = proc.wait(timeout=10)
    text = ANSI.sub("", output.decode("utf-8", errors="replace"))
    return code, [line for line in text.replace("\r\n", "\n").split("\n") if line]


def fields(line: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", line))


def test_the_console_summarises_deliveries_and_shows_warnings_at_once(w: World, processes: Processes) -> None:
    """On a terminal at info: start and ready, a warning as it happens, per-delivery lines replaced by summaries
    whose counts add up, every line `time level event key=value` (time first) and no empty `key=None`."""
    w.append("leads", *(person("lead", n) for n in range(1, LEADS + 1)))
    w.op.fault(path="/1/Contacts/saveorupdate", status=503, times=1)
    code, lines = on_a_terminal(processes, "run", "--config", str(w.config_file()), "--until-idle")
    assert code == 0, "\n".join(lines)
    events = []
    for line in lines:
        match = LINE.match(line)
        assert match, f"not in the `time level event key=value` layout: {line!r}"
        events.append(match.group(2))
        assert "=None" not in line and "=null" not in line, line
    assert events[:2] == ["daemon_started", "daemon_ready"]
    assert "delivery_failed" in events  # a warning is shown as it happens
    for chatty in ("delivery_done", "delivery_skipped", "page_ingested"):
        assert chatty not in events
    done: dict[str, int] = {}
    for line in lines:
        if " delivery_summary " in line:
            keys = fields(line)
            done[keys["sink"]] = done.get(keys["sink"], 0) + int(keys.get("done", 0))
    assert done == {"salesmanago": LEADS, "ontraport": LEADS}
    assert sum(int(fields(line)["events"]) for line in lines if " ingest_summary " in line) == LEADS
    assert events[-1] == "daemon_stopped"


def test_json_output_keeps_every_delivery_line(w: World, processes: Processes) -> None:
    """Not on a terminal (a pipe, journald): JSON lines, one delivery_done per key per destination, no summaries."""
    w.append("leads", *(person("lead", n) for n in range(1, LEADS + 1)))
    proc = processes.syncd(
        "run", "--config", str(w.config_file()), "--until-idle", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    records = [json.loads(line) for line in out.decode().splitlines()]
    done = [r for r in records if r["event"] == "delivery_done"]
    assert len(done) == 2 * LEADS
    assert not [r for r in records if r["event"].endswith("_summary")]


def test_debug_on_a_terminal_shows_every_line(w: World, processes: Processes) -> None:
    """log.level = debug on a terminal: the per-delivery lines are shown, not summarised."""
    w.append("leads", *(person("lead", n) for n in range(1, 4)))
    config = w.config_file(extra='[log]\nlevel = "debug"\n')
    code, lines = on_a_terminal(processes, "run", "--config", str(config), "--until-idle")
    assert code == 0, "\n".join(lines)
    assert sum(" delivery_done " in line for line in lines) == 6
    assert not [line for line in lines if " delivery_summary " in line]


def test_syncd_sandbox_on_a_terminal_says_where_with_what_and_how_long(tmp_path: Path, processes: Processes) -> None:
    """`syncd sandbox` on a terminal prints each URL with the credentials it takes (secrets by source, never the
    value) and what the limits imply for the events it holds (Ontraport 180/min: minutes), instead of JSON lines."""
    ports = [free_port() for _ in range(3)]
    config = tmp_path / "syncd.toml"
    config.write_text(
        f"""
[state]
path = "syncd.db"
[sell]
token = "sandbox-sell-token"
base_url = "http://127.0.0.1:{ports[0]}"
[sinks.salesmanago]
base_url = "http://127.0.0.1:{ports[1]}"
client_id = "sandbox-client"
api_secret = "sandbox-sm-secret"
owner = "owner@example.com"
[sinks.ontraport]
base_url = "http://127.0.0.1:{ports[2]}"
app_id = "2_1_sandbox"
api_key = "sandbox-op-key"
"""
    )
    master, slave = pty.openpty()
    proc = processes.syncd(
        "sandbox", "--config", str(config), "--events", "3000", stdout=slave, stderr=slave, stdin=subprocess.DEVNULL
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 60
    try:
        while b"Run the daemon" not in output and time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                output += os.read(master, 65536)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        os.close(master)
    text = ANSI.sub("", output.decode()).replace("\r\n", "\n")
    assert f"Sell         http://127.0.0.1:{ports[0]}" in text and "token: sell.token (literal)" in text
    assert f"SALESmanago  http://127.0.0.1:{ports[1]}" in text and "client_id sandbox-client" in text
    assert f"Ontraport    http://127.0.0.1:{ports[2]}" in text and "app_id 2_1_sandbox" in text
    for secret in ("sandbox-sell-token", "sandbox-sm-secret", "sandbox-op-key"):
        assert secret not in text
    assert re.search(r"Ontraport 180/min: .* calls .* \d+(\.\d)? min to \d+(\.\d)? min", text), text
    assert '"sandbox_ready"' not in text

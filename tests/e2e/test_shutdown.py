"""Graceful and forced stops of a real `syncd run` process (signals sent for real)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.world import World, person, world
from tests.support import Processes, wait_until


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def start(processes: Processes, config: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return processes.syncd("run", "--config", str(config), *extra, stdout=out)


def op_writes(w: World) -> int:
    return sum(w.op.get("state")["writes"].values())


def statuses(w: World, sink: str) -> list[str]:
    with sqlite3.connect(w.tmp_path / "syncd.db") as conn:
        return [r[0] for r in conn.execute("SELECT status FROM deliveries WHERE sink = ? ORDER BY seq", (sink,))]


def test_sigterm_lets_a_slow_call_finish_commits_it_and_exits_zero(w: World, processes: Processes) -> None:
    """SIGTERM while Ontraport holds a write's answer: the daemon waits for it, records the outcome, exits 0, and
    a restart sends nothing again."""
    config = w.config_file(op="concurrency = 1", extra='[run]\nshutdown_timeout = "20s"\n')
    w.op.fault(path="/1/Contacts/saveorupdate", latency_after=1.5, times=1)
    w.append("leads", person("lead", 1))
    proc = start(processes, config, w.tmp_path / "run.log")
    wait_until(lambda: op_writes(w) >= 1, timeout=20, what="the write to reach Ontraport")
    proc.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    assert proc.wait(timeout=30) == 0, (w.tmp_path / "run.log").read_text()
    assert time.monotonic() - stopped_at >= 1.0  # it waited for the held answer rather than dropping it
    assert statuses(w, "ontraport") == ["done"]
    log = (w.tmp_path / "run.log").read_text()
    assert "daemon_stopping" in log
    again = start(processes, config, w.tmp_path / "again.log", "--until-idle")
    assert again.wait(timeout=30) == 0
    assert op_writes(w) == 1


def test_a_second_signal_stops_at_once_and_loses_nothing(w: World, processes: Processes) -> None:
    """A second SIGTERM does not wait for in-flight calls (exit code 2); the unfinished delivery stays pending
    and the next run completes it (at-least-once)."""
    config = w.config_file(op="concurrency = 1", extra='[run]\nshutdown_timeout = "60s"\n')
    w.op.fault(path="/1/Contacts/saveorupdate", latency_after=30.0, times=1)
    w.append("leads", person("lead", 1))
    proc = start(processes, config, w.tmp_path / "run.log")
    wait_until(lambda: op_writes(w) >= 1, timeout=20, what="the write to reach Ontraport")
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "daemon_stopping" in (w.tmp_path / "run.log").read_text(), timeout=10, what="a graceful stop")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 2
    assert statuses(w, "ontraport") == ["pending"]
    assert statuses(w, "salesmanago") == ["done"]
    again = start(processes, config, w.tmp_path / "again.log", "--until-idle")
    assert again.wait(timeout=30) == 0
    assert statuses(w, "ontraport") == ["done"]
    assert len(w.op_contacts()) == 1

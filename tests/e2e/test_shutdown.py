"""Graceful and forced stops of a real `syncd run` process (signals sent for real)."""

from __future__ import annotations

import json
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
    wait_until(lambda: statuses(w, "salesmanago") == ["done"], timeout=20, what="SALESmanago's delivery")
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


def limited_config(w: World, rate: str, timeout: str) -> Path:
    """This world's config with Ontraport's own limiter at `rate` and `[run] shutdown_timeout` at `timeout`."""
    text = w.config_text(extra=f'[run]\nshutdown_timeout = "{timeout}"\n')
    at = text.index("[sinks.ontraport]")
    text = text[:at] + text[at:].replace('rate = "100000/s"', f'rate = "{rate}"', 1)
    file = w.tmp_path / "syncd.toml"
    file.write_text(text)
    return file


def op_requests(w: World) -> int:
    return sum(sum(counts.values()) for counts in w.op.get("state")["requests"].values())


def claimed(w: World) -> int:
    with sqlite3.connect(w.tmp_path / "syncd.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE claimed = 1").fetchone()[0])


def test_a_stop_with_nothing_in_flight_does_not_wait_for_the_rate_limiter(w: World, processes: Processes) -> None:
    """SIGINT while Ontraport's batches only wait for the rate limiter's next slot (nothing sent): the daemon exits 0
    at once instead of waiting out shutdown_timeout, and the keys it had claimed are back in the queue."""
    config = limited_config(w, "5/min", "120s")
    w.append("leads", *(person("lead", n) for n in range(1, 41)))
    log = w.tmp_path / "run.log"
    proc = start(processes, config, log)
    wait_until(lambda: op_requests(w) >= 5, timeout=30, what="Ontraport's window to fill")
    wait_until(lambda: statuses(w, "salesmanago").count("done") == 40, timeout=30, what="SALESmanago to finish")
    sent = op_requests(w)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0, log.read_text()  # far less than the 120 s shutdown_timeout
    text = log.read_text()
    assert "shutdown_timeout_reached" not in text
    stopping = next(json.loads(line) for line in text.splitlines() if '"daemon_stopping"' in line)
    assert stopping["in_flight"] == 0 and stopping["released"] >= 1
    assert claimed(w) == 0
    assert "pending" in statuses(w, "ontraport")  # nothing lost: the rest waits for the next run
    assert op_requests(w) == sent == 5


def test_in_flight_is_counted_before_the_timeout_cancels_it(w: World, processes: Processes) -> None:
    """A write Ontraport holds past shutdown_timeout: the warning counts it (in_flight=1: counted before the
    cancel, which used to make it 0), the exit is 0 and the delivery stays pending for the next run."""
    config = w.config_file(op="concurrency = 1", extra='[run]\nshutdown_timeout = "1s"\n')
    w.op.fault(path="/1/Contacts/saveorupdate", latency_after=30.0, times=1)
    w.append("leads", person("lead", 1))
    log = w.tmp_path / "run.log"
    proc = start(processes, config, log)
    wait_until(lambda: op_writes(w) >= 1, timeout=20, what="the write to reach Ontraport")
    # SALESmanago's write of the same lead is done first, so Ontraport's held write is the only one in flight.
    wait_until(lambda: statuses(w, "salesmanago") == ["done"], timeout=20, what="SALESmanago's delivery")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0, log.read_text()
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    [stopping] = [e for e in events if e["event"] == "daemon_stopping"]
    [reached] = [e for e in events if e["event"] == "shutdown_timeout_reached"]
    assert stopping["in_flight"] == 1 and reached["in_flight"] == 1
    assert statuses(w, "ontraport") == ["pending"]

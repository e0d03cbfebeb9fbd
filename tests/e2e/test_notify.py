"""systemd's notify protocol from a real `syncd run` process: a unix datagram socket stands in for systemd's and
receives READY=1 (once the store is open), WATCHDOG=1 at the pace WATCHDOG_USEC asks, STATUS= lines, then STOPPING=1
on SIGTERM, and the process exits 0."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from syncd.sandbox.sell.app import SellSandbox
from syncd.sandbox.sell.history import generate_history
from syncd.sandbox.server import ServerThread
from tests.support import Processes

TOKEN = "notify-test-token"
STREAMS = ["leads", "contacts", "deals"]
WATCHDOG_USEC = 200_000  # WatchdogSec=0.2s: syncd must ping at least every 0.2 s (it aims for half that)


@dataclass
class Datagram:
    at: float  # time.monotonic() when it arrived
    fields: dict[str, str]


@dataclass
class FakeSystemd:
    """The receiving end of $NOTIFY_SOCKET, keeping every datagram in arrival order."""

    sock: socket.socket
    address: str
    received: list[Datagram] = field(default_factory=list)

    def wait_for(self, done: Callable[[list[Datagram]], bool], *, timeout: float, what: str) -> list[Datagram]:
        """Receive until `done(received)` holds; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not done(self.received):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; got {self.kinds()}")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            text = data.decode()
            pairs = (line.partition("=") for line in text.split("\n") if line)
            self.received.append(Datagram(time.monotonic(), {k: v for k, _, v in pairs}))
        return self.received

    def kinds(self) -> list[str]:
        return [",".join(sorted(d.fields)) for d in self.received]

    def index(self, key: str, value: str = "1") -> int:
        return next(i for i, d in enumerate(self.received) if d.fields.get(key) == value)

    def has(self, key: str, value: str = "1") -> Callable[[list[Datagram]], bool]:
        return lambda got: any(d.fields.get(key) == value for d in got)


@pytest.fixture
def sell() -> Iterator[str]:
    box = SellSandbox(tokens=[TOKEN], rate=None, seed=21)
    box.load(generate_history(400, seed=21))
    with ServerThread(box.app) as server:
        yield server.url


@pytest.fixture
def config(tmp_path: Path, sell: str) -> Path:
    file = tmp_path / "syncd.toml"
    file.write_text(
        f"""
[state]
path = "syncd.db"
[sell]
token = "{TOKEN}"
base_url = "{sell}"
streams = {json.dumps(STREAMS)}
poll_interval = "100ms"
rate = "1000/s"
[health]
listen = "127.0.0.1:0"
"""
    )
    return file


def fake_systemd(address: str) -> FakeSystemd:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + address[1:] if address.startswith("@") else address)
    return FakeSystemd(sock, address)


def start(processes: Processes, config: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    environ = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    with log.open("wb") as out:
        return processes.syncd("run", "--config", str(config), stdout=out, env={**environ, **env})


def pings(got: list[Datagram]) -> int:
    return sum("WATCHDOG" in d.fields for d in got)


def test_ready_watchdog_status_stopping_in_order(config: Path, tmp_path: Path, processes: Processes) -> None:
    """READY=1 after the store opens, WATCHDOG=1 within WatchdogSec, STATUS=, STOPPING=1 on SIGTERM; exit 0."""
    address = str(tmp_path / "notify")
    assert len(address) < 100, "a unix socket path must stay under 108 bytes"
    systemd = fake_systemd(address)
    db = tmp_path / "syncd.db"
    proc = start(processes, config, tmp_path / "run.log", NOTIFY_SOCKET=address, WATCHDOG_USEC=str(WATCHDOG_USEC))
    try:
        systemd.wait_for(systemd.has("READY"), timeout=30, what="READY=1")
        assert db.exists(), "READY=1 came before the store was opened"
        ready = systemd.received[systemd.index("READY")]
        assert ready.fields["MAINPID"] == str(proc.pid)
        assert ready.fields["STATUS"].startswith("streams ")

        def caught_up(got: list[Datagram]) -> bool:
            status = [d.fields["STATUS"] for d in got if "STATUS" in d.fields]
            return bool(status) and all(f"{s}:top" in status[-1] for s in STREAMS)

        systemd.wait_for(caught_up, timeout=30, what="STATUS= showing every stream at the top")
        seen = pings(systemd.received)
        systemd.wait_for(lambda got: pings(got) >= seen + 5, timeout=10, what="five more WATCHDOG=1")
        proc.send_signal(signal.SIGTERM)
        systemd.wait_for(systemd.has("STOPPING"), timeout=30, what="STOPPING=1")
        assert proc.wait(timeout=40) == 0, (tmp_path / "run.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        systemd.sock.close()

    got = systemd.received
    first_ping = systemd.index("WATCHDOG")
    stopping = systemd.index("STOPPING")
    assert systemd.index("READY") < first_ping < stopping
    assert not any("WATCHDOG" in d.fields for d in got[stopping:]), "a watchdog ping after STOPPING=1"
    assert got[stopping].fields["STATUS"].startswith("stopping")
    assert sum("STATUS" in d.fields for d in got) >= 5
    times = [d.at for d in got if "WATCHDOG" in d.fields]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.median(gaps) < WATCHDOG_USEC / 1e6, f"pings too slow for WatchdogSec: {gaps}"
    logged = [json.loads(line) for line in (tmp_path / "run.log").read_text().splitlines()]
    ready_log = next(r for r in logged if r["event"] == "daemon_ready")
    assert ready_log["notify"] is True
    assert 0 <= ready_log["ready_after_s"] < 30


def test_abstract_socket_address(config: Path, tmp_path: Path, processes: Processes) -> None:
    """An abstract-namespace $NOTIFY_SOCKET ("@name") gets READY=1, then STOPPING=1 on SIGTERM."""
    systemd = fake_systemd(f"@syncd-test-{uuid.uuid4().hex}")
    proc = start(processes, config, tmp_path / "run.log", NOTIFY_SOCKET=systemd.address)
    try:
        systemd.wait_for(systemd.has("READY"), timeout=30, what="READY=1")
        proc.send_signal(signal.SIGTERM)
        systemd.wait_for(systemd.has("STOPPING"), timeout=30, what="STOPPING=1")
        assert proc.wait(timeout=40) == 0, (tmp_path / "run.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        systemd.sock.close()
    assert systemd.index("READY") < systemd.index("STOPPING")

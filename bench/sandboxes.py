"""What the benchmarks share: free ports, and `syncd sandbox` started in its own process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sandbox(config: Path, events: int, log: Path, *, apis: int = 1) -> subprocess.Popen[bytes]:
    """`syncd sandbox --exact` serving the APIs `config` puts on loopback, `events` generated; waits until `apis`
    servers listen."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "sandbox", "--config", str(config), "--events", str(events), "--exact"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 300
    while log.read_text().count("sandbox_ready") < apis:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the sandbox did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return proc

"""What the benchmarks share: free ports, a Sell-only config, fresh state files, and `syncd sandbox` started in its
own process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SELL_STREAMS = ["leads", "contacts", "deals", "notes", "orders", "line_items", "stages", "custom_fields", "sources"]


def write_sell_config(directory: Path, port: int, rate: str | None = None, streams: list[str] | None = None) -> Path:
    """bench.toml in `directory`: syncd reading `streams` (None: every stream) from the Sell sandbox on `port`
    (state in syncd.db there), no destination, no health server; `rate` limits both sides (None: unlimited)."""
    file = directory / "bench.toml"
    rate = rate or "1000000/s"
    file.write_text(
        f"""
[state]
path = "syncd.db"
[sell]
token = "bench-token"
base_url = "http://127.0.0.1:{port}"
streams = {json.dumps(streams or SELL_STREAMS)}
page_limit = 100
poll_interval = "5s"
rate = "{rate}"
[sandbox]
sell_rate = "{rate}"
[health]
enabled = false
[log]
level = "warning"
"""
    )
    return file


def remove_database(db: Path) -> None:
    """Delete a SQLite file and its WAL companions, so the next run starts from an empty store."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def start_sandbox(
    config: Path, events: int, log: Path, *, apis: int = 1, records: int | None = None
) -> subprocess.Popen[bytes]:
    """`syncd sandbox --exact` serving the APIs `config` puts on loopback, `events` generated (after `records` of
    every kind that only the Core API holds, when given); waits until `apis` servers listen."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "sandbox", "--config", str(config), "--events", str(events), "--exact"]
            + ([] if records is None else ["--records", str(records)]),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 300
    while log.read_text().count("sandbox_ready") < apis:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the sandbox did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return proc

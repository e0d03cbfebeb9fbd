"""What the benchmarks share: free ports, configs (Sell only, or Sell and both destinations), fresh state files,
`syncd sandbox` started in its own process, and a figure's median, min and max."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


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
    config: Path,
    events: int,
    log: Path,
    *,
    apis: int = 1,
    records: int | None = None,
    serve: str | None = None,
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """`syncd sandbox --exact` serving the APIs `config` puts on loopback (only `serve`, comma-separated, when
    given), `events` generated (after `records` of every kind that only the Core API holds, when given); waits until
    `apis` servers listen."""
    command = [sys.executable, "-m", "syncd", "sandbox", "--config", str(config), "--events", str(events), "--exact"]
    command += [] if records is None else ["--records", str(records)]
    command += [] if serve is None else ["--serve", serve]
    with log.open("wb") as out:
        proc = subprocess.Popen([*command, *extra], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 900  # a million events take minutes to generate
    while log.read_text().count("sandbox_ready") < apis:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the sandbox did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return proc


UNLIMITED = "1000000/s"


def config_text(
    db: Path,
    ports: dict[str, int],
    *,
    streams: list[str],
    sinks: tuple[str, ...] = ("salesmanago", "ontraport"),
    down: tuple[str, ...] = (),
    rate: dict[str, str] | None = None,
    poll: str = "2s",
    log: str = "warning",
    extra: dict[str, str] | None = None,
) -> str:
    """A config for the daemon and the sandboxes: Sell on `ports["sell"]`, the named destinations enabled (those in
    `down` on a closed port), `rate` per API (default unlimited, both sides)."""
    rate = {"sell": UNLIMITED, "salesmanago": UNLIMITED, "ontraport": UNLIMITED, **(rate or {})}
    extra = extra or {}
    closed = free_port()

    def url(api: str) -> str:
        return f"http://127.0.0.1:{closed if api in down else ports[api]}"

    return f"""
[state]
path = "{db}"
[sell]
token = "bench-token"
base_url = "{url("sell")}"
streams = {json.dumps(streams)}
page_limit = 100
poll_interval = "{poll}"
rate = "{rate["sell"]}"
[sinks.salesmanago]
enabled = {str("salesmanago" in sinks).lower()}
base_url = "{url("salesmanago")}"
client_id = "bench-client"
api_secret = "bench-secret"
owner = "owner@example.com"
rate = "{rate["salesmanago"]}"
max_backoff = "1s"
{extra.get("salesmanago", "")}
[sinks.ontraport]
enabled = {str("ontraport" in sinks).lower()}
base_url = "{url("ontraport")}"
app_id = "bench-app"
api_key = "bench-key"
rate = "{rate["ontraport"]}"
max_backoff = "1s"
external_id_field = "f1558"
{extra.get("ontraport", "")}
[sandbox]
sell_rate = "{rate["sell"]}"
salesmanago_rate = "{rate["salesmanago"]}"
ontraport_rate = "{rate["ontraport"]}"
[health]
enabled = false
[log]
level = "{log}"
format = "json"
"""


@contextlib.contextmanager
def sandbox(config: Path, log: Path, *, events: int = 0, serve: str, extra: tuple[str, ...] = ()) -> Iterator[None]:
    """`syncd sandbox --exact` serving `serve` (comma-separated) in its own process until the block ends."""
    proc = start_sandbox(config, events, log, apis=len(serve.split(",")), serve=serve, extra=extra)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def summary(values: list[float], digits: int = 1) -> dict[str, Any]:
    """Median, min, max and the runs."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": [round(v, digits) for v in values],
    }

"""A large backlog with one destination down: memory stays flat, then the backlog drains at the limiter's pace.

Phase 1: `syncd run` ingests a generated Sell history (default 200,000 events) while Ontraport refuses connections
(its base_url points at a closed port) and SALESmanago keeps up. The daemon's resident memory is sampled throughout;
the backlog lives in SQLite, so it should stay flat. Phase 2: Ontraport comes back at a configured rate limit and
`syncd run --until-idle` drains the backlog; the time is compared with the limiter's theoretical bound (calls needed
/ rate). Sandboxes run in their own process.

    python bench/backlog.py [--events 200000] [--rate 6000/min]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sandboxes import free_port, start_sandbox

from syncd.units import parse_rate


def config_text(ports: dict[str, int], ontraport_port: int, rate: str, db: Path) -> str:
    return f"""
[state]
path = "{db}"
[sell]
token = "bench-token"
base_url = "http://127.0.0.1:{ports["sell"]}"
streams = ["leads", "contacts", "deals", "notes", "orders", "line_items", "stages", "custom_fields", "sources"]
poll_interval = "2s"
rate = "1000000/s"
[sinks.salesmanago]
base_url = "http://127.0.0.1:{ports["salesmanago"]}"
client_id = "bench-client"
api_secret = "bench-secret"
owner = "owner@example.com"
rate = "1000000/s"
[sinks.ontraport]
base_url = "http://127.0.0.1:{ontraport_port}"
app_id = "bench-app"
api_key = "bench-key"
rate = "{rate}"
concurrency = 8
max_backoff = "5s"
external_id_field = "f1558"
[sandbox]
sell_rate = "1000000/s"
ontraport_rate = "{rate}"
[health]
enabled = false
[log]
level = "warning"
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def query(db: Path, sql: str) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            return int(conn.execute(sql).fetchone()[0] or 0)
    except sqlite3.OperationalError:
        return 0


def ontraport_calls(port: int) -> dict[str, int]:
    """Requests the Ontraport simulator has answered so far, per endpoint (every status)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sandbox/state", timeout=30) as reply:
        state = json.load(reply)
    return {endpoint: sum(counts.values()) for endpoint, counts in state["requests"].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rate", default="6000/min", help="Ontraport's rate limit in phase 2 (sandbox and syncd)")
    args = parser.parse_args()
    rate = parse_rate(args.rate)
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; {args.events} events")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        db = directory / "syncd.db"
        ports = {name: free_port() for name in ("sell", "salesmanago", "ontraport")}
        live = directory / "live.toml"
        live.write_text(config_text(ports, ports["ontraport"], args.rate, db))
        down = directory / "down.toml"
        down.write_text(config_text(ports, free_port(), args.rate, db))
        started = time.monotonic()
        sandbox = start_sandbox(live, args.events, directory / "sandbox.log", apis=3)
        print(f"sandboxes ready in {time.monotonic() - started:.0f} s")
        try:
            # Phase 1: ingest everything with Ontraport down.
            with (directory / "phase1.log").open("wb") as out:
                daemon = subprocess.Popen(
                    [sys.executable, "-m", "syncd", "run", "--config", str(down)], stdout=out, stderr=out
                )
            samples: list[tuple[int, int]] = []
            t0 = time.monotonic()
            while True:
                events = query(db, "SELECT COUNT(*) FROM events")
                samples.append((events, rss_kib(daemon.pid)))
                sm_pending = query(db, "SELECT COUNT(*) FROM deliveries WHERE sink='salesmanago' AND status='pending'")
                if events >= args.events and sm_pending == 0:
                    break
                if daemon.poll() is not None:
                    raise SystemExit((directory / "phase1.log").read_text()[-3000:])
                time.sleep(0.5)
            ingest_s = time.monotonic() - t0
            peak = hwm_kib(daemon.pid)
            backlog = query(db, "SELECT COUNT(*) FROM deliveries WHERE sink='ontraport' AND status='pending'")
            keys = query(db, "SELECT COUNT(*) FROM outbox WHERE sink='ontraport'")
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=60)
            marks = [samples[int(len(samples) * f) - 1] for f in (0.25, 0.5, 0.75, 1.0)]
            print(
                json.dumps(
                    {
                        "phase": "ingest with Ontraport down",
                        "events": args.events,
                        "seconds": round(ingest_s, 1),
                        "ontraport_backlog_deliveries": backlog,
                        "ontraport_backlog_records": keys,
                        "peak_rss_mib": round(peak / 1024, 1),
                        "rss_mib_at_25_50_75_100_percent": [round(r / 1024, 1) for _, r in marks],
                        "events_at_those_points": [e for e, _ in marks],
                        "sigterm_exit_code": code,
                    }
                )
            )
            # Phase 2: Ontraport is back; drain.
            before = ontraport_calls(ports["ontraport"])
            t0 = time.monotonic()
            with (directory / "phase2.log").open("wb") as out:
                drained = subprocess.call(
                    [sys.executable, "-m", "syncd", "run", "--config", str(live), "--until-idle"],
                    stdout=out,
                    stderr=out,
                )
            drain_s = time.monotonic() - t0
            after = ontraport_calls(ports["ontraport"])
            made = {endpoint: n - before.get(endpoint, 0) for endpoint, n in after.items()}
            calls = keys + 1  # one write per record (coalesced), plus the field list
            bound = calls / rate.per_second
            print(
                json.dumps(
                    {
                        "phase": "drain",
                        "exit_code": drained,
                        "rate": args.rate,
                        "seconds": round(drain_s, 1),
                        "limiter_bound_seconds": round(bound, 1),
                        "ratio": round(drain_s / bound, 2),
                        "uncoalesced_bound_seconds": round((backlog + 1) / rate.per_second, 1),
                        "calls_made": sum(made.values()),
                        "calls_per_endpoint": {endpoint: n for endpoint, n in sorted(made.items()) if n},
                        "bound_of_calls_made_seconds": round(sum(made.values()) / rate.per_second, 1),
                        "still_pending": query(db, "SELECT COUNT(*) FROM deliveries WHERE status='pending'"),
                    }
                )
            )
        finally:
            sandbox.send_signal(signal.SIGTERM)
            sandbox.wait(timeout=60)


if __name__ == "__main__":
    main()

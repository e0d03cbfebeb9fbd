"""Ingest throughput: `syncd run --until-idle` against the Sell sandbox in its own process.

Prints events ingested per second (wall clock, from process start to exit) and CPU microseconds per event (user +
system time of the daemon process), as the median of several runs, for a sandbox without rate limit and for one
with Sell's real limit of 10 requests per second.

    python bench/ingest.py [--events 50000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandboxes import free_port, remove_database, start_sandbox, write_sell_config


def one_run(config: Path, db: Path) -> tuple[float, float, int]:
    remove_database(db)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", "run", "--config", str(config), "--until-idle"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"syncd run exited {proc.returncode}")
    with sqlite3.connect(db) as conn:
        events = int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    return wall, usage.ru_utime + usage.ru_stime, events


def measure(events: int, runs: int, rate: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        config = write_sell_config(directory, free_port(), rate)
        sandbox = start_sandbox(config, events, directory / "sandbox.log")
        try:
            results = [one_run(config, directory / "syncd.db") for _ in range(runs)]
        finally:
            sandbox.send_signal(signal.SIGTERM)
            sandbox.wait(timeout=30)
    for _, _, stored in results:
        if stored != events:
            raise SystemExit(f"stored {stored} events, expected {events}")
    per_second = [events / wall for wall, _, _ in results]
    cpu_us = [cpu / events * 1e6 for _, cpu, _ in results]
    return {
        "events": events,
        "runs": runs,
        "events_per_s_median": round(statistics.median(per_second)),
        "events_per_s_all": [round(x) for x in per_second],  # type: ignore[dict-item]
        "cpu_us_per_event_median": round(statistics.median(cpu_us), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    unlimited = measure(args.events, args.runs, None)
    print("no rate limit:      ", json.dumps(unlimited))
    limited = measure(min(args.events, 20_000), max(1, min(args.runs, 3)), "10/s")
    print("Sell's 10 req/s:    ", json.dumps(limited))


if __name__ == "__main__":
    main()

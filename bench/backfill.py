"""Backfill throughput with Sell's real rate limit (10 requests a second per token, on both sides), against the
bound: 100 records a request times the requests a second the pollers leave.

`syncd sandbox` (its own process) serves an account whose history is older than the Firehose keeps; the daemon
backfills it (what `syncd backfill` runs: the pollers of the streams go on beside it, sharing the limiter) with no
destination, so the figure is the reading and storing alone. Prints the median of several runs (each from an empty
state file): records stored a second (from the job's start to its end), records per Core API request, Sell
requests a second and the pollers' share of them, and the bound.

    python bench/backfill.py [--records 5000] [--runs 5] [--streams leads,contacts]
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qs

import anyio
import httpx
from sandboxes import free_port, remove_database, start_sandbox, write_sell_config

from syncd.config import load
from syncd.daemon import Daemon
from syncd.logs import configure

RATE = 10  # Sell's documented limit, requests a second per token
PER_PAGE = 100


def one_run(config_file: Path, streams: list[str], sandbox: httpx.Client) -> dict[str, float]:
    config = load(config_file)
    remove_database(Path(config.state.path))
    assert sandbox.delete("/_sandbox/requests").status_code == 200
    code = anyio.run(Daemon(config, until_idle=True, handle_signals=False, backfill=streams).run)
    if code != 0:
        raise SystemExit(f"the daemon exited {code}")
    requests = sandbox.get("/_sandbox/requests").json()["requests"]
    with sqlite3.connect(config.state.path) as conn:
        started, finished, result = conn.execute(
            "SELECT started_at, finished_at, result FROM jobs WHERE kind = 'backfill'"
        ).fetchone()
    seconds = float(finished) - float(started)
    stored = int(json.loads(result)["records"])
    during = [r for r in requests if float(started) <= r["at"] <= float(finished)]
    core = sum(1 for r in during if r["path"].startswith("/v2/"))
    polls = sum(1 for r in during if r["path"].startswith("/v3/") and parse_qs(r["query"]).get("position") != ["top"])
    return {
        "records": stored,
        "seconds": seconds,
        "records_per_s": stored / seconds,
        "records_per_request": stored / core,
        "requests_per_s": (core + polls) / seconds,
        "poller_requests_per_s": polls / seconds,
        "refused": sum(1 for r in during if r["status"] in (409, 429)),
    }


def main() -> None:
    import time

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=5000, help="records of every kind the account holds")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--streams", default="leads,contacts")
    args = parser.parse_args()
    streams = [s.strip() for s in args.streams.split(",") if s.strip()]
    configure(level="error", fmt="json", stream=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        port = free_port()
        config = write_sell_config(directory, port, f"{RATE}/s", streams)
        proc = start_sandbox(config, 50, directory / "sandbox.log", records=args.records)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as sandbox:
                runs = []
                for _ in range(args.runs):
                    time.sleep(1.5)  # the token's window forgets the last run's requests (a new daemon cannot know)
                    runs.append(one_run(config, streams, sandbox))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)

    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    pollers = median("poller_requests_per_s")
    bound = PER_PAGE * (RATE - pollers)
    print(f"backfill of {', '.join(streams)} from an account of {args.records} records, {args.runs} runs (median)")
    print(f"  records stored:        {median('records'):.0f} in {median('seconds'):.2f} s")
    print(f"  throughput:            {median('records_per_s'):.0f} records/s")
    print(f"  records per request:   {median('records_per_request'):.1f} (look-ups, progress probes, reaching back)")
    print(f"  Sell requests/s:       {median('requests_per_s'):.2f} of {RATE} (pollers {pollers:.2f})")
    print(f"  refused (429/409):     {median('refused'):.0f} a run")
    print(f"  bound:                 {bound:.0f} records/s (100 a request x {RATE - pollers:.2f} requests/s left)")
    print(f"  of the bound:          {100 * median('records_per_s') / bound:.0f} %")


if __name__ == "__main__":
    main()

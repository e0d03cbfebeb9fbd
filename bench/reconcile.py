"""`syncd reconcile`'s time for an account of about 5,000 live leads and contacts, with every API's real rate limit
on the client side (Sell 10/s, SALESmanago 10/s, Ontraport 180/min: the defaults).

The three simulators run on loopback (in threads of this process); the account is first carried into both
destinations with no limit (that is the backfill's job, not what is measured), then reconciled several times.
Prints the median time of a reconciliation and the requests it made to each API.

    python bench/reconcile.py [--records 8000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

from syncd.config import Config, loads
from syncd.daemon import Daemon
from syncd.logs import configure
from syncd.sandbox.ontraport.app import OntraportSandbox
from syncd.sandbox.salesmanago.app import SalesmanagoSandbox
from syncd.sandbox.sell.app import SellSandbox
from syncd.sandbox.server import ServerThread

TOKEN, CLIENT, SECRET, OWNER, APP, KEY = "t-bench", "c-bench", "s-bench", "owner@example.com", "a-bench", "k-bench"


def config(urls: dict[str, str], db: Path, *, limited: bool) -> Config:
    unlimited = 'rate = "100000/s"' if not limited else ""
    return loads(
        f"""
[state]
path = "{db}"
[sell]
token = "{TOKEN}"
base_url = "{urls["sell"]}"
start = "backfill"
{unlimited or 'rate = "10/s"'}
[sinks.salesmanago]
base_url = "{urls["sm"]}"
client_id = "{CLIENT}"
api_secret = "{SECRET}"
owner = "{OWNER}"
{unlimited}
[sinks.ontraport]
base_url = "{urls["op"]}"
app_id = "{APP}"
api_key = "{KEY}"
{unlimited}
[health]
enabled = false
"""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=8000, help="records of every kind (8000: ~5,000 people)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    configure(level="error", fmt="json", stream=sys.stderr)
    sell = SellSandbox(tokens=[TOKEN], rate=None, seed=1)
    sell.generate(100, records=args.records, seed=1)
    sm = SalesmanagoSandbox(client_id=CLIENT, api_secret=SECRET, owners=[OWNER], rate=None)
    op = OntraportSandbox(app_id=APP, api_key=KEY, rate=None)
    servers = {name: ServerThread(app).start() for name, app in (("sell", sell.app), ("sm", sm.app), ("op", op.app))}
    try:
        urls = {name: server.url for name, server in servers.items()}
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "syncd.db"
            started = time.perf_counter()
            assert anyio.run(Daemon(config(urls, db, limited=False), until_idle=True, handle_signals=False).run) == 0
            print(f"carried into both destinations (unlimited) in {time.perf_counter() - started:.1f} s")
            limited = config(urls, db, limited=True)
            sinks = [s.name for s in limited.enabled_sinks()]
            times, results = [], []
            for _ in range(args.runs):
                time.sleep(1.5)  # Sell's window forgets the previous run
                daemon = Daemon(limited, until_idle=True, handle_signals=False, reconcile=(sinks, False))
                assert anyio.run(daemon.run) == 0
                with sqlite3.connect(db) as conn:
                    started_at, finished_at, result = conn.execute(
                        "SELECT started_at, finished_at, result FROM jobs WHERE kind = 'reconcile'"
                        " ORDER BY id DESC LIMIT 1"
                    ).fetchone()
                times.append(float(finished_at) - float(started_at))
                results.append(json.loads(result))
    finally:
        for server in servers.values():
            server.stop()
    last = results[-1]
    people = last["sell"]["leads"] + last["sell"]["contacts"]
    print(f"reconcile of {people} live leads and contacts, {args.runs} runs (median), real rate limits")
    print(f"  time:                  {statistics.median(times):.1f} s")
    print(f"  Sell requests:         {last['sell']['requests']}")
    for sink, report in last["sinks"].items():
        counts = report["counts"]
        print(
            f"  {sink + ':':<22} {counts['equal']} equal, {sum(counts[s] for s in ('different', 'missing', 'extra'))}"
            f" differences, {counts['skipped']} not synced by design"
        )


if __name__ == "__main__":
    main()

"""The store's ingest alone, as it grows: pages of 100 events (leads and contacts, about the size Sell sends) stored
with two routes each (both destinations), in this process, with no HTTP and no normalising. Prints, for every tenth
of the run, events/s and CPU µs/event (this process, every thread: SQLite runs on aiosqlite's worker thread), so a
cost that grows with the store shows as a rising column. `--pragma` runs a statement on the connection first
(`--pragma "cache_size = -65536"`), to try a setting.

    python bench/store.py [--events 300000] [--pragma "..."]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import anyio

from state import EventRow, Route, Store

SINKS = ("salesmanago", "ontraport")


def page(start: int, rng: random.Random, records: int) -> tuple[list[EventRow], list[Route]]:
    """100 changes of random records among `records` (a record changes several times: the shadow is updated)."""
    events, routes = [], []
    for pos in range(100):
        n = start + pos
        record_id = rng.randrange(records)
        kind = "lead" if record_id % 2 else "contact"
        data = {
            "id": record_id,
            "first_name": "Ada",
            "last_name": f"Lovelace{record_id}",
            "email": f"ada{record_id}@example.com",
            "description": "x" * 400,
            "custom_fields": {f"field{i}": f"value {i}" for i in range(12)},
        }
        record = json.dumps(data).encode()
        body = json.dumps({"data": data, "meta": {"sequence": n, "event_type": "updated"}}).encode()
        events.append(
            EventRow(
                kind=kind,
                record_id=record_id,
                action="updated",
                sequence=n,
                event_id=f"e{n}",
                occurred_at="2026-12-01T00:00:00Z",
                body=body,
                record=record,
                email=f"ada{record_id}@example.com",
                deleted=False,
                bare=False,
                version_at=1_700_000_000.0 + n,
            )
        )
        routes += [Route(pos, sink, f"{kind}:{record_id}") for sink in SINKS]
    return events, routes


async def run(events: int, pragma: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(Path(tmp) / "syncd.db", sinks=SINKS)
        if pragma:
            await store._conn.execute(f"PRAGMA {pragma}")
        rng = random.Random(1)
        records = max(events // 5, 100)
        marks = [(0, time.perf_counter(), time.process_time())]
        for start in range(0, events, 100):
            rows, routes = page(start, rng, records)
            await store.ingest("leads", rows, routes, position=str(start), at_top=False)
            if (start + 100) % (events // 10) == 0:
                marks.append((start + 100, time.perf_counter(), time.process_time()))
        await store.close()
        size = sum([(await f.stat()).st_size async for f in anyio.Path(tmp).iterdir()])
    for (n0, w0, c0), (n1, w1, c1) in itertools.pairwise(marks):
        print(f"{n1:>9} events: {(n1 - n0) / (w1 - w0):7.0f} events/s, {(c1 - c0) / (n1 - n0) * 1e6:6.1f} µs CPU/event")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"store {size / 2**20:.0f} MiB, peak RSS {rss:.0f} MiB, {os.cpu_count()} CPUs, pragma {pragma or '-'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--pragma", default=None)
    args = parser.parse_args()
    anyio.run(run, args.events, args.pragma)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

"""What each part of syncd's ingest and of one destination call costs alone: the floor under the table's figures.

Each part runs in this process, one after the other, with nothing else running in it (the simulators run in their
own process and are only asked, never measured); CPU is this process's own (every thread: SQLite runs on
aiosqlite's worker thread). The workload is `python -m bench`'s ingest: a generated history of every stream.

- fetch: every page of every stream read with syncd's Sell client (`SellClient.fetch_page`) and decoded into its
  items and next position (`decode_page`), µs per event;
- normalise: the pages' items normalised and turned into the store's rows, routed to both destinations
  (`normalise`, `page_rows`), µs per event;
- store: those rows stored page by page in a new SQLite file (`Store.ingest`: one transaction a page), µs per event;
- call: one Ontraport look-up (`GET /1/Contacts`, one contact by e-mail) through httpx alone (`AsyncClient.get`)
  and through syncd's `bounded_request`, ms per call.

The three ingest parts add up to what ingest costs without the daemon around them (no limiter, logging, metrics
or dispatchers), so their sum is a floor for the table's CPU µs per event; the bare call is a floor for its CPU
per destination call.

    python bench/floor.py [--events 50000] [--runs 5] [--calls 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sandboxes import SELL_STREAMS, config_text, free_port, remove_database, sandbox, summary  # noqa: E402

from state import Store  # noqa: E402
from syncd.config import loads  # noqa: E402
from syncd.httpclient import bounded_request, make_client  # noqa: E402
from syncd.sell.client import SellClient  # noqa: E402
from syncd.sell.normalise import normalise  # noqa: E402
from syncd.sell.wire import WirePage, decode_page  # noqa: E402
from syncd.stored import page_rows  # noqa: E402

SINKS = ("salesmanago", "ontraport")


async def fetch_all(client: SellClient) -> tuple[list[tuple[str, WirePage]], float]:
    """Every page of every stream from the start (the stream, the page decoded as the poller decodes it), and the
    CPU seconds it took."""
    pages: list[tuple[str, WirePage]] = []
    started = time.process_time()
    for stream in SELL_STREAMS:
        position = "tail"
        while True:
            body = await client.fetch_page(stream, position, 100)
            page = decode_page(body)
            pages.append((stream, page))
            position = page.position
            if page.top:
                break
    return pages, time.process_time() - started


async def normalise_and_store(db: Path, pages: list[tuple[str, WirePage]]) -> tuple[int, float, float]:
    """Each page normalised into its rows (`normalise`, `page_rows` for both destinations), then stored into a new
    store (`Store.ingest`), page by page as the daemon does (nothing a page made is kept past it): the events, and
    the CPU seconds of each part (every thread of this process: SQLite runs on aiosqlite's worker thread)."""
    events = 0
    normalising = storing = 0.0
    async with await Store.open(db, sinks=SINKS) as store:
        for stream, page in pages:
            started = time.process_time()
            changes = [normalise(stream, raw) for raw in page.items]
            rows = page_rows(changes, SINKS)
            between = time.process_time()
            await store.ingest(stream, rows.events, rows.routes, position=page.position, at_top=page.top)
            storing += time.process_time() - between
            normalising += between - started
            events += len(changes)
    return events, normalising, storing


async def calls(port: int, n: int) -> tuple[float, float]:
    """CPU ms per Ontraport look-up through httpx alone, then through syncd's bounded_request (n calls each)."""
    headers = {"Api-Key": "bench-key", "Api-Appid": "bench-app"}
    params = {"condition": json.dumps([{"field": {"field": "email"}, "op": "=", "value": {"value": "a@b.c"}}])}
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, headers=headers) as plain:
        check(await plain.get("/1/Contacts", params=params))
        started = time.process_time()
        for _ in range(n):
            (await plain.get("/1/Contacts", params=params)).raise_for_status()
        bare = (time.process_time() - started) / n * 1e3
    async with make_client(base, timeout=30.0, headers=headers) as client:
        check(await bounded_request(client, "Ontraport", "GET", "/1/Contacts", params=params))
        started = time.process_time()
        for _ in range(n):
            (await bounded_request(client, "Ontraport", "GET", "/1/Contacts", params=params)).raise_for_status()
        ours = (time.process_time() - started) / n * 1e3
    return bare, ours


def check(response: httpx.Response) -> None:
    """Stop the bench when the look-up is not answered 200 (a changed simulator or config): no figure from it."""
    if response.status_code != 200:
        raise SystemExit(f"the look-up was answered {response.status_code}: {response.text[:300]}")


def one_run(work: Path, ports: dict[str, int], n_calls: int) -> dict[str, float]:
    """Every part once, on the simulators already running; µs per event and ms per call."""
    db = work / "floor.db"
    remove_database(db)
    config = loads(config_text(db, ports, streams=SELL_STREAMS), source="floor.toml")

    async def run() -> dict[str, float]:
        client = SellClient(config.sell)
        try:
            pages, fetch_cpu = await fetch_all(client)
        finally:
            await client.aclose()
        events, normalise_cpu, store_cpu = await normalise_and_store(db, pages)
        bare, ours = await calls(ports["ontraport"], n_calls)
        fetch, norm, stored = (cpu / max(events, 1) * 1e6 for cpu in (fetch_cpu, normalise_cpu, store_cpu))
        return {
            "events": events,
            "fetch_us_per_event": fetch,
            "normalise_us_per_event": norm,
            "store_us_per_event": stored,
            "sum_us_per_event": fetch + norm + stored,
            "httpx_ms_per_call": bare,
            "syncd_ms_per_call": ours,
        }

    return anyio.run(run)


def floor(work: Path, events: int, runs: int, n_calls: int) -> dict[str, Any]:
    """The parts measured `runs` times on one simulator process holding `events` generated events."""
    work.mkdir(parents=True, exist_ok=True)
    ports = {api: free_port() for api in ("sell", "salesmanago", "ontraport")}
    config = work / "simulators.toml"
    config.write_text(config_text(work / "unused.db", ports, streams=SELL_STREAMS))
    rows = []
    with sandbox(config, work / "simulators.log", events=events, serve="sell,ontraport"):
        for i in range(runs):
            rows.append(one_run(work, ports, n_calls))
            print(f"  floor run {i + 1}: {json.dumps({k: round(v, 2) for k, v in rows[-1].items()})}", flush=True)
    result: dict[str, Any] = {"events": rows[0]["events"], "calls": n_calls}
    for key in rows[0]:
        if key != "events":
            result[key] = summary([r[key] for r in rows], 2 if key.endswith("per_call") else 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="syncd-floor-") as tmp:
        print(json.dumps(floor(Path(tmp), args.events, args.runs, args.calls), indent=2))


if __name__ == "__main__":
    main()

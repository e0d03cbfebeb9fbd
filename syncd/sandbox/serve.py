"""`syncd sandbox`: serve the simulators a config file points at, with exactly the credentials it names.

For each API whose `base_url` in the config is on loopback, the matching simulator listens on that port and accepts
the config's own credentials, so one file drives both the daemon and its sandbox.
"""

from __future__ import annotations

import gc
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.types import ASGIApp

from syncd.asgi import make_server, serve_started
from syncd.config import Config, loopback_port
from syncd.errors import ConfigError
from syncd.units import Rate

APIS = ("sell", "salesmanago", "ontraport")


@dataclass
class Sandbox:
    name: str
    app: ASGIApp
    port: int
    model: Any  # the simulator object (SellSandbox, SalesmanagoSandbox, OntraportSandbox)


def build(
    config: Config,
    *,
    events: int = 0,
    seed: int = 0,
    serve: Sequence[str] | None = None,
    realistic: bool = True,
    poison: int = 0,
    records: int | None = None,
) -> list[Sandbox]:
    """The simulators to serve for `config` (those whose base_url is on loopback, or those named in `serve`);
    with `records`, the Sell account already holds that many records whose events have expired (Core API only)
    before its `events` live ones."""
    wanted = list(serve) if serve else list(APIS)
    for name in wanted:
        if name not in APIS:
            raise ConfigError(f"unknown API {name!r} for --serve; expected {', '.join(APIS)}")
    built: list[Sandbox] = []
    if "sell" in wanted:
        port = _port(config.sell.base_url, "sell.base_url", explicit=serve is not None)
        if port is not None:
            from syncd.sandbox.sell.app import SellSandbox

            sell = SellSandbox(
                tokens=[config.sell.token.value],
                rate=config.sandbox.sell_rate,
                retention=config.sandbox.retention,
                seed=seed,
                short_pages=0.05 if realistic else 0.0,
                empty_pages=0.02 if realistic else 0.0,
                duplicates=0.02 if realistic else 0.0,
            )
            if events or records:
                sell.generate(events, seed=seed, poison=poison, records=records)
                keep_for_good()
            built.append(Sandbox("sell", sell.app, port, sell))
    sm = config.sinks.salesmanago
    if "salesmanago" in wanted and sm is not None:
        port = _port(sm.base_url, "sinks.salesmanago.base_url", explicit=serve is not None)
        if port is not None and sm.api_secret is not None:
            from syncd.sandbox.salesmanago.app import SalesmanagoSandbox

            model = SalesmanagoSandbox(
                client_id=sm.client_id,
                api_secret=sm.api_secret.value,
                owners=[sm.owner],
                rate=config.sandbox.salesmanago_rate,
            )
            built.append(Sandbox("salesmanago", model.app, port, model))
    op = config.sinks.ontraport
    if "ontraport" in wanted and op is not None:
        port = _port(op.base_url, "sinks.ontraport.base_url", explicit=serve is not None)
        if port is not None and op.api_key is not None:
            from syncd.sandbox.ontraport.app import OntraportSandbox

            model_op = OntraportSandbox(app_id=op.app_id, api_key=op.api_key.value, rate=config.sandbox.ontraport_rate)
            built.append(Sandbox("ontraport", model_op.app, port, model_op))
    return built


def keep_for_good() -> None:
    """Move what the process holds now (a generated history: about 16 objects an event, built with the collector
    paused) out of the cyclic collector's reach. Left to it, the first young collections after the build walk every
    one of them while pages are served (measured at 50,000 events: 0.29 s, then 0.86 s with every stream waiting);
    frozen, they are still freed by reference counting when Sell's retention drops them."""
    gc.collect()
    gc.freeze()


def _port(url: str, key: str, *, explicit: bool) -> int | None:
    port = loopback_port(url)
    if port is None and explicit:
        raise ConfigError(f"{url or '(not set)'} is not on loopback, so the sandbox cannot serve it", key=key)
    return port


async def serve_all(
    sandboxes: Sequence[Sandbox],
    *,
    announce: bool = True,
    on_ready: Callable[[Sandbox, int], None] | None = None,
) -> None:
    """Serve every sandbox until cancelled; print one JSON line per server once it listens (`announce`), and tell
    `on_ready` of each."""
    async with anyio.create_task_group() as tg:
        for box in sandboxes:
            server = make_server(box.app, box.port)

            def started(port: int, box: Sandbox = box) -> None:
                if announce:
                    line = {"event": "sandbox_ready", "api": box.name, "url": f"http://127.0.0.1:{port}"}
                    print(json.dumps(line), file=sys.stdout, flush=True)
                if on_ready is not None:
                    on_ready(box, port)

            tg.start_soon(serve_started, server, started)


NAMES = {"sell": "Sell", "salesmanago": "SALESmanago", "ontraport": "Ontraport"}
PERSON_STREAMS = ("leads", "contacts")


def _minutes(calls: float, rate: Rate) -> str:
    minutes = calls / rate.per_second / 60
    return f"{minutes:.0f} min" if minutes >= 10 else f"{minutes:.1f} min"


def describe(config: Config, sandboxes: Sequence[Sandbox], ports: dict[str, int]) -> list[str]:
    """What an operator at a terminal needs: each simulator's URL and the credentials it takes (those the config
    names: secrets by where the config reads them, never their value), what the Sell account holds, and what the
    simulators' limits imply for a daemon run against it (a lower and an upper bound, from the limits alone)."""
    source = config.source
    lines = [f"syncd sandbox: serving what {source} points at (Ctrl-C stops)"]
    by_name = {box.name: box for box in sandboxes}
    sm, op = config.sinks.salesmanago, config.sinks.ontraport
    for name in APIS:
        if name not in by_name:
            continue
        url = f"http://127.0.0.1:{ports.get(name, by_name[name].port)}"
        if name == "sell":
            takes = f"token: sell.token ({config.sell.token.source})"
        elif name == "salesmanago" and sm is not None:
            secret = sm.api_secret.source if sm.api_secret is not None else "not set"
            takes = f"client_id {sm.client_id}, owner {sm.owner}, api_secret: sinks.salesmanago.api_secret ({secret})"
        elif op is not None:
            secret = op.api_key.source if op.api_key is not None else "not set"
            takes = f"app_id {op.app_id}, api_key: sinks.ontraport.api_key ({secret})"
        lines.append(f"  {NAMES[name]:<12} {url:<24} {takes}")
    sell = by_name.get("sell")
    state = sell.model.state() if sell is not None else None
    read = [s for s in config.sell.streams if state is not None and s in state["streams"]]
    events = sum(state["streams"][s]["retained"] for s in read) if state is not None else 0
    if state is not None:
        held = ", ".join(f"{s} {state['streams'][s]['retained']}" for s in read)
        lines.append(f"  Sell's Firehose holds {events} events of the streams {source} reads ({held or 'none'})")
        records = state["records"]
        if any(records.values()):
            lines.append("  Sell's Core API holds " + ", ".join(f"{n} {kind}s" for kind, n in records.items() if n))
    lines.append("What the simulators' limits ([sandbox] in the config) imply:")
    rates = config.sandbox
    if rates.sell_rate is not None and events:
        pages = math.ceil(events / config.sell.page_limit)
        seconds = pages / rates.sell_rate.per_second
        lines.append(f"  Sell {rates.sell_rate}: at least {pages} pages of {config.sell.page_limit}: {seconds:.0f} s")
    if "salesmanago" in by_name:
        limit = "no limit" if rates.salesmanago_rate is None else str(rates.salesmanago_rate)
        lines.append(f"  SALESmanago {limit}: contacts go in batches of up to 100 a call")
    people_events = sum(state["streams"][s]["retained"] for s in read if s in PERSON_STREAMS) if state else 0
    if "ontraport" in by_name and rates.ontraport_rate is not None and people_events:
        people = sum(n for kind, n in (state or {}).get("records", {}).items() if kind in ("lead", "contact"))
        low = min(people, people_events) or people_events
        rate = rates.ontraport_rate
        lines.append(
            f"  Ontraport {rate}: one call per lead or contact written (no batches): roughly {low} calls (each record's"
            f" changes coalesced into one write) to {people_events} (one write per change), {_minutes(low, rate)} to"
            f" {_minutes(people_events, rate)}; deals, notes and products add their own calls. Until then those keys"
            " stay pending (syncd status shows them); [sandbox] ontraport_rate raises the limit for a quicker try."
        )
    lines.append(
        f"Run the daemon against it in another terminal: syncd run --config {source} (the same file: the same URLs"
        " and credentials)"
    )
    return lines

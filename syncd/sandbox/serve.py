"""`syncd sandbox`: serve the simulators a config file points at, with exactly the credentials it names.

For each API whose `base_url` in the config is on loopback, the matching simulator listens on that port and accepts
the config's own credentials, so one file drives both the daemon and its sandbox.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.types import ASGIApp

from syncd.asgi import make_server, serve_started
from syncd.config import Config, loopback_port
from syncd.errors import ConfigError

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


def _port(url: str, key: str, *, explicit: bool) -> int | None:
    port = loopback_port(url)
    if port is None and explicit:
        raise ConfigError(f"{url or '(not set)'} is not on loopback, so the sandbox cannot serve it", key=key)
    return port


async def serve_all(sandboxes: Sequence[Sandbox], *, announce: bool = True) -> None:
    """Serve every sandbox until cancelled; print one JSON line per server once it listens."""
    async with anyio.create_task_group() as tg:
        for box in sandboxes:
            server = make_server(box.app, box.port)

            def started(port: int, box: Sandbox = box) -> None:
                if announce:
                    line = {"event": "sandbox_ready", "api": box.name, "url": f"http://127.0.0.1:{port}"}
                    print(json.dumps(line), file=sys.stdout, flush=True)

            tg.start_soon(serve_started, server, started)

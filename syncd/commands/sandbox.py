"""`syncd sandbox`: serve the built-in simulators on the loopback ports a config names."""

from __future__ import annotations

import argparse
import sys
from functools import partial

import anyio

from syncd.commands import Command, load_config
from syncd.errors import ConfigError


def run(args: argparse.Namespace) -> int:
    from syncd.sandbox.serve import Sandbox, build, describe, serve_all

    config = load_config(args)
    serve = [s.strip() for s in args.serve.split(",") if s.strip()] if args.serve else None
    boxes = build(
        config,
        events=args.events,
        seed=args.seed,
        serve=serve,
        realistic=not args.exact,
        poison=args.poison,
        records=args.records,
    )
    if not boxes:
        raise ConfigError("no API in this config points at loopback, so there is nothing to serve", path=config.source)

    terminal = sys.stdout.isatty()  # a person reads it: URLs, credentials, what the limits imply; else JSON lines
    ports: dict[str, int] = {}

    def ready(box: Sandbox, port: int) -> None:
        ports[box.name] = port
        if terminal and len(ports) == len(boxes):
            print("\n".join(describe(config, boxes, ports)), flush=True)

    async def serve_until_signal() -> None:
        import signal

        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(serve_all, boxes, announce=not terminal, on_ready=ready))
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    break
            tg.cancel_scope.cancel()

    anyio.run(serve_until_signal)
    return 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=0, help="generate this many Sell change events at start")
    parser.add_argument(
        "--records",
        type=int,
        default=None,
        help="an account that already holds this many records whose events expired (Core API only: syncd backfill)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated history")
    parser.add_argument("--poison", type=int, default=0, help="records a destination will reject, for dead letters")
    parser.add_argument(
        "--serve",
        default=None,
        help="comma-separated APIs to serve: sell,salesmanago,ontraport (default: all on loopback)",
    )
    parser.add_argument("--exact", action="store_true", help="no short, empty or repeated pages (default: realistic)")


COMMAND = Command(
    "sandbox",
    "Serve the built-in simulators of Sell, SALESmanago and Ontraport on the loopback ports the config names.",
    (
        "syncd sandbox --config syncd.toml --events 20000 --seed 7",
        "syncd sandbox --config syncd.toml --records 5000 --events 200   # history older than the Firehose keeps",
        "syncd sandbox --config syncd.toml --serve sell",
    ),
    run,
    _arguments,
)

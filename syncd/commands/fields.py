"""`syncd fields`: a destination's contact fields, as `[sinks.<name>.fields]` may map to them."""

from __future__ import annotations

import argparse
import json

import anyio

from syncd.commands import Command, load_config
from syncd.errors import ConfigError


def run(args: argparse.Namespace) -> int:
    """`syncd fields`: ask the destination for its contact fields and print them."""
    from syncd.ratelimit import Limiter
    from syncd.sinks.base import NoLookups
    from syncd.sinks.registry import build_writer

    config = load_config(args)
    sink = config.sinks.salesmanago if args.sink == "salesmanago" else config.sinks.ontraport
    if sink is None:
        raise ConfigError(f"there is no [sinks.{args.sink}] table", path=config.source)

    async def listing() -> int:
        writer = build_writer(
            sink, store=NoLookups(), limiter=Limiter(sink.name, sink.rate), streams=config.sell.streams
        )
        try:
            found = await writer.fields()
        finally:
            await writer.aclose()
        if args.json:
            rows = [
                {"key": f.key, "label": f.label, "type": f.type, "editable": f.editable, "options": f.options}
                for f in found
            ]
            print(json.dumps(rows, indent=2, ensure_ascii=False))
            return 0
        print(f"{'KEY':<24}{'TYPE':<13}{'EDITABLE':<10}LABEL")
        for f in found:
            options = f"  options: {', '.join(f'{k}={v}' for k, v in f.options.items())}" if f.options else ""
            print(f"{f.key:<24}{f.type:<13}{'yes' if f.editable else 'no':<10}{f.label}{options}")
        return 0

    result: int = anyio.run(listing)
    return result


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sink", required=True, choices=["salesmanago", "ontraport"], help="the destination")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


COMMAND = Command(
    "fields",
    "List a destination's contact fields (what [sinks.<name>.fields] may map to).",
    (
        "syncd fields --sink ontraport --config syncd.toml",
        "syncd fields --sink salesmanago --config syncd.toml --json",
    ),
    run,
    _arguments,
)

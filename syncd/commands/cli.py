"""The `syncd` command line (also `python -m syncd`)."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from syncd import __version__
from syncd.commands.repair import add_commands as add_repair_commands
from syncd.config import Config, ConfigWarning, find_config, load
from syncd.errors import ConfigError, StoreError, SyncdError
from syncd.logs import configure as configure_logs

EX_CONFIG = 78
Handler = Callable[[argparse.Namespace], int]


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd",
        description="Carries Zendesk Sell changes to SALESmanago and Ontraport, at least once.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_examples(
            "syncd demo                               # the whole pipeline against the built-in sandbox",
            "syncd run --config /etc/syncd/syncd.toml",
            "syncd status --json",
        ),
    )
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, *examples: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=_examples(*examples) if examples else None,
        )
        sub.add_argument(
            "--config",
            metavar="FILE",
            help="the config file (default: $SYNCD_CONFIG, then /etc/syncd/syncd.toml)",
        )
        return sub

    run = command(
        "run",
        "Run the daemon: poll Sell's Firehose and deliver every change.",
        "syncd run --config syncd.toml",
        "syncd run --config syncd.toml --until-idle   # exit 0 once caught up and nothing is pending",
    )
    run.add_argument(
        "--until-idle", action="store_true", help="exit once every stream is at the top and nothing is pending"
    )
    run.set_defaults(handler=cmd_run)

    status = command(
        "status",
        "Show positions, the backlog and the health of each destination.",
        "syncd status --config syncd.toml",
        "syncd status --config syncd.toml --json | jq .sinks",
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)

    check = command(
        "check",
        "Try every credential and validate the field mappings against each destination's own field list.",
        "syncd check --config syncd.toml",
    )
    check.set_defaults(handler=cmd_check)

    fields = command(
        "fields",
        "List a destination's contact fields (what [sinks.<name>.fields] may map to).",
        "syncd fields --sink ontraport --config syncd.toml",
        "syncd fields --sink salesmanago --config syncd.toml --json",
    )
    fields.add_argument("--sink", required=True, choices=["salesmanago", "ontraport"], help="the destination")
    fields.add_argument("--json", action="store_true", help="machine-readable output")
    fields.set_defaults(handler=cmd_fields)

    add_repair_commands(command)

    sandbox = command(
        "sandbox",
        "Serve the built-in simulators of Sell, SALESmanago and Ontraport on the loopback ports the config names.",
        "syncd sandbox --config syncd.toml --events 20000 --seed 7",
        "syncd sandbox --config syncd.toml --serve sell",
    )
    sandbox.add_argument("--events", type=int, default=0, help="generate this many Sell change events at start")
    sandbox.add_argument("--seed", type=int, default=0, help="seed of the generated history")
    sandbox.add_argument("--poison", type=int, default=0, help="records a destination will reject, for dead letters")
    sandbox.add_argument(
        "--serve",
        default=None,
        help="comma-separated APIs to serve: sell,salesmanago,ontraport (default: all on loopback)",
    )
    sandbox.add_argument("--exact", action="store_true", help="no short, empty or repeated pages (default: realistic)")
    sandbox.set_defaults(handler=cmd_sandbox)

    from syncd.demo import run as demo

    demo_help = "Run the whole pipeline against the built-in sandboxes and show where every event went."
    demo_command = commands.add_parser(
        "demo",
        help=demo_help,
        description=demo_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_examples(*demo.EXAMPLES),
    )
    demo.add_arguments(demo_command)
    demo_command.set_defaults(handler=demo.run)

    from syncd.commands import logs as logview

    logs_help = "Print syncd's JSON log lines readably (time, level, event, key=value), filtered; follow a file."
    logs = commands.add_parser(
        "logs",
        help=logs_help,
        description=logs_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_examples(*logview.epilog_examples()),
    )
    logview.add_arguments(logs)
    logs.set_defaults(handler=cmd_logs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if hasattr(args, "handler_with_config"):
            with_config: Callable[[argparse.Namespace, Config], int] = args.handler_with_config
            return with_config(args, load_config(args))
        handler: Handler = args.handler
        return handler(args)
    except ConfigError as exc:
        print(f"syncd: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except StoreError as exc:
        print(f"syncd: state error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except SyncdError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def load_config(args: argparse.Namespace) -> Config:
    """Load the config named on the command line (or by $SYNCD_CONFIG, or the default path); warnings to stderr."""
    path = find_config(getattr(args, "config", None))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConfigWarning)
        config = load(path)
    for warning in caught:
        print(f"syncd: warning: {warning.message}", file=sys.stderr)
    return config


def _logs(config: Config) -> None:
    configure_logs(level=config.log.level, fmt=config.log.format, secrets=config.secret_values())


def cmd_run(args: argparse.Namespace) -> int:
    from syncd.commands.check import offline_problems
    from syncd.daemon import Daemon

    config = load_config(args)
    problems = offline_problems(config)
    if problems:
        for problem in problems:
            print(f"syncd: configuration error: {config.source}: {problem}", file=sys.stderr)
        return EX_CONFIG
    _logs(config)
    daemon = Daemon(config, until_idle=args.until_idle)
    result: int = anyio.run(daemon.run)
    return result


def cmd_status(args: argparse.Namespace) -> int:
    from state.db import open_database
    from state.store import read_status
    from syncd.commands.status import as_dict, render_json, render_table

    config = load_config(args)

    async def read() -> dict[str, Any]:
        db = await open_database(config.state.path, readonly=True)
        try:
            snapshot = await read_status(db)
        finally:
            await db.close()
        return as_dict(snapshot, now=time.time())

    data = anyio.run(read)
    print(render_json(data) if args.json else render_table(data))
    return 0


async def _custom_field_names(config: Config) -> frozenset[str] | None:
    """The Sell custom field names the store knows (None without a store or without definitions)."""
    from state.store import Store

    if not await anyio.Path(config.state.path).exists():
        return None
    store = await Store.open(config.state.path, readonly=True)
    try:
        return await store.custom_field_names()
    finally:
        await store.close()


def cmd_check(args: argparse.Namespace) -> int:
    from syncd.commands.check import check

    config = load_config(args)

    async def run() -> int:
        report = await check(config, custom_names=await _custom_field_names(config))
        for line in report.lines:
            print(line)
        for line in report.unreachable:
            print(f"FAIL  {line}")
        for problem in report.problems:
            print(f"FAIL  {config.source}: {problem}")
        if report.problems:
            return EX_CONFIG
        return 0 if report.ok else 1

    result: int = anyio.run(run)
    return result


def cmd_fields(args: argparse.Namespace) -> int:
    import json

    from syncd.ratelimit import Limiter
    from syncd.sinks.base import NoLookups
    from syncd.sinks.registry import build_writer

    config = load_config(args)
    sink = config.sinks.salesmanago if args.sink == "salesmanago" else config.sinks.ontraport
    if sink is None:
        raise ConfigError(f"there is no [sinks.{args.sink}] table", path=config.source)

    async def run() -> int:
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

    result: int = anyio.run(run)
    return result


def cmd_sandbox(args: argparse.Namespace) -> int:
    from syncd.sandbox.serve import build, serve_all

    config = load_config(args)
    serve = [s.strip() for s in args.serve.split(",") if s.strip()] if args.serve else None
    boxes = build(config, events=args.events, seed=args.seed, serve=serve, realistic=not args.exact, poison=args.poison)
    if not boxes:
        raise ConfigError("no API in this config points at loopback, so there is nothing to serve", path=config.source)

    async def serve_until_signal() -> None:
        import signal

        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_all, boxes)
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    break
            tg.cancel_scope.cancel()

    anyio.run(serve_until_signal)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from syncd.commands.logs import run

    return run(args)

"""`syncd run`: the daemon."""

from __future__ import annotations

import argparse
import sys

import anyio

from syncd.commands import EX_CONFIG, Command, load_config
from syncd.logs import configure as configure_logs


def run(args: argparse.Namespace) -> int:
    from syncd.commands.check import offline_problems
    from syncd.daemon import Daemon

    config = load_config(args)
    problems = offline_problems(config)
    if problems:
        for problem in problems:
            print(f"syncd: configuration error: {config.source}: {problem}", file=sys.stderr)
        return EX_CONFIG
    configure_logs(level=config.log.level, fmt=config.log.format, secrets=config.secret_values())
    daemon = Daemon(config, until_idle=args.until_idle)
    result: int = anyio.run(daemon.run)
    return result


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--until-idle", action="store_true", help="exit once every stream is at the top and nothing is pending"
    )


COMMAND = Command(
    "run",
    "Run the daemon: poll Sell's Firehose and deliver every change.",
    (
        "syncd run --config syncd.toml",
        "syncd run --config syncd.toml --until-idle   # exit 0 once caught up and nothing is pending",
    ),
    run,
    _arguments,
)

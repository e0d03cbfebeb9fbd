"""`syncd run`: the daemon. Exit codes: 0 after a graceful stop (SIGTERM, SIGINT or SIGHUP; `--until-idle` once
done), 1 when `--until-idle` ends with a stream expired or stopped, 2 after a second signal, 78 for configuration
(and a state file an operator must repair), 75 for transient failures (the state file owned by another `syncd
run`, locked, disk full, I/O), which the systemd unit restarts."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

import anyio

from syncd.commands import EX_CONFIG, Command, load_config, state_path_errors
from syncd.logs import configure as configure_logs


def run(args: argparse.Namespace) -> int:
    from state.db import translate
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
    with state_path_errors(config):
        try:
            result: int = anyio.run(daemon.run)
        except (sqlite3.Error, BaseExceptionGroup) as exc:  # the state file failed under the daemon (disk full, I/O)
            failed = _sqlite_error(exc)
            if failed is None:
                raise
            raise translate(failed, Path(config.state.path)) from None
    return result


def _sqlite_error(exc: BaseException) -> sqlite3.Error | None:
    """The SQLite error `exc` is, or one inside it when it is a group (a task's failure)."""
    if isinstance(exc, sqlite3.Error):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _sqlite_error(inner)
            if found is not None:
                return found
    return None


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--until-idle", action="store_true", help="exit once every stream is at the top and nothing is pending"
    )


COMMAND = Command(
    "run",
    "Run the daemon: poll Sell's Firehose and deliver every change. SIGTERM, SIGINT and SIGHUP stop it gracefully"
    " (SIGHUP does not reload: restart it to apply a changed config). One daemon per state file: a second one"
    " exits at once with code 75.",
    (
        "syncd run --config syncd.toml",
        "syncd run --config syncd.toml --until-idle   # exit 0 once caught up and nothing is pending",
    ),
    run,
    _arguments,
)

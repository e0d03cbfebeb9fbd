"""`syncd run`: the daemon. Exit codes: 0 after a graceful stop (SIGTERM, SIGINT or SIGHUP; `--until-idle` once
done), 1 when `--until-idle` ends with a stream expired or stopped, 2 after a second signal, 69 when `--until-idle`
gave up because Sell or a destination stayed unreachable for `--max-wait`, 78 for configuration (and a state file an
operator must repair), 75 for transient failures (the state file owned by another `syncd run`, locked, disk full,
I/O), which the systemd unit restarts."""

from __future__ import annotations

import argparse
import gc
import sqlite3
import sys
from pathlib import Path

import anyio

from syncd.commands import EX_CONFIG, Command, load_config, state_path_errors
from syncd.logs import configure as configure_logs
from syncd.units import parse_duration

DEFAULT_MAX_WAIT_TEXT = "5m"
DEFAULT_MAX_WAIT = parse_duration(DEFAULT_MAX_WAIT_TEXT)
# The cyclic GC's young-generation threshold for the daemon. What it allocates per event is freed by reference
# counting (an answer no longer sits in a cycle: httpclient.bounded_request), so Python's default of 700 only made
# ~1,100 collections per 100,000 events ingested (0.8 s of CPU, the full ones rescanning everything start-up
# loaded); at 10,000: 13 collections, 0.09 s, and the same peak RSS.
GC_YOUNG_THRESHOLD = 10_000


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
    daemon = Daemon(config, until_idle=args.until_idle, max_wait=args.max_wait if args.until_idle else None)
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    with state_path_errors(config):
        try:
            result: int = anyio.run(daemon.run)
        except (sqlite3.Error, BaseExceptionGroup) as exc:  # the state file failed under the daemon (disk full, I/O)
            failed = _sqlite_error(exc)
            if failed is None:
                raise
            raise translate(failed, Path(config.state.path)) from None
    if daemon.gave_up is not None:
        print(f"syncd: {daemon.gave_up}", file=sys.stderr)
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


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be above zero")
    return seconds


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--until-idle",
        action="store_true",
        help="exit once every stream is at the top and nothing is pending (0), or a stream expired or stopped (1)",
    )
    parser.add_argument(
        "--max-wait",
        type=_duration,
        default=DEFAULT_MAX_WAIT,
        metavar="DURATION",
        help="with --until-idle: give up (exit 69, naming the URL) once Sell or a destination with work left has"
        f" been unreachable this long without a break, e.g. 30s, 10m (default {DEFAULT_MAX_WAIT_TEXT})",
    )


COMMAND = Command(
    "run",
    "Run the daemon: poll Sell's Firehose and deliver every change. SIGTERM, SIGINT and SIGHUP stop it gracefully"
    " (SIGHUP does not reload: restart it to apply a changed config). One daemon per state file: a second one"
    " exits at once with code 75.",
    (
        "syncd run --config syncd.toml",
        "syncd run --config syncd.toml --until-idle   # exit 0 once caught up and nothing is pending",
        "syncd run --config syncd.toml --until-idle --max-wait 1m   # exit 69 if Sell stays unreachable for 1 min",
    ),
    run,
    _arguments,
)

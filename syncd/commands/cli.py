"""The `syncd` command line (also `python -m syncd`): the parser is built from every command module's `Command`s,
and errors become exit codes: 78 for configuration (and a state file an operator must repair), 75 for transient
failures (the state file locked or owned by another process, disk full, I/O), 1 for other failures."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from syncd import __version__
from syncd.commands import (
    EX_CONFIG,
    EX_TEMPFAIL,
    Command,
    add_config_argument,
    backfill,
    check,
    demo,
    examples_epilog,
    fields,
    logs,
    reconcile,
    repair,
    sandbox,
    silence_stdout,
    status,
)
from syncd.commands import run as run_command
from syncd.errors import ConfigError, StoreError, SyncdError

__all__ = ["COMMANDS", "EX_CONFIG", "EX_TEMPFAIL", "build_parser", "main"]

COMMANDS: tuple[Command, ...] = (
    run_command.COMMAND,
    demo.COMMAND,
    status.COMMAND,
    check.COMMAND,
    fields.COMMAND,
    *repair.COMMANDS,
    backfill.COMMAND,
    reconcile.COMMAND,
    sandbox.COMMAND,
    logs.COMMAND,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd",
        description="Carries Zendesk Sell changes to SALESmanago and Ontraport, at least once.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=examples_epilog(
            (
                "syncd demo                               # the whole pipeline against the built-in sandbox",
                "syncd run --config /etc/syncd/syncd.toml",
                "syncd status --json",
            )
        ),
    )
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name,
            help=command.help,
            description=command.help,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=examples_epilog(command.examples),
        )
        if command.takes_config:
            add_config_argument(sub)
        command.arguments(sub)
        sub.set_defaults(handler=command.handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
        return result
    except ConfigError as exc:
        print(f"syncd: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except StoreError as exc:
        print(f"syncd: state error: {exc}", file=sys.stderr)
        return EX_TEMPFAIL if exc.transient else EX_CONFIG
    except SyncdError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`syncd status --json | head`): nothing left to say
        silence_stdout()
        return 0

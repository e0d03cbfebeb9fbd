"""The `syncd` command line: one module per command, each exposing its `Command`s; `syncd.commands.cli` builds the
parser from them in one place and maps errors to exit codes.

A command module imports only what building its arguments needs; its handler imports the rest when it runs, so
`syncd run` does not pay for the demo, the simulators or rich.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from syncd.config import Config, ConfigWarning, find_config, load
from syncd.errors import ConfigError

EX_CONFIG = 78  # a configuration error: systemd does not restart into it (RestartPreventExitStatus=78)
EX_TEMPFAIL = 75  # a transient failure (the state file locked or owned by another process, disk full, I/O)

Handler = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """A command without options of its own."""


@dataclass(frozen=True, slots=True)
class Command:
    """One `syncd` subcommand: what it is for, how it is called, and what runs it."""

    name: str
    help: str
    examples: tuple[str, ...]
    handler: Handler
    arguments: Arguments = _no_arguments
    takes_config: bool = True  # adds --config FILE


def examples_epilog(examples: tuple[str, ...] | list[str]) -> str:
    """The "examples:" block shown at the end of a command's --help."""
    return "examples:\n" + "\n".join(f"  {line}" for line in examples)


def add_config_argument(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """--config FILE (a nested action's copy is suppressed so it does not override the command's own value)."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS if suppress else None,
        help="the config file (default: $SYNCD_CONFIG, then /etc/syncd/syncd.toml)",
    )


def load_config(args: argparse.Namespace, *, secrets: bool = True) -> Config:
    """Load the config named on the command line (or by $SYNCD_CONFIG, or the default path); warnings to stderr.
    Commands that only use the store pass `secrets=False`: they never read a secret, so they work from a shell
    where the daemon's `env:`, `file:` or `credential:` sources are out of reach."""
    path = find_config(getattr(args, "config", None))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConfigWarning)
        config = load(path, resolve_secrets=secrets)
    for warning in caught:
        print(f"syncd: warning: {warning.message}", file=sys.stderr)
    return config


@contextmanager
def state_path_errors(config: Config) -> Iterator[None]:
    """A `state.path` that cannot hold a database (a directory, a path that cannot be created or written) is a
    configuration error naming the file and the key."""
    from state.errors import StoreLocation  # here: the state package costs start-up time every command would pay

    try:
        yield
    except StoreLocation as exc:
        raise ConfigError(str(exc), path=config.source, key="state.path") from None


def silence_stdout() -> None:
    """After a broken pipe (`syncd status --json | head`), point stdout at /dev/null so the interpreter's final
    flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def program(argv0: str | None = None, path: str | None = None) -> str:
    """How to run this same syncd again from a shell like the current one, for the commands syncd prints: `syncd`
    when that name on PATH is this very program, else its own absolute path (a virtualenv not activated), or
    `PYTHON -m syncd` when it was started that way. `argv0` and `path` default to sys.argv[0] and $PATH."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    me = Path(argv0).absolute() if argv0 and Path(argv0).name == "syncd" and Path(argv0).is_file() else None
    if me is None:
        return f"{shlex.quote(sys.executable)} -m syncd"
    found = shutil.which("syncd", path=path)
    if found is not None and Path(found).resolve() == me.resolve():
        return "syncd"
    return shlex.quote(str(me))

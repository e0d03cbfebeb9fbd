"""The process entry (the `syncd` console script and `python -m syncd`): stop signals are caught from the first
moment of `syncd run`, before the command line is even parsed, then the command line runs.

Without this, a SIGTERM (or SIGINT, SIGHUP) arriving while the interpreter imports syncd or the daemon opens its
store killed the process (exit -15). Signals caught here are only recorded: the daemon reads them once its own
signal handling runs and stops gracefully (exit 0) as if they had arrived then. This module imports only the
standard library, so the window before it runs is the interpreter's own start.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class EarlySignals:
    """Stop signals received before the daemon handles them itself (process-wide: see `EARLY`)."""

    def __init__(self) -> None:
        self.received: list[signal.Signals] = []
        self.installed = False

    def install(self) -> None:
        """Record SIGTERM, SIGINT and SIGHUP instead of dying (or raising KeyboardInterrupt) on them."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._record)
        self.installed = True

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signal.Signals(signum))


EARLY = EarlySignals()


def main() -> int:
    """`syncd ...`: for `run`, catch stop signals first; then the command line."""
    if sys.argv[1:2] == ["run"]:
        EARLY.install()
    from syncd.commands.cli import main as cli_main

    return cli_main()

"""`syncd logs`: the daemon's JSON log lines made readable, filtered, and followed as they grow.

Input is what syncd wrote to stdout (`journalctl -u syncd -o cat`, `docker logs syncd`, a file). Each syncd line is
printed as `time level event key=value ...`; lines that are not syncd JSON (a traceback, another program's output)
pass through unchanged. A prefix before the JSON (journalctl's default `host syncd[42]:`, compose's `syncd-1  |`)
is kept in front. Parsing, filtering and rendering are pure; reading stdin or a file, and following a file that
grows (or is truncated or rotated, like `tail -F`), happen at the edge.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from syncd.commands import Command, silence_stdout
from syncd.errors import SyncdError
from syncd.logformat import (
    LEVELS,
    RANK,
    Entry,
    format_time,
    format_value,
    level_of,
    ordered_fields,
    parse,
    render,
    use_color,
)

__all__ = [
    "LEVELS",
    "Entry",
    "LogFilter",
    "format_time",
    "format_value",
    "level_of",
    "ordered_fields",
    "parse",
    "render",
    "use_color",
    "view",
]

FOLLOW_INTERVAL = 0.25  # seconds between looks at a followed file that has nothing new


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which lines to show: a minimum level, sinks, streams (syncd lines only) and a regex on the raw line."""

    min_level: str = "debug"
    sinks: frozenset[str] = frozenset()
    streams: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None

    def accepts(self, entry: Entry) -> bool:
        if self.pattern is not None and not self.pattern.search(entry.raw):
            return False
        record = entry.record
        if record is None:
            return True  # not a syncd line: only --grep applies
        if RANK[level_of(record)] < RANK[self.min_level]:
            return False
        if self.sinks and record.get("sink") not in self.sinks:
            return False
        return not self.streams or record.get("stream") in self.streams


def view(lines: Iterable[str], log_filter: LogFilter, *, color: bool = False) -> Iterator[str]:
    """The printed form of every line the filter accepts."""
    for line in lines:
        entry = parse(line)
        if log_filter.accepts(entry):
            yield render(entry, color=color)


# ---------------------------------------------------------------------------------------------------------------
# reading: a stream to its end, or a file as it grows


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


class Follower:
    """Complete lines from a file as it grows, like `tail -F`: a half-written last line waits for its newline; a
    truncated file is read again from its start; a rotated one (a new file under the path) is drained, then the
    new file is read from its start. With `stream` (a regular file on stdin) there is no path to re-open."""

    def __init__(self, path: Path | None = None, *, stream: IO[bytes] | None = None) -> None:
        if stream is None:
            if path is None:
                raise ValueError("a path or a stream")
            stream = _open(path)
        self.path = path
        self._file = stream
        self._partial = b""

    def read_available(self) -> list[str]:
        """Every complete line written since the last call (empty when there is nothing new)."""
        lines = self._drain()
        if not lines and self._truncated():
            self._file.seek(0)
            self._partial = b""
            lines = self._drain()
        if not lines and self._rotated():
            assert self.path is not None
            self._file.close()
            self._file = _open(self.path)
            self._partial = b""
            lines = self._drain()
        return lines

    def _drain(self) -> list[str]:
        data = self._partial + self._file.read()
        *complete, self._partial = data.split(b"\n")
        return [_decode(raw) for raw in complete]

    def _truncated(self) -> bool:
        return os.fstat(self._file.fileno()).st_size < self._file.tell()

    def _rotated(self) -> bool:
        if self.path is None:
            return False
        try:
            now = os.stat(self.path)
        except OSError:  # between a rename and the new file's creation: keep the old one
            return False
        current = os.fstat(self._file.fileno())
        return (now.st_dev, now.st_ino) != (current.st_dev, current.st_ino)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise SyncdError(f"logs: cannot read {path}: {exc.strerror}") from None


def _is_regular(stream: IO[bytes]) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------------------------
# the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `syncd logs` options."""
    parser.add_argument("file", nargs="?", default="-", metavar="FILE", help="a log file (default: stdin)")
    parser.add_argument("--level", choices=LEVELS, default="debug", help="show this level and above")
    parser.add_argument("--sink", action="append", default=[], metavar="NAME", help="only this destination")
    parser.add_argument("--stream", action="append", default=[], metavar="NAME", help="only this Sell stream")
    parser.add_argument("--grep", type=_regex, metavar="REGEX", help="only lines matching REGEX (on the raw line)")
    parser.add_argument("-n", "--lines", type=_count, metavar="N", help="only the last N matching lines (then follow)")
    parser.add_argument(
        "-f", "--follow", action="store_true", help="keep reading as the file grows (like tail -F); stdin ends at EOF"
    )
    parser.add_argument(
        "--color", choices=("auto", "always", "never"), default="auto", help="colours (auto: only on a terminal)"
    )


EXAMPLES = (
    "journalctl -u syncd -o cat | syncd logs --level warning",
    "journalctl -u syncd -o cat -f | syncd logs --sink ontraport   # live",
    "docker logs -f syncd 2>&1 | syncd logs --stream leads",
    "syncd logs /var/log/syncd.log --follow --grep 'lead:10'",
    "syncd logs run.log -n 20 --level error",
    "",
    "Lines that are not syncd JSON (tracebacks, other programs) are always shown unless --grep leaves them out.",
)


def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"not a regular expression: {exc}") from None


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number of lines, got {text!r}")
    return int(text)


def _names(values: Iterable[str]) -> frozenset[str]:
    return frozenset(name.strip() for value in values for name in value.split(",") if name.strip())


def filter_from(args: argparse.Namespace) -> LogFilter:
    return LogFilter(args.level, _names(args.sink), _names(args.stream), args.grep)


def _last(lines: Iterable[str], count: int | None) -> Iterable[str]:
    return lines if count is None else deque(lines, maxlen=count)


def _write(out: IO[str], lines: Iterable[str]) -> None:
    for line in lines:
        out.write(line + "\n")
        out.flush()


def _follow(follower: Follower, log_filter: LogFilter, count: int | None, color: bool, out: IO[str]) -> None:
    """What is there now (its last `count` lines), then every new line as it comes, until interrupted."""
    try:
        _write(out, _last(view(follower.read_available(), log_filter, color=color), count))
        while True:
            lines = follower.read_available()
            if not lines:
                time.sleep(FOLLOW_INTERVAL)
            _write(out, view(lines, log_filter, color=color))
    finally:
        follower.close()


def run(args: argparse.Namespace, *, stdin: IO[bytes] | None = None, out: IO[str] | None = None) -> int:
    """`syncd logs`: print the input's lines readably, filtered; with --follow, keep going as the file grows."""
    source = stdin if stdin is not None else sys.stdin.buffer
    out = out if out is not None else sys.stdout
    log_filter = filter_from(args)
    color = use_color(args.color, out)
    path = None if args.file == "-" else Path(args.file)
    if path is None and source.isatty():
        raise SyncdError("logs: nothing to read; pipe syncd's output in (journalctl -u syncd -o cat | syncd logs)")
    try:
        if args.follow and (path is not None or _is_regular(source)):
            _follow(Follower(path, stream=None if path is not None else source), log_filter, args.lines, color, out)
        elif path is not None:
            with _open(path) as stream:
                _write(out, _last(view((_decode(raw) for raw in stream), log_filter, color=color), args.lines))
        else:
            _write(out, _last(view((_decode(raw) for raw in source), log_filter, color=color), args.lines))
    except BrokenPipeError:  # `syncd logs | head`: the reader has gone, which is fine
        silence_stdout()
    return 0


COMMAND = Command(
    "logs",
    "Print syncd's JSON log lines readably (time, level, event, key=value), filtered; follow a file.",
    EXAMPLES,
    run,
    add_arguments,
    takes_config=False,
)

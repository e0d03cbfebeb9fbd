"""How a syncd log record reads on a terminal: `time level event key=value ...`, identity keys first, long
explanations last, tracebacks indented under their line. Pure; `syncd logs` (JSON lines read back) and the daemon's
own console output (`syncd.logs`, on a terminal) both print records through `render`, so the two look alike.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

LEVELS = ("debug", "info", "warning", "error", "critical")
RANK = {name: rank for rank, name in enumerate(LEVELS)}
_ALIASES = {"warn": "warning", "fatal": "critical", "exception": "error"}
FIRST_KEYS = ("stream", "sink", "kind", "key", "record_id", "seq", "attempt", "http_status", "duration_ms")
LAST_KEYS = ("reason", "error", "hint")
BLOCK_KEYS = ("exception", "stack")  # multi-line text, printed indented under its line
_HEAD_KEYS = frozenset({"event", "level", "ts"})
_BARE = re.compile(r"^[\w.:/@+\-<>\[\]]+$")

_RESET = "\033[0m"
_STYLES = {
    "debug": "\033[2m",
    "info": "\033[32m",
    "warning": "\033[33m",
    "error": "\033[1;31m",
    "critical": "\033[1;37;41m",
    "event": "\033[1m",
    "key": "\033[36m",
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One input line: its text, and the record when it is a syncd JSON log line."""

    raw: str
    record: dict[str, Any] | None = None
    prefix: str = ""  # what stood before the JSON object, e.g. "syncd-1  | "


def parse(line: str) -> Entry:
    """Read one line; `record` is set only for a JSON object with an `event` (a syncd log line)."""
    text = line.rstrip("\r\n")
    start = text.find("{")
    if start < 0:
        return Entry(text)
    try:
        record = json.loads(text[start:])
    except ValueError:
        return Entry(text)
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        return Entry(text)
    return Entry(text, record, text[:start])


def level_of(record: dict[str, Any]) -> str:
    """The record's level as one of LEVELS; a line without one counts as info."""
    level = str(record.get("level") or "info").lower()
    level = _ALIASES.get(level, level)
    return level if level in RANK else "info"


def format_time(value: Any) -> str:
    """`2026-11-22T07:50:02.061450Z` → `2026-11-22 07:50:02.061` (UTC); anything unparsable as it is."""
    if not isinstance(value, str):
        return "" if value is None else str(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d}"


def format_value(value: Any) -> str:
    """A value as it reads best after `key=`: plain words bare, everything else as JSON (quoted, escaped)."""
    if isinstance(value, str) and _BARE.match(value):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def ordered_fields(record: dict[str, Any]) -> list[tuple[str, Any]]:
    """The key=value part: identity keys first, then the rest as logged, long explanations last; a key without a
    value (None, JSON's null) says nothing and is left out."""
    rest = [k for k in record if k not in _HEAD_KEYS and k not in BLOCK_KEYS]
    first = [k for k in FIRST_KEYS if k in record]
    last = [k for k in LAST_KEYS if k in record]
    middle = [k for k in rest if k not in FIRST_KEYS and k not in LAST_KEYS]
    return [(k, record[k]) for k in (*first, *middle, *last) if record[k] is not None]


def _paint(text: str, style: str, color: bool) -> str:
    return f"{_STYLES[style]}{text}{_RESET}" if color else text


def render(entry: Entry, *, color: bool = False) -> str:
    """One entry as printed: `time level event key=value ...` (plus indented tracebacks); other lines unchanged."""
    record = entry.record
    if record is None:
        return entry.raw
    level = level_of(record)
    fields = " ".join(f"{_paint(k, 'key', color)}={format_value(v)}" for k, v in ordered_fields(record))
    event = str(record["event"])
    head = [
        format_time(record.get("ts")),
        _paint(f"{level:<7}", level, color),
        _paint(f"{event:<20}" if fields else event, "event", color),
    ]
    line = entry.prefix + " ".join(part for part in head if part)
    if fields:
        line = f"{line} {fields}"
    for key in BLOCK_KEYS:
        block = record.get(key)
        if block:
            line += "".join(f"\n    {text}" for text in str(block).rstrip("\n").splitlines())
    return line


def use_color(choice: str, out: IO[str], environ: dict[str, str] | None = None) -> bool:
    """Colours when asked, or (auto) on a terminal unless $NO_COLOR is set or TERM is dumb."""
    env = os.environ if environ is None else environ
    if choice != "auto":
        return choice == "always"
    if "NO_COLOR" in env or env.get("TERM") == "dumb":
        return False
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False

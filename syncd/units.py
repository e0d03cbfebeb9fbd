"""Parsing of the human units the config file accepts: durations ("500ms", "5s", "2m"), rates ("10/s") and sizes
("500MB", "2GiB")."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*(ms|s|sec|second|m|min|minute|h|hour)\s*$")
_RATE_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$")
_BYTES = {
    None: 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}


def parse_size(value: int | str) -> int:
    """Bytes from a number of bytes or a string such as "500MB", "2GB" or "1.5GiB" (KB, MB, GB, TB are powers of
    1000; KiB, MiB, GiB, TiB of 1024)."""
    if isinstance(value, bool):
        raise ValueError('expected a size such as "500MB" or "2GB"')
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f'expected a size such as "500MB" or "2GB", got {value!r}')
    return int(float(match.group(1)) * _BYTES[match.group(2)])


def parse_duration(value: float | int | str) -> float:
    """Seconds from a number of seconds or a string such as "500ms", "5s", "2m", "1h", "7d"."""
    if isinstance(value, bool):
        raise ValueError('expected a duration such as 5, "500ms", "5s" or "2m"')
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"a duration must be a finite number of seconds, got {value}")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f'expected a duration such as 5, "500ms", "5s" or "2m", got {value!r}')
    return float(match.group(1)) * _SECONDS[match.group(2)]


class Rate:
    """At most `count` requests per `period` seconds (a plain class so the config decoder parses it from text)."""

    __slots__ = ("count", "period")

    def __init__(self, count: float, period: float) -> None:
        self.count = float(count)
        self.period = float(period)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rate) and (self.count, self.period) == (other.count, other.period)

    def __hash__(self) -> int:
        return hash((self.count, self.period))

    def __repr__(self) -> str:
        return f"Rate({str(self)!r})"

    @property
    def per_second(self) -> float:
        return self.count / self.period

    def __str__(self) -> str:
        count = int(self.count) if self.count == int(self.count) else self.count
        if self.period == 1:
            return f"{count}/s"
        if self.period == 60:
            return f"{count}/min"
        if self.period == 3600:
            return f"{count}/h"
        return f"{count}/{self.period}s"


def parse_rate(value: str) -> Rate:
    """A rate from a string such as "10/s", "180/min", "36000/h" or "5/10s"."""
    match = _RATE.match(value)
    if not match:
        raise ValueError(f'expected a rate such as "10/s" or "180/min", got {value!r}')
    count = float(match.group(1))
    multiple = float(match.group(2)) if match.group(2) else 1.0
    period = multiple * _RATE_SECONDS[match.group(3)]
    if count <= 0 or period <= 0:
        raise ValueError(f"a rate must be positive, got {value!r}")
    return Rate(count, period)

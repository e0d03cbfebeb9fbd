"""A rolling-window request counter, as the simulated APIs enforce their rate limits."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from syncd.units import Rate


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # whole seconds until the oldest counted request leaves the window


class RollingWindow:
    """At most `rate.count` requests in any `rate.period` seconds, per key (a token, an account)."""

    def __init__(self, rate: Rate | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> Verdict:
        """Count one request for `key` (refused requests do not count)."""
        if self.rate is None:
            return Verdict(True, 0, 0, 0)
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.rate.period:
            hits.popleft()
        limit = max(1, int(self.rate.count))
        allowed = len(hits) < limit
        if allowed:
            hits.append(now)
        reset = math.ceil(hits[0] + self.rate.period - now) if hits else 0
        return Verdict(allowed, limit, max(0, limit - len(hits)), max(reset, 1 if not allowed else 0))

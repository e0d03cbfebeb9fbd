"""When to try again: a pure, table-tested policy (capped exponential backoff with full jitter).

The policy only decides; it holds no state. Attempt counts live in the store, so they survive restarts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from syncd.errors import CallError, DestinationError, PermanentError


@dataclass(frozen=True, slots=True)
class RetryAt:
    """Try again `delay` seconds from now."""

    delay: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop trying this record: dead-letter it with `reason`."""

    reason: str


@dataclass(frozen=True, slots=True)
class PauseDestination:
    """The whole destination is unusable (credentials): pause it and re-probe; the record is not at fault."""

    reason: str


Decision = RetryAt | GiveUp | PauseDestination


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`base` × 2^(attempt-1), capped at `cap`, drawn uniformly from [0, that] (full jitter); forever unless
    `max_attempts` is set. A server's `Retry-After` / `X-Rate-Limit-Reset` is honoured, up to `cap` (a server
    asking for a day, or naming an epoch by mistake, pauses nothing longer than the cap)."""

    base: float = 1.0
    cap: float = 300.0
    max_attempts: int | None = None
    floor: float = 0.01

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the jittered delay before attempt number `attempt + 1` (attempt ≥ 1)."""
        exponent = min(max(attempt, 1) - 1, 62)
        return float(min(self.cap, self.base * (2**exponent)))

    def backoff(self, attempt: int, rng: random.Random) -> float:
        return max(self.floor, rng.uniform(0.0, self.ceiling(attempt)))

    def decide(self, attempt: int, error: CallError, rng: random.Random) -> Decision:
        """What to do after failed attempt number `attempt` (1 for the first failure) with `error`."""
        if isinstance(error, DestinationError):
            return PauseDestination(error.message)
        if isinstance(error, PermanentError):
            return GiveUp(error.message)
        if self.max_attempts is not None and attempt >= self.max_attempts:
            return GiveUp(f"gave up after {attempt} attempts: {error.message}")
        delay = self.backoff(attempt, rng)
        if error.retry_after is not None:
            # Honour the server's wait (up to the cap), plus a little jitter so a crowd of keys does not return in one
            # instant.
            wait = min(error.retry_after, self.cap)
            delay = wait + rng.uniform(0.0, min(1.0, 0.1 * wait))
        return RetryAt(delay)


@dataclass(frozen=True, slots=True)
class RecheckPolicy:
    """How soon a key waiting on another is looked at again when nothing releases it earlier: `base` × 2^(checks-1)
    capped at `cap` (no jitter: a release, not this timer, is what normally wakes a waiting key). The timer only
    covers what no release reports (a contact written by someone else, a clock step)."""

    base: float = 5.0
    cap: float = 300.0

    def delay(self, checks: int) -> float:
        """Seconds until the next look after the key was found waiting `checks` times in a row (≥ 1)."""
        exponent = min(max(checks, 1) - 1, 62)
        return float(min(self.cap, self.base * (2**exponent)))

"""`--until-idle`'s bound (`--max-wait`): how long it may wait while something it needs cannot be reached.

Idle needs every stream read to the top and every destination's backlog written. A stream whose reads keep
failing (Sell refusing connections, timing out, answering 5xx) or a destination paused with work left (its circuit
breaker open, its credentials refused) holds that back for as long as it lasts. `Blocked` names each such API with
its URL and last error; `MaxWait` says when the same blockage has lasted `max_wait` without a break. Pure: the
caller passes the live states and the time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

EXIT_UNREACHABLE = 69  # sysexits' EX_UNAVAILABLE: `--until-idle --max-wait` gave up on an API it could not reach


@dataclass(frozen=True, slots=True)
class Blocked:
    """One API holding `--until-idle` back: who (`sell` or a destination), where, and why."""

    api: str
    url: str
    error: str

    def describe(self) -> str:
        name = "Sell" if self.api == "sell" else self.api
        return f"{name} at {self.url}: {self.error or 'no answer'}"


@dataclass(frozen=True, slots=True)
class StreamView:
    """What `blocked` needs of one stream's poller."""

    failures: int  # reads of the same page that failed in a row
    last_error: str


@dataclass(frozen=True, slots=True)
class SinkView:
    """What `blocked` needs of one destination's dispatcher."""

    sink: str
    url: str
    paused: str | None  # why it is paused (its breaker or its credentials), None when it is not
    last_error: str


def blocked(sell_url: str, streams: Iterable[StreamView], sinks: Iterable[SinkView], *, pending: bool) -> list[Blocked]:
    """The APIs holding idle back now: Sell when any stream's reads are failing, and each destination that is paused
    while work is pending (`pending`: the store still holds deliveries that are not blocked on other keys)."""
    found: list[Blocked] = []
    failing = [s for s in streams if s.failures > 0]
    if failing:
        found.append(Blocked("sell", sell_url, failing[0].last_error))
    if pending:
        for sink in sinks:
            if sink.paused is not None:
                found.append(Blocked(sink.sink, sink.url, sink.last_error or sink.paused))
    return found


@dataclass
class MaxWait:
    """Tracks how long `--until-idle` has been blocked without a break; `over` once that reaches `max_wait`."""

    max_wait: float
    since: float | None = None  # when the current blockage began (None: not blocked)
    last: Sequence[Blocked] = ()

    def observe(self, now: float, found: Sequence[Blocked]) -> bool:
        """Record what blocks idle at `now`; True once something has blocked it for `max_wait` without a break."""
        if not found:
            self.since, self.last = None, ()
            return False
        if self.since is None:
            self.since = now
        self.last = found
        return now - self.since >= self.max_wait

    def message(self) -> str:
        """What gave up, naming each API's URL."""
        waited = 0.0 if self.since is None else self.max_wait
        what = "; ".join(b.describe() for b in self.last)
        return (
            f"--until-idle gave up after waiting {_duration(waited)} (--max-wait) for what it could not reach: {what}"
        )


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"

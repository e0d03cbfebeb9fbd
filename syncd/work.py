"""What a dispatcher hands a writer (a key's pending work) and what it gets back (one outcome per key).

Pure data. `KeyWork`, `Delivery` and `Shadow` carry decoded Sell records; the outcomes and `Link` are the store's
own types (state.outcomes, state.rows), which the store records as they are; `split_key` reads the store's keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from state.keys import record_key, split_key
from state.outcomes import Dead, Deferred, Done, Outcome, Released, Retry, Skipped, Waiting
from state.rows import Link, Wait
from syncd.errors import CallError
from syncd.events import AnyRecord, ChangeEvent

__all__ = [
    "Dead",
    "Deferred",
    "Delivery",
    "Done",
    "Failed",
    "KeyWork",
    "Link",
    "Outcome",
    "Released",
    "Result",
    "Retry",
    "Shadow",
    "Skipped",
    "Wait",
    "Waiting",
    "record_key",
    "split_key",
]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One pending delivery of one stored event to one destination."""

    seq: int
    event: ChangeEvent
    ingested_at: float = 0.0  # when syncd stored the event (its own clock)


@dataclass(frozen=True, slots=True)
class Shadow:
    """The last known state of a Sell record (highest sequence seen)."""

    kind: str
    record_id: int
    sequence: int
    deleted: bool
    record: AnyRecord


@dataclass(frozen=True, slots=True)
class KeyWork:
    """All pending deliveries of one destination key, oldest first, with the look-ups a mapper needs."""

    sink: str
    key: str
    attempts: int
    deliveries: tuple[Delivery, ...]
    shadow: Shadow | None
    link: Link | None
    # Handed to a writer before, since the key's last finishing outcome: a write may have landed whose outcome was
    # lost. A key on its first claim has left nothing behind.
    tried: bool = True
    waiting: Wait | None = None  # what the key was waiting on when it was claimed (a writer's earlier Waiting)
    # The key's late-write check: a write whose outcome was unknown may have landed after the last one, so write
    # the latest state again, even if it is unchanged since the last write.
    reassert: bool = False

    @property
    def seqs(self) -> tuple[int, ...]:
        return tuple(d.seq for d in self.deliveries)

    @property
    def kind(self) -> str:
        return split_key(self.key)[0]

    @property
    def record_id(self) -> int:
        return split_key(self.key)[1]


@dataclass(frozen=True, slots=True)
class Failed:
    """A writer's report that a key's call failed; the dispatcher's retry policy turns it into an Outcome
    (Retry, Dead, or a pause of the whole destination)."""

    key: str
    seqs: tuple[int, ...]
    error: CallError


Result = Outcome | Failed

"""What a dispatcher hands a writer (a key's pending work) and what it gets back (one outcome per key).

Pure data: the store loads `KeyWork` and records `Outcome`s; the dispatcher and the writers pass them along.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from syncd.errors import CallError
from syncd.events import AnyRecord, ChangeEvent


def split_key(key: str) -> tuple[str, int]:
    """`"contact:9001"` -> `("contact", 9001)`."""
    kind, _, record_id = key.partition(":")
    return kind, int(record_id)


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
class Link:
    """What a destination holds of a Sell record: its id there, and the last payload written (and its digest)."""

    remote_id: str | None
    digest: str | None
    sent: dict[str, Any] | None = None


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

    @property
    def seqs(self) -> tuple[int, ...]:
        return tuple(d.seq for d in self.deliveries)

    @property
    def kind(self) -> str:
        return split_key(self.key)[0]

    @property
    def record_id(self) -> int:
        return split_key(self.key)[1]


# ---------------------------------------------------------------------------------------------------------------
# outcomes: exactly one per claimed key (several only when a key carries separate facts)


@dataclass(frozen=True, slots=True)
class Done:
    """Delivered. `remote_id`, `digest` and `sent` update the link; `unlink` forgets it (after a delete)."""

    key: str
    seqs: tuple[int, ...]
    remote_id: str | None = None
    digest: str | None = None
    sent: dict[str, Any] | None = None
    unlink: bool = False
    detail: str = ""
    wrote: bool = True  # a destination record was created or updated (False: only deleted, or nothing to do)


@dataclass(frozen=True, slots=True)
class Skipped:
    """Nothing to send, for a stated reason (no e-mail, unchanged, guarded delete, ...)."""

    key: str
    seqs: tuple[int, ...]
    reason: str
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient failure: try the key again at `at` (epoch seconds); counts as an attempt."""

    key: str
    at: float
    error: str
    http_status: int | None = None


@dataclass(frozen=True, slots=True)
class Deferred:
    """Not yet: try again at `at` without counting an attempt (a delete waiting for other streams)."""

    key: str
    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class Dead:
    """A permanent failure for this record: dead-letter the deliveries with the reason and the request."""

    key: str
    seqs: tuple[int, ...]
    reason: str
    http_status: int | None = None
    request: str | None = None
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class Released:
    """Claimed but not attempted (the destination paused first): back in the queue, unchanged."""

    key: str


Outcome = Done | Skipped | Retry | Deferred | Dead | Released


@dataclass(frozen=True, slots=True)
class Failed:
    """A writer's report that a key's call failed; the dispatcher's retry policy turns it into an Outcome
    (Retry, Dead, or a pause of the whole destination)."""

    key: str
    seqs: tuple[int, ...]
    error: CallError


Result = Outcome | Failed

"""The rows the store takes and hands back, in its own vocabulary.

Bodies (of events and records) are opaque bytes: the caller encodes and decodes them; the store reads only the
columns named here. Keys name records as `kind:record_id` (state.keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class EventRow:
    """One change read from a source stream, with what the shadow keeps of its record."""

    kind: str
    record_id: int
    action: str
    sequence: int  # the record's version: a change older than the shadow's is stored as stale, never delivered
    event_id: str
    occurred_at: str  # ISO 8601; `replay(since=)` compares it as text
    body: bytes  # the whole change
    record: bytes  # the record's state after the change (the shadow's body)
    email: str  # normalised, "" when none: live peers are found by it
    deleted: bool  # the change deletes the record
    bare: bool  # a delete carrying only the id: the shadow keeps its last body, e-mail and reference
    ref: str = ""  # the key of the record this one belongs to (a line item's deal), "" when none: indexed
    # When this version of the record came about (epoch seconds: a stream change's event time, a snapshot's
    # updated_at); None when unknown. A stream change older than a snapshot the shadow holds is stale.
    version_at: float | None = None
    snapshot: bool = False  # the record as read from the Core API (a backfill), not a change read from a stream


@dataclass(frozen=True, slots=True)
class Route:
    """The change at `pos` in its page goes to `sink`, under `key` (the record that destination writes)."""

    pos: int
    sink: str
    key: str


@dataclass(frozen=True, slots=True)
class Requeue:
    """A record to be written to one destination again from its stored state although no change of its own
    arrived (one of a record it shows did): kept as a `touched` event of its current version, delivered under
    `key`. The body is the change as the caller encodes its events."""

    key: str
    stream: str
    kind: str
    record_id: int
    sequence: int  # the record's version: one touched event per version (touching it again re-pends that one)
    event_id: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A stream item that could not be read, kept with its raw body."""

    reason: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class RecordRow:
    """The shadow of one record: the highest sequence seen, whether it is deleted, and its last body."""

    kind: str
    record_id: int
    sequence: int
    deleted: bool
    body: bytes
    origin: str = "stream"  # what wrote it: a change read from a stream, or a "snapshot" read by a backfill
    version_at: float | None = None  # when that version came about (epoch seconds), None when unknown


@dataclass(frozen=True, slots=True)
class Link:
    """What a destination holds of a record: its id there, and the last payload written (and its digest)."""

    remote_id: str | None
    digest: str | None
    sent: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Wait:
    """A key waiting for another: what it waits on, why, since when, and how often it was found still waiting."""

    on: str
    reason: str
    since: float
    checks: int


@dataclass(frozen=True, slots=True)
class WaitingKey:
    """A waiting key of one destination (for status)."""

    sink: str
    key: str
    wait: Wait
    due_at: float | None  # when it is looked at again (None: no longer queued)


@dataclass(frozen=True, slots=True)
class DriftRow:
    """Mapping drift: what the configuration names (`subject`) that no longer exists, found by `scope`."""

    scope: str
    subject: str
    problem: str
    since: float


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """One pending delivery: the stored change's seq and body, and when the store took it (its own clock)."""

    seq: int
    body: bytes
    ingested_at: float


@dataclass(frozen=True, slots=True)
class StoredWork:
    """A claimed key's pending deliveries (oldest first), with the shadow and the link of the record it names."""

    sink: str
    key: str
    attempts: int
    deliveries: tuple[PendingEvent, ...]
    record: RecordRow | None
    link: Link | None
    # Claimed before, since the key's last finishing outcome: a write may have landed whose outcome was lost.
    tried: bool
    waiting: Wait | None = None  # what the key was waiting on when it was claimed
    # This claim is the key's late-write check: every write whose outcome was unknown can have landed by now, so
    # the key's latest state is written again (even if unchanged since the last write) before it is settled.
    reassert: bool = False

    @property
    def seqs(self) -> tuple[int, ...]:
        return tuple(p.seq for p in self.deliveries)


@dataclass(frozen=True, slots=True)
class LinkedRecord:
    """A live record with an e-mail, and its remote id in each destination that links it."""

    record: RecordRow
    email: str
    remote_ids: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class NotedOutcome:
    """A finishing outcome of a key in a destination that feeds back to Sell, as the feedback sees it: "delivered",
    "skipped", "dead" or "deleted", with its reason, for the newest delivery (`seq`) it settled."""

    key: str
    outcome: str
    reason: str
    seq: int


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """The latest noted outcome of a key in one destination, and when it was noted."""

    sink: str
    outcome: str
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class FeedbackMark:
    """What syncd wrote on a Sell record: the tags it set there and still owns, and its recent writes (each a JSON
    object of the tags and custom fields it wrote, and when), oldest first."""

    owned: tuple[str, ...]
    writes: tuple[dict[str, Any], ...]

"""The one interface every destination writer implements, and what writers may look up in the store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from syncd.errors import InternalError
from syncd.events import Contact, Lead, Source, source_kind
from syncd.logs import get_logger
from syncd.work import Failed, KeyWork, Link, Result, Shadow


class Lookups(Protocol):
    """Questions a writer may ask the store (syncd.ledger.Ledger answers them from the store), and the mapping
    drift it may report there."""

    async def live_peers(
        self, sink: str, kind: str, record_id: int, *, email: str, remote_id: str | None
    ) -> list[str]: ...

    async def streams_caught_up_since(self, streams: Iterable[str], since: float) -> bool: ...

    async def shadow(self, kind: str, record_id: int) -> Shadow | None:
        """The last known state of a Sell record (None when never seen)."""
        ...

    async def link(self, sink: str, key: str) -> Link | None:
        """What `sink` holds of the record `key` names (None: not written there)."""
        ...

    async def belonging_to(self, kind: str, keys: Sequence[str]) -> list[Shadow]:
        """The records of `kind` that belong to one of `keys` (a deal's orders and line items), deleted included."""
        ...

    async def report_drift(self, scope: str, subject: str, problem: str | None) -> None:
        """Mapping drift `scope` (the writer's destination) found about `subject`; None: fine again."""
        ...

    async def requeue(self, sink: str, keys: Sequence[str], *, cause: str) -> int:
        """Queue `keys` to be written to `sink` again from their stored state, though no change of theirs arrived
        (a record they show changed): durably, and also when the key is in flight. How many were queued."""
        ...


async def organisation_name(lookups: Lookups, record: Lead | Contact) -> str | None:
    """The name of the Sell organisation a contact belongs to, from its shadow: "" when it belongs to none (a lead
    names its organisation itself), None when syncd knows no live organisation by that id (not seen yet, or
    deleted)."""
    if not isinstance(record, Contact) or record.organization_id is None:
        return ""
    shadow = await lookups.shadow("contact", record.organization_id)
    if shadow is None or shadow.deleted or not isinstance(shadow.record, Contact):
        return None
    return shadow.record.name


async def source_name(lookups: Lookups, resource_type: str, source_id: int | None) -> str | None:
    """The name of a Sell lead or deal source (`resource_type` "lead" or "deal"): "" when the record names none,
    None when syncd has not seen that source (a deleted one keeps its last name). A source kept without its
    resource type (by an older syncd, or from an item that did not say) counts unless it says it is of the other
    type."""
    if source_id is None:
        return ""
    for kind in (source_kind(resource_type), "source"):
        shadow = await lookups.shadow(kind, source_id)
        if shadow is None or not isinstance(shadow.record, Source):
            continue
        if kind == "source" and shadow.record.resource_type not in ("", resource_type):
            continue
        return shadow.record.name
    return None


def crashed(sink: str, key: str, seqs: tuple[int, ...], exc: Exception) -> Failed:
    """A writer's unexpected error on one key, as that key's outcome alone (logged with its traceback): never its
    batch's, never the destination's."""
    get_logger(sink=sink).error("writer_key_crashed", key=key, error=exc, exc_info=exc)
    error = InternalError(f"syncd failed on this record: {type(exc).__name__}: {exc}"[:300], uncertain=True)
    return Failed(key, seqs, error)


@dataclass(frozen=True, slots=True)
class DestinationField:
    """One field as the destination describes it (for `syncd fields` and mapping checks)."""

    key: str
    label: str
    type: str
    editable: bool
    options: dict[str, str] | None = None


class Writer(Protocol):
    """Delivers claimed keys to one destination and classifies every outcome."""

    name: str
    batch_size: int  # keys handed to one `deliver` call (1 unless the API has a batch endpoint)

    async def deliver(self, works: Sequence[KeyWork]) -> list[Result]:
        """One Result per key in `works` (a `Failed` carries the classified error for the retry policy)."""
        ...

    async def probe(self) -> None:
        """A cheap authenticated call; raises DestinationError when the credentials are refused and
        TransientError when the destination cannot be reached."""
        ...

    async def fields(self) -> list[DestinationField]:
        """The destination's contact fields."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Prepares(Protocol):
    """A one-key writer (batch_size = 1) that asks the destination once for a set of keys claimed together what
    each of their deliveries would ask alone (the dispatcher calls it before the set's keys go, one a batch)."""

    async def prepare(self, works: Sequence[KeyWork]) -> None:
        """Look-ups shared by `works`, kept for their deliveries a short while; a failure only leaves each key to
        ask alone (raises CallError)."""
        ...


class NoLookups:
    """Lookups for commands that talk to a destination without delivering anything (`syncd check`, `fields`)."""

    async def live_peers(self, sink: str, kind: str, record_id: int, *, email: str, remote_id: str | None) -> list[str]:
        return []

    async def streams_caught_up_since(self, streams: Iterable[str], since: float) -> bool:
        return False

    async def shadow(self, kind: str, record_id: int) -> Shadow | None:
        return None

    async def link(self, sink: str, key: str) -> Link | None:
        return None

    async def belonging_to(self, kind: str, keys: Sequence[str]) -> list[Shadow]:
        return []

    async def report_drift(self, scope: str, subject: str, problem: str | None) -> None:
        return None

    async def requeue(self, sink: str, keys: Sequence[str], *, cause: str) -> int:
        return 0

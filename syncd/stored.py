"""Between syncd's types and the store's rows (pure): a page of ChangeEvents into event rows and their routes,
stored work into KeyWork, shadow rows into Shadows, a record to write again into a requeue, and stored bodies into
routing keys for a replay.

The store never decodes a body and never routes; these functions are where syncd does both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from state.rows import EventRow, RecordRow, Requeue, Route, StoredWork
from syncd.events import (
    SNAPSHOT_CAUSE,
    STREAM_KINDS,
    ChangeEvent,
    CustomField,
    Stage,
    decode_event,
    decode_record,
    email_of,
    encode,
    encode_with_record,
)
from syncd.routing import REFERRING_KINDS, reference, route
from syncd.work import Delivery, KeyWork, Shadow


@dataclass(frozen=True, slots=True)
class PageRows:
    """What the store takes for one page: a row per event, in page order, and a route per (event, destination)."""

    events: tuple[EventRow, ...]
    routes: tuple[Route, ...]


def event_row(event: ChangeEvent) -> EventRow:
    """The row the store keeps for `event`: its identity, both bodies, and what the shadow indexes (the e-mail, and
    the key of the record it belongs to)."""
    record = event.record
    deleted = event.action == "deleted"
    body, record_body = encode_with_record(event)
    return EventRow(
        kind=event.kind,
        record_id=event.record_id,
        action=event.action,
        sequence=event.sequence,
        event_id=event.event_id,
        occurred_at=event.occurred_at.isoformat(),
        body=body,
        record=record_body,
        email=email_of(record),
        deleted=deleted,
        bare=deleted and record == type(record)(id=record.id),
        ref=reference(record),
        version_at=event.occurred_at.timestamp(),
        snapshot=event.action == "snapshot" or event.cause == SNAPSHOT_CAUSE,
    )


def page_rows(
    events: Sequence[ChangeEvent], sinks: Iterable[str], stored_refs: Mapping[tuple[str, int], str] | None = None
) -> PageRows:
    """The rows of one page, and for each event a route to every destination in `sinks` that takes it;
    `stored_refs` are the references the shadow holds for records whose changes do not carry them (bare deletes,
    see `needs_stored_ref`)."""
    names = tuple(sinks)
    known = stored_refs or {}
    routes = []
    for pos, event in enumerate(events):
        stored = known.get((event.kind, event.record_id), "")
        for sink in names:
            key = route(sink, event, stored)
            if key is not None:
                routes.append(Route(pos, sink, key))
    return PageRows(tuple(event_row(e) for e in events), tuple(routes))


_STREAM_OF = {kind: stream for stream, kind in STREAM_KINDS.items()}


def requeue_row(key: str, shadow: Shadow, *, cause: str, at: datetime) -> Requeue:
    """What the store keeps to write `shadow`'s record again under `key`: an `updated` change of its current
    version carrying its stored state (delivered like any change; `cause` says why it was queued)."""
    event = ChangeEvent(
        stream=_STREAM_OF.get(shadow.kind, shadow.kind),
        kind=shadow.kind,
        record_id=shadow.record_id,
        action="updated",
        sequence=shadow.sequence,
        event_id=f"requeue-{shadow.kind}-{shadow.record_id}-{shadow.sequence}",
        occurred_at=at,
        record=shadow.record,
        cause=cause,
    )
    return Requeue(key, event.stream, event.kind, event.record_id, event.sequence, event.event_id, encode(event))


def needs_stored_ref(event: ChangeEvent) -> bool:
    """Whether routing `event` may need the reference its record's shadow holds: a change whose record carries
    none (a delete with only the id)."""
    return event.kind in REFERRING_KINDS and not reference(event.record)


def record_reference(row: RecordRow) -> str:
    """The reference of a stored record (for records stored before references were kept)."""
    return reference(decode_record(row.body))


def shadow_of(row: RecordRow) -> Shadow:
    """A shadow row with its record decoded."""
    return Shadow(row.kind, row.record_id, row.sequence, row.deleted, decode_record(row.body))


def key_work(stored: StoredWork) -> KeyWork:
    """A claimed key's stored work with its events and shadow decoded, as a writer takes it."""
    return KeyWork(
        sink=stored.sink,
        key=stored.key,
        attempts=stored.attempts,
        deliveries=tuple(Delivery(p.seq, decode_event(p.body), p.ingested_at) for p in stored.deliveries),
        shadow=shadow_of(stored.record) if stored.record is not None else None,
        link=stored.link,
        tried=stored.tried,
        waiting=stored.waiting,
        reassert=stored.reassert,
    )


def custom_field_names(rows: Sequence[RecordRow]) -> frozenset[str] | None:
    """Names of the Sell custom fields the rows of `custom_field` records define now (None when there are no
    rows: no definition has been read yet)."""
    if not rows:
        return None
    names = set()
    for row in rows:
        record = decode_record(row.body)
        if not row.deleted and isinstance(record, CustomField) and record.name:
            names.add(record.name)
    return frozenset(names)


def live_stages(rows: Sequence[RecordRow]) -> dict[int, Stage] | None:
    """The live stages the `stage` rows hold, by id (None when there are no rows: no stage has been read yet)."""
    if not rows:
        return None
    stages = {}
    for row in rows:
        record = decode_record(row.body)
        if not row.deleted and isinstance(record, Stage):
            stages[record.id] = record
    return stages


def replay_key(sink: str, body: bytes) -> str | None:
    """The key under which `sink` takes a stored event again (None when it takes none)."""
    return route(sink, decode_event(body))

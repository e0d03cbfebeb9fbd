"""Realistic Zendesk Sell change histories, as Firehose items, for the sandbox, the tests, the demo and the benchmarks.

`generate_history(n, seed=...)` tells the stories an account lives through, in time order and deterministic for a
seed: custom field definitions first (every value type, for leads, contacts and deals) and later renamed; a pipeline
of stages and some sources; leads created, updated, re-addressed, deleted and converted into contacts (the lead then
deleted by the "system"); organisations and the people who work there; deals moving through stages to won or lost,
won deals followed by orders with line items; notes on everything. About 70 % of the events are about people.
`poison=N` adds early leads whose e-mail every destination refuses (a local part over 64 characters).

Items follow the Firehose shapes of the contract: full snapshots in `data` (on `deleted`, sometimes only the id,
sometimes the last snapshot: both readings), `meta.previous` with exactly the changed attributes' old values.
Snapshots share unchanged nested objects between items: treat the returned dicts as read-only.
`item(...)` builds one item by hand for tests.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from syncd.sandbox.sell.stories import Stories

Item = dict[str, Any]


def wire_time(moment: datetime) -> str:
    """Sell's event time format: ISO-8601 UTC with seconds ("2024-03-01T10:15:02Z")."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def item(
    kind: str,
    record: dict[str, Any],
    *,
    action: str = "created",
    sequence: int = 1,
    previous: dict[str, Any] | None = None,
    event_time: datetime | str | None = None,
    cause: str = "interaction",
    event_id: str | None = None,
) -> Item:
    """One Firehose item for a record of `kind` ("lead", ...), with a stable event id when none is given."""
    when = wire_time(event_time) if isinstance(event_time, datetime) else event_time or "2024-03-01T10:15:02Z"
    if event_id is None:
        digest = hashlib.sha256(f"{kind}:{record.get('id')}:{sequence}:{action}:{when}".encode()).digest()
        event_id = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    meta: dict[str, Any] = {
        "type": kind,
        "event_type": action,
        "event_id": event_id,
        "event_time": when,
        "sequence": sequence,
        "event_cause": cause,
    }
    if previous is not None:
        meta["previous"] = previous
    return {"data": record, "meta": meta}


def tag(name: str, *, id: int = 1, resource_type: str = "lead") -> dict[str, Any]:
    """A tag as embedded in a Firehose record."""
    return {"data": {"id": id, "name": name, "resource_type": resource_type}, "meta": {"type": "tag"}}


def custom(name: str, type: str, value: Any, *, id: int = 1, resource_type: str = "lead") -> dict[str, Any]:
    """A custom field value as embedded in a Firehose record's `custom_field_values`."""
    field = {"id": id, "name": name, "type": type, "resource_type": resource_type}
    return {"value": value, "custom_field": {"data": field, "meta": {"type": "custom_field"}}}


def generate_history(
    events: int,
    *,
    seed: int = 0,
    start: datetime | None = None,
    poison: int = 0,
    end: datetime | None = None,
) -> list[tuple[str, Item]]:
    """Exactly `events` Firehose items as (stream, item), in time order, deterministic for `seed` (and the times).

    The first event is at `start`; or, without it, the last is at `end` (default: now), so a sandbox with 72 hours of
    retention holds all of it (histories span at most about 48 hours).
    """
    if events < 0 or poison < 0:
        raise ValueError("events and poison must not be negative")
    rng = random.Random(seed)
    offsets = _offsets(random.Random(f"{seed}:clock"), events)
    if start is None:
        last = (end or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        start = last - timedelta(seconds=offsets[-1] if offsets else 0)
    times = [wire_time(start + timedelta(seconds=offset)) for offset in offsets]
    stories = Stories(rng, times, limit=events)
    with collector_paused():
        stories.setup()
        stories.poison(poison)
        while not stories.full:
            stories.step()
    return stories.out[:events]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building hundreds of thousands of acyclic dicts (twice as fast)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _offsets(rng: random.Random, events: int) -> list[int]:
    """Seconds from the first event, never falling, spanning at most about 48 hours."""
    mean = min(30.0, 48 * 3600 / max(events, 1))
    offsets: list[int] = []
    elapsed = 0.0
    for _ in range(events):
        offsets.append(int(elapsed))
        elapsed += rng.expovariate(1 / mean)
    return offsets


def person_share(history: list[tuple[str, Item]]) -> float:
    """The fraction of items about leads and contacts."""
    people = sum(1 for stream, _ in history if stream in ("leads", "contacts"))
    return people / len(history) if history else 0.0

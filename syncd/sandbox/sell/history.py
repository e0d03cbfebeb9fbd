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
`generate_account(records, events=...)` gives an account with a past older than the Firehose retention (only the Core
API knows it) followed by live changes. `item(...)` builds one item by hand for tests.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, overload

from syncd.sandbox.sell import catalogue
from syncd.sandbox.sell.stories import Stories
from syncd.sandbox.sell.world import FIRST_PRODUCT, product

Item = dict[str, Any]
RETENTION = 72 * 3600.0  # the Firehose's retention, seconds
_PAST_SPAN = 365 * 86400  # about how long an account's past lasts (at most an event a minute, at least one an hour)


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
    products: bool = False,
) -> list[tuple[str, Item]]:
    """Exactly `events` Firehose items as (stream, item), in time order, deterministic for `seed` (and the times).

    The first event is at `start`; or, without it, the last is at `end` (default: now), so a sandbox with 72 hours of
    retention holds all of it (histories span at most about 48 hours). With `products`, the account has a product
    catalogue: product events (created, repriced, withdrawn) on the `products` stream, and line items made of its
    products (another history than without: the default one never changes).
    """
    if events < 0 or poison < 0:
        raise ValueError("events and poison must not be negative")
    stories = Stories(random.Random(seed), _live_times(events, seed, start, end), limit=events, products=products)
    with collector_paused():
        stories.setup()
        stories.poison(poison)
        while not stories.full:
            stories.step()
    return stories.out[:events]


@dataclass(frozen=True)
class Account:
    """A Sell account with a past: `expired` items (older than the Firehose retention, so only the Core API knows
    what they left) and the `live` items that followed, within the retention window."""

    expired: list[tuple[str, Item]]
    live: list[tuple[str, Item]]


def generate_account(
    records: int,
    *,
    events: int = 0,
    seed: int = 0,
    end: datetime | None = None,
    retention: float = RETENTION,
    products: bool = True,
    poison: int = 0,
) -> Account:
    """An account that already holds at least `records` records (leads, contacts and organisations, deals through
    the pipeline, orders with line items, notes; a few more when the last story made several), made by a past whose
    events all lie before `end` - `retention`; then exactly `events` live Firehose items in the same world (the old
    records updated, converted, deleted, new ones created: their sequences go on), the last at `end` (default now).

    Deterministic for `seed` and `end`. The set-up (custom fields, stages, sources, the product catalogue with
    `products`) belongs to the past too.
    """
    if records < 0 or events < 0 or poison < 0:
        raise ValueError("records, events and poison must not be negative")
    last = (end or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    past_end = last - timedelta(seconds=retention) - timedelta(days=1)
    budget = 8 * records + 200  # far more events than a past of `records` records takes
    expected = int(2.5 * records) + 60  # about 2.4 events a record, and the set-up
    step = max(60, min(3600, _PAST_SPAN // expected))  # a busy account's year, or a quiet one's weeks
    past = _Spread(past_end - timedelta(seconds=step * expected), step, budget, past_end)
    stories = Stories(random.Random(seed), past, limit=budget, products=products, renames=False)
    with collector_paused():
        stories.setup()
        while stories.records() < records:
            if stories.full:
                raise RuntimeError(f"an account of {records} records took more than {budget} events")
            stories.step()
        expired = stories.restart(_live_times(events, seed, None, last), events)
        stories.poison(poison)
        while not stories.full:
            stories.step()
    return Account(expired, stories.out[:events])


def catalogue_products(end: datetime, *, retention: float = RETENTION) -> list[tuple[str, Item]]:
    """The products a default history's line items name, as created long before `end` (their events expired): what
    the Core API of an account with that history holds under /v2/products."""
    rng = random.Random("catalogue")
    when = (end - timedelta(seconds=retention) - timedelta(days=30)).astimezone(UTC).replace(microsecond=0)
    made = [product(rng, FIRST_PRODUCT + n, *entry, wire_time(when)) for n, entry in enumerate(catalogue.PRODUCTS)]
    return [("products", item("product", data, event_time=when)) for data in made]


class _Spread(Sequence[str]):
    """`count` event times `step` seconds apart from `start`, never after `last` (computed when asked)."""

    def __init__(self, start: datetime, step: int, count: int, last: datetime) -> None:
        self._start, self._step, self._count, self._last = start, step, count, last

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        return wire_time(min(self._start + timedelta(seconds=self._step * index), self._last))


def _live_times(events: int, seed: int, start: datetime | None, end: datetime | None) -> list[str]:
    offsets = _offsets(random.Random(f"{seed}:clock"), events)
    if start is None:
        last = (end or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        start = last - timedelta(seconds=offsets[-1] if offsets else 0)
    return [wire_time(start + timedelta(seconds=offset)) for offset in offsets]


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

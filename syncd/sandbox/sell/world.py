"""The world a generated Sell history happens in: live records, per-record sequences, the custom field definitions
as they are now, the product catalogue (when it is told), and the random values records are made of.
`syncd.sandbox.sell.stories` tells the stories. A world can live through several stretches of history (`restart`):
an account's long-expired past, then its live Firehose changes.

Snapshots are copied on change (never mutated after they were emitted), so items may share unchanged nested objects.
"""

from __future__ import annotations

import base64
import itertools
import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from syncd.sandbox.sell import catalogue as cat
from syncd.sandbox.sell.streams import STREAM_OF

Item = dict[str, Any]
Data = dict[str, Any]

_PIPELINE = 1
# What counts as the account's records when a test asks for an account of N records (definitions, stages, sources
# and products are the set-up they live in).
RECORD_KINDS = ("lead", "contact", "deal", "note", "order", "line_item")


class Rec:
    """A live record: its current wire snapshot and its custom values by field id."""

    __slots__ = ("custom", "data")

    def __init__(self, data: Data, custom: dict[int, Any] | None = None) -> None:
        self.data = data
        self.custom = custom or {}


class Pool:
    """Live records by id with O(1) add, remove and random choice (histories run to 200,000 events)."""

    __slots__ = ("_ids", "_index", "_recs")

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._index: dict[int, int] = {}
        self._recs: dict[int, Rec] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, rec: Rec) -> None:
        record_id = int(rec.data["id"])
        self._index[record_id] = len(self._ids)
        self._ids.append(record_id)
        self._recs[record_id] = rec

    def get(self, record_id: int) -> Rec | None:
        return self._recs.get(record_id)

    def pop(self, record_id: int) -> Rec:
        at = self._index.pop(record_id)
        last = self._ids.pop()
        if last != record_id:
            self._ids[at] = last
            self._index[last] = at
        return self._recs.pop(record_id)

    def choice(self, rng: random.Random) -> Rec:
        return self._recs[self._ids[rng.randrange(len(self._ids))]]

    def all(self) -> list[Rec]:
        """Every live record, in the order they were added (moved by removals)."""
        return [self._recs[record_id] for record_id in self._ids]


class World:
    """Emits items at the precomputed times until `limit` exist; `out` holds them in time order."""

    def __init__(self, rng: random.Random, times: Sequence[str], *, limit: int, products: bool = False) -> None:
        self.rng = rng
        self.times = times
        self.limit = limit
        self.with_products = products
        self.out: list[tuple[str, Item]] = []
        self.live: Counter[str] = Counter()  # live records per kind
        self._sequences: dict[tuple[str, int], int] = {}
        self._event_ids: set[str] = set()
        self._ids = {
            kind: itertools.count(base)
            for kind, base in (
                ("lead", 1_000_001), ("contact", 2_000_001), ("deal", 3_000_001), ("note", 4_000_001),
                ("order", 5_000_001), ("line_item", 6_000_001), ("custom_field", 7_001), ("stage", 8_001),
                ("source", 9_001), ("product", FIRST_PRODUCT),
            )
        }  # fmt: skip
        self.fields: dict[str, list[Data]] = {"lead": [], "contact": [], "deal": []}
        self._embeds: dict[int, Data] = {}  # custom field id -> its embedded form (`custom_field` of a value)
        self.stages: dict[str, list[int]] = {}  # category -> stage ids, in pipeline order
        self._stage_order: list[int] = []
        self.sources: list[int] = []
        self._tags: dict[tuple[str, str], Data] = {}
        self.leads = Pool()
        self.people = Pool()  # contacts that are individuals
        self.orgs = Pool()  # contacts that are organisations
        self.deals = Pool()
        self.open_deals = Pool()
        self.notes = Pool()
        self.products = Pool()  # the catalogue, when the world has one (`products`)
        self._email_serial = itertools.count(1)

    # -------------------------------------------------------------------------------------------------------------
    # emitting

    @property
    def full(self) -> bool:
        return len(self.out) >= self.limit

    def records(self) -> int:
        """How many of the account's records are alive (see RECORD_KINDS)."""
        return sum(self.live[kind] for kind in RECORD_KINDS)

    def restart(self, times: Sequence[str], limit: int) -> list[tuple[str, Item]]:
        """Begin another stretch of history (`limit` items at `times`) in the same world; what was emitted so far."""
        done, self.out = self.out, []
        self.times, self.limit = times, limit
        return done

    @property
    def now(self) -> str:
        if not self.times:
            return "2024-03-01T10:00:00Z"
        return self.times[min(len(self.out), len(self.times) - 1)]

    def emit(
        self,
        kind: str,
        data: Data,
        action: str = "created",
        *,
        previous: Data | None = None,
        cause: str = "interaction",
    ) -> None:
        """Append one item for `data` at the next time, with the record's next sequence and a fresh event id."""
        if self.full:
            return
        key = (kind, int(data["id"]))
        sequence = self._sequences.get(key, 0) + 1
        self._sequences[key] = sequence
        meta: Data = {
            "type": kind,
            "event_type": action,
            "event_id": self._event_id(),
            "event_time": self.now,
            "sequence": sequence,
            "event_cause": cause,
        }
        if previous is not None:
            meta["previous"] = previous
        self.out.append((STREAM_OF[kind], {"data": data, "meta": meta}))
        if action != "updated":
            self.live[kind] += 1 if action == "created" else -1

    def _event_id(self) -> str:
        while True:
            text = base64.urlsafe_b64encode(self.rng.randbytes(16)).rstrip(b"=").decode()
            if text not in self._event_ids:
                self._event_ids.add(text)
                return text

    # -------------------------------------------------------------------------------------------------------------
    # definitions

    def setup(self) -> None:
        for resource, types in (
            ("lead", cat.CUSTOM_TYPES),
            ("contact", cat.CUSTOM_TYPES),
            ("deal", cat.DEAL_CUSTOM_TYPES),
        ):
            for name, type_ in types:
                field = {"id": next(self._ids["custom_field"]), "name": name, "type": type_, "resource_type": resource}
                self._define(resource, field)
                self.emit("custom_field", field)
        for position, (name, category, likelihood) in enumerate(cat.STAGES, 1):
            stage_id = next(self._ids["stage"])
            self.stages.setdefault(category, []).append(stage_id)
            self._stage_order.append(stage_id)
            self.emit(
                "stage",
                {
                    "id": stage_id,
                    "name": name,
                    "category": category,
                    "active": True,
                    "position": position,
                    "likelihood": likelihood,
                    "pipeline_id": _PIPELINE,
                    "created_at": self.now,
                },
            )
        for name, resource in cat.SOURCES:
            self._source(name, resource)
        if self.with_products:
            for name, sku, price in cat.PRODUCTS:
                self._product(name, sku, price)

    def _define(self, resource: str, field: Data) -> None:
        fields = self.fields[resource]
        fields[:] = [f for f in fields if f["id"] != field["id"]] + [field]
        fields.sort(key=lambda f: int(f["id"]))
        self._embeds[field["id"]] = {"data": field, "meta": {"type": "custom_field"}}

    def _product(self, name: str, sku: str, price: str) -> None:
        data = product(self.rng, next(self._ids["product"]), name, sku, price, self.now)
        self.emit("product", data)
        self.products.add(Rec(data))

    def _source(self, name: str, resource: str) -> None:
        source_id = next(self._ids["source"])
        self.sources.append(source_id)
        self.emit("source", {"id": source_id, "name": name, "resource_type": resource, "created_at": self.now})

    # -------------------------------------------------------------------------------------------------------------
    # values

    def _custom_value(self, type_: str) -> Any:
        rng = self.rng
        if type_ == "bool":
            return rng.random() < 0.5
        if type_ == "number":
            return f"{rng.randint(0, 2_000_000) / 100:.2f}"
        if type_ == "date":
            return f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/{rng.randint(2015, 2026)}"
        if type_ == "datetime":
            day = f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/{rng.randint(2015, 2026)}"
            return f"{day} {rng.randint(0, 23)}:{rng.choice(('00', '15', '30', '45'))}"
        if type_ in cat.OPTIONS:
            options = [{"id": i, "name": name} for i, name in enumerate(cat.OPTIONS[type_], 1)]
            if type_ == "list":
                return rng.choice(options)
            return rng.sample(options, rng.randint(1, 3))
        if type_ == "address":
            return self._address()
        if type_ == "email":
            return f"billing{next(self._email_serial)}@{rng.choice(cat.DOMAINS)}"
        if type_ == "phone":
            return self._phone()
        if type_ == "url":
            return f"https://{rng.choice(cat.DOMAINS)}/p/{rng.randint(1, 9999)}"
        if type_ == "text":
            return rng.choice(cat.NOTES)
        return f"REF-{rng.randint(1000, 9999)}"

    def _random_custom(self, resource: str) -> dict[int, Any]:
        return {f["id"]: self._custom_value(f["type"]) for f in self.fields[resource] if self.rng.random() < 0.6}

    def _render(self, resource: str, values: dict[int, Any]) -> list[Data]:
        """`custom_field_values` as Sell shows it: every defined field of the resource, null when unset."""
        return [{"value": values.get(f["id"]), "custom_field": self._embeds[f["id"]]} for f in self.fields[resource]]

    def _tag_list(self, resource: str, names: list[str]) -> list[Data]:
        tags = []
        for name in names:
            key = (resource, name)
            if key not in self._tags:
                self._tags[key] = {
                    "data": {"id": len(self._tags) + 1, "name": name, "resource_type": resource},
                    "meta": {"type": "tag"},
                }
            tags.append(self._tags[key])
        return tags

    def _random_tags(self, resource: str) -> list[Data]:
        return self._tag_list(resource, self.rng.sample(cat.TAGS, self.rng.choice((0, 0, 1, 1, 2, 3))))

    def _address(self) -> Data:
        rng = self.rng
        return {
            "line1": f"{rng.choice(cat.STREETS)} {rng.randint(1, 200)}" if rng.random() < 0.8 else "",
            "city": rng.choice(cat.CITIES),
            "postal_code": f"{rng.randint(10, 99)}-{rng.randint(100, 999)}" if rng.random() < 0.7 else "",
            "state": rng.choice(cat.STATES),
            "country": rng.choice(cat.COUNTRIES),
        }

    def _phone(self) -> str:
        return (
            f"+{self.rng.choice((48, 44, 49, 1, 33))} {self.rng.randint(100, 999)} {self.rng.randint(100000, 999999)}"
        )

    def _email(self, first: str, last: str) -> str:
        return f"{cat.slug(first)}.{cat.slug(last)}{next(self._email_serial)}@{self.rng.choice(cat.DOMAINS)}"

    def _maybe_email(self, first: str, last: str) -> str | None:
        return None if self.rng.random() < 0.04 else self._email(first, last)

    def _name(self) -> tuple[str, str]:
        return self.rng.choice(cat.FIRST_NAMES), self.rng.choice(cat.LAST_NAMES)

    def _some_source(self) -> int | None:
        return self.rng.choice(self.sources) if self.sources and self.rng.random() < 0.7 else None

    def _person(
        self, resource: str, first: str | None, last: str | None, email: str | None
    ) -> tuple[Data, dict[int, Any]]:
        rng = self.rng
        values = self._random_custom(resource)
        data: Data = {
            "id": next(self._ids[resource]),
            "creator_id": rng.choice(cat.OWNERS),
            "owner_id": rng.choice(cat.OWNERS),
            "first_name": first,
            "last_name": last,
            "title": rng.choice(cat.TITLES) or None,
            "description": None,
            "industry": rng.choice(cat.INDUSTRIES) or None,
            "website": None,
            "email": email,
            "phone": self._phone() if rng.random() < 0.7 else None,
            "mobile": self._phone() if rng.random() < 0.3 else None,
            "fax": None,
            "twitter": None,
            "facebook": None,
            "linkedin": None,
            "skype": None,
            "address": self._address() if rng.random() < 0.8 else None,
            "tags": self._random_tags(resource),
            "custom_field_values": self._render(resource, values),
            "created_at": self.now,
        }
        return data, values

    # -------------------------------------------------------------------------------------------------------------
    # changes

    def _some(self, pool: Pool, wanted: Callable[[Rec], bool], tries: int = 8) -> Rec | None:
        """A random record of `pool` that is `wanted`, if one turns up within a few draws."""
        for _ in range(tries if pool else 0):
            rec = pool.choice(self.rng)
            if wanted(rec):
                return rec
        return None

    def _delete(self, kind: str, rec: Rec, *, cause: str = "interaction") -> None:
        data = {"id": rec.data["id"]} if self.rng.random() < 0.5 else rec.data
        self.emit(kind, data, "deleted", cause=cause)

    def _change(self, kind: str, rec: Rec, changes: Data, *, cause: str = "interaction") -> None:
        """Emit an update: `changes` hold new values; `previous` gets exactly their old ones."""
        old = rec.data
        resource = kind
        previous: Data = {}
        for attr in list(changes):
            if attr == "custom_field_values":
                before, after = self._render(resource, rec.custom), self._render(resource, changes[attr])
                if before == after:
                    del changes[attr]
                    continue
                previous[attr] = before
                rec.custom = changes[attr]
                changes[attr] = after
            elif changes[attr] != old.get(attr):
                previous[attr] = old.get(attr)
            else:
                del changes[attr]
        if not previous:
            return
        rec.data = {**old, **changes}
        if "custom_field_values" not in changes and resource in self.fields:
            rec.data["custom_field_values"] = self._render(resource, rec.custom)  # definitions may have been renamed
        self.emit(kind, rec.data, "updated", previous=previous, cause=cause)


FIRST_PRODUCT = 1000  # the catalogue's products have ids from here, in catalogue order


def product(rng: random.Random, product_id: int, name: str, sku: str, price: str, now: str) -> Data:
    """A product record, priced alike in every currency (line items copy the price)."""
    return {
        "id": product_id,
        "name": name,
        "description": f"{name} ({sku})",
        "sku": sku,
        "active": True,
        "max_discount": rng.choice((0, 10, 20)),
        "max_markup": rng.choice((0, 25, 50)),
        "cost": f"{float(price) * 0.4:.2f}",
        "cost_currency": "EUR",
        "prices": [{"amount": price, "currency": currency} for currency in cat.CURRENCIES],
        "created_at": now,
    }

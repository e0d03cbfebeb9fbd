"""The Sell sandbox's Core API store: the latest snapshot of every record the Firehose items (and the account's
expired past) described, as the Core API v2 lists and serves them.

Snapshots are kept in Firehose shape (`syncd.sandbox.sell.shapes` turns them into v2 shape when served). Lead
sources and deal sources are separate record kinds with their own ids, as in Sell: a Firehose `source` item is filed
by its `resource_type`. Pipelines have no stream: one is known for every `pipeline_id` a stage names.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

SOURCE_KINDS = {"lead": "lead_source", "deal": "deal_source"}  # a source's resource_type -> its record kind
HISTORY = 16  # versions kept per record before the latest (for reads served as of an earlier moment)
MONEY: dict[str, tuple[str, ...]] = {
    "deal": ("value",),
    "line_item": ("price", "value", "variation"),
    "product": ("cost",),
}  # money attributes by record kind (a product's prices hold more)


@dataclass(slots=True)
class Snapshot:
    kind: str
    record_id: int
    sequence: int
    updated_at: str
    data: dict[str, Any]
    deleted: bool = False


def event_epoch(text: Any, default: float) -> float:
    """An item's event_time as epoch seconds (`default` when it is missing or unreadable)."""
    if not isinstance(text, str):
        return default
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return default


class RecordIndex:
    """Latest snapshot per (kind, id), in the order records first appeared; sorted listings are cached."""

    def __init__(self) -> None:
        self._records: dict[str, dict[int, Snapshot]] = {}
        self._line_items: dict[int, list[int]] = {}  # order id -> line item ids
        self._versions: dict[str, int] = {}
        self._sorted: dict[tuple[str, str], tuple[int, list[Snapshot]]] = {}
        self._tags: dict[tuple[str, str], int] = {}  # (resource type, tag name) -> tag id
        self._names: tuple[int, dict[int, str]] | None = None
        self._history: dict[tuple[str, int], list[Snapshot]] = {}  # the versions before the latest, oldest first

    def kind_of(self, item_type: str, data: dict[str, Any]) -> str:
        """The record kind an item of `meta.type` `item_type` is filed under (sources split by resource_type)."""
        if item_type != "source":
            return item_type
        resource = data.get("resource_type")
        if resource in SOURCE_KINDS:
            return SOURCE_KINDS[resource]
        record_id = data.get("id")
        known = [k for k in SOURCE_KINDS.values() if type(record_id) is int and record_id in self._records.get(k, {})]
        return known[0] if len(known) == 1 else "deal_source"

    def apply(self, item: Any) -> Snapshot | None:
        """Take one Firehose item into account; the snapshot it left (None: malformed or older than what is known)."""
        if not isinstance(item, dict):
            return None
        data, meta = item.get("data"), item.get("meta")
        if not isinstance(data, dict) or not isinstance(meta, dict):
            return None
        item_type, record_id, sequence = meta.get("type"), data.get("id"), meta.get("sequence")
        if not isinstance(item_type, str) or type(record_id) is not int or type(sequence) is not int:
            return None
        kind = self.kind_of(item_type, data)
        records = self._records.setdefault(kind, {})
        known = records.get(record_id)
        if known is not None and sequence < known.sequence:
            return None  # an older event arriving late changes nothing
        deleted = meta.get("event_type") == "deleted"
        when = meta.get("event_time") if isinstance(meta.get("event_time"), str) else ""
        keep = known.data if (deleted and known is not None and set(data) == {"id"}) else data
        snapshot = Snapshot(kind, record_id, sequence, str(when), keep, deleted)
        if known is not None:
            history = self._history.setdefault((kind, record_id), [])
            history.append(known)
            del history[:-HISTORY]
        records[record_id] = snapshot
        self._changed(kind)
        order_id = data.get("order_id")
        if kind == "line_item" and known is None and type(order_id) is int:
            self._line_items.setdefault(order_id, []).append(record_id)
        if kind == "stage" and not deleted:
            self._pipeline(data.get("pipeline_id"), str(data.get("created_at") or when))
        if isinstance(data.get("tags"), list):
            for tag in data["tags"]:
                self._tag(kind, tag)
        return snapshot

    def _tag(self, kind: str, tag: Any) -> None:
        body = tag.get("data") if isinstance(tag, dict) else None
        if isinstance(body, dict) and type(body.get("id")) is int and isinstance(body.get("name"), str):
            self._tags.setdefault((str(body.get("resource_type") or kind), body["name"]), body["id"])

    def tag_id(self, resource: str, name: str) -> int:
        """The id of the tag `name` of `resource` records (a new one when no record carried it yet)."""
        found = self._tags.get((resource, name))
        if found is None:
            found = self._tags[(resource, name)] = max(self._tags.values(), default=0) + 1
        return found

    def field_names(self) -> dict[int, str]:
        """The current name of every custom field by id (records keep the name a field had at their last event)."""
        version = self._versions.get("custom_field", 0)
        if self._names is None or self._names[0] != version:
            names = {int(s.record_id): str(s.data.get("name")) for s in self.live("custom_field")}
            self._names = (version, names)
        return self._names[1]

    def definitions(self, resource_types: Iterable[str]) -> list[dict[str, Any]]:
        """The live custom field definitions for these resource types, by id."""
        wanted = set(resource_types)
        found = [s.data for s in self.live("custom_field") if s.data.get("resource_type") in wanted]
        return sorted(found, key=lambda d: int(d.get("id") or 0))

    def _pipeline(self, pipeline_id: Any, created_at: str) -> None:
        pipelines = self._records.setdefault("pipeline", {})
        if type(pipeline_id) is not int or pipeline_id in pipelines:
            return
        name = "Sales Pipeline" if not pipelines else f"Pipeline {pipeline_id}"
        data = {"id": pipeline_id, "name": name, "disabled": False, "created_at": created_at}
        pipelines[pipeline_id] = Snapshot("pipeline", pipeline_id, 1, created_at, data)
        self._changed("pipeline")

    def _changed(self, kind: str) -> None:
        self._versions[kind] = self._versions.get(kind, 0) + 1

    def latest(self, kind: str, record_id: int) -> Snapshot | None:
        """The last known snapshot, deleted or not."""
        return self._records.get(kind, {}).get(record_id)

    def get(self, kind: str, record_id: int) -> Snapshot | None:
        """A live record."""
        snapshot = self.latest(kind, record_id)
        return None if snapshot is None or snapshot.deleted else snapshot

    def live(self, kind: str) -> Iterable[Snapshot]:
        return (s for s in self._records.get(kind, {}).values() if not s.deleted)

    def counts(self) -> dict[str, int]:
        """Live records per kind."""
        return {kind: sum(1 for _ in self.live(kind)) for kind in sorted(self._records)}

    def listing(
        self, kind: str, *, sort: str = "id", descending: bool = False, ids: list[int] | None = None
    ) -> list[Snapshot]:
        """Live records of `kind` sorted by `sort` (an attribute; ties by id; missing values last, first when
        descending), optionally only `ids`."""
        if ids is not None:
            chosen = [s for s in (self.get(kind, i) for i in dict.fromkeys(ids)) if s is not None]
            chosen.sort(key=sort_key(kind, sort))
        else:
            version = self._versions.get(kind, 0)
            cached = self._sorted.get((kind, sort))
            if cached is None or cached[0] != version:
                ordered = sorted(self.live(kind), key=sort_key(kind, sort))
                cached = (version, ordered)
                self._sorted[(kind, sort)] = cached
            chosen = cached[1]
        return chosen[::-1] if descending else chosen

    def as_of(self, snapshot: Snapshot, cutoff: float) -> Snapshot | None:
        """The version of a record that was current at `cutoff` (epoch seconds): None when it did not exist yet or
        was deleted then (what a read replica lagging behind by now - cutoff serves)."""
        for version in (snapshot, *reversed(self._history.get((snapshot.kind, snapshot.record_id), ()))):
            if event_epoch(version.updated_at, 0.0) <= cutoff:
                return None if version.deleted else version
        return None

    def lagged(
        self,
        kind: str,
        cutoff: float,
        *,
        sort: str = "id",
        descending: bool = False,
        ids: list[int] | None = None,
    ) -> list[Snapshot]:
        """`listing` as it was at `cutoff`: each record's version current then (see `as_of`)."""
        chosen = (self.latest(kind, i) for i in dict.fromkeys(ids)) if ids is not None else self.everything(kind)
        found = [v for s in chosen if s is not None and (v := self.as_of(s, cutoff)) is not None]
        found.sort(key=sort_key(kind, sort))
        return found[::-1] if descending else found

    def everything(self, kind: str) -> list[Snapshot]:
        """The latest snapshot of every record of `kind`, deleted ones included."""
        return list(self._records.get(kind, {}).values())

    def line_item_ids(self, order_id: int) -> list[int]:
        """The ids of every line item ever added to the order."""
        return list(self._line_items.get(order_id, ()))


def sort_key(kind: str, field: str) -> Callable[[Snapshot], Any]:
    """How a listing sorted by `field` orders snapshots: by value (text as a database collation would, money as
    decimals), records without a value after the others, ties by id."""
    if field == "id":
        return lambda s: s.record_id
    if field == "updated_at":
        return lambda s: (s.updated_at or str(s.data.get("created_at") or ""), s.record_id)
    money = field in MONEY.get(kind, ())

    def key(snapshot: Snapshot) -> Any:
        value = snapshot.data.get(field)
        if money and isinstance(value, str | int | float) and not isinstance(value, bool):
            try:
                return (0, 0, Decimal(str(value)), snapshot.record_id)
            except InvalidOperation:
                pass
        if isinstance(value, bool | int | float):
            return (0, 0, value, snapshot.record_id)
        if isinstance(value, str):
            return (0, 1, collation_key(value), snapshot.record_id)
        return (1, 0, 0, snapshot.record_id)

    return key


_LETTERS = str.maketrans({"ł": "l", "ø": "o", "æ": "ae", "ß": "ss", "đ": "d", "þ": "th", "ð": "d", "ı": "i"})


def collation_key(text: str) -> tuple[str, str]:
    """Text ordered as a linguistic collation orders it: letters without their accents and case first
    ("łoś" next to "los", before "Nowak"), then the exact spelling."""
    folded = text.casefold()
    base = unicodedata.normalize("NFKD", folded.translate(_LETTERS))
    return "".join(ch for ch in base if not unicodedata.combining(ch)), folded

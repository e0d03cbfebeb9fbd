"""The Sell sandbox's Core API v2 view: the latest snapshot of every record the Firehose items described.

Snapshots are kept in Firehose shape and turned into v2 shape when served: `custom_fields` as name -> value, `tags`
as a list of names, money as numbers, `updated_at` present, each item with `meta: {type, version}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

# v2 resource (path) -> record kind
V2_RESOURCES: dict[str, str] = {
    "leads": "lead",
    "contacts": "contact",
    "deals": "deal",
    "notes": "note",
    "orders": "order",
    "stages": "stage",
    "sources": "source",
    "line_items": "line_item",
    "custom_fields": "custom_field",
}
_MONEY: dict[str, tuple[str, ...]] = {
    "deal": ("value",),
    "order": ("discount",),
    "line_item": ("quantity", "price", "value", "variation"),
}
SORT_KEYS = ("id", "updated_at")

_encoder = msgspec.json.Encoder(decimal_format="number")


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

    def apply(self, item: Any) -> None:
        """Take one Firehose item into account (malformed items, kept for quarantine tests, are ignored here)."""
        if not isinstance(item, dict):
            return
        data, meta = item.get("data"), item.get("meta")
        if not isinstance(data, dict) or not isinstance(meta, dict):
            return
        kind, record_id, sequence = meta.get("type"), data.get("id"), meta.get("sequence")
        if not isinstance(kind, str) or type(record_id) is not int or type(sequence) is not int:
            return
        records = self._records.setdefault(kind, {})
        known = records.get(record_id)
        if known is not None and sequence < known.sequence:
            return  # an older event arriving late changes nothing
        deleted = meta.get("event_type") == "deleted"
        when = meta.get("event_time") if isinstance(meta.get("event_time"), str) else ""
        keep = known.data if (deleted and known is not None and set(data) == {"id"}) else data
        records[record_id] = Snapshot(kind, record_id, sequence, str(when), keep, deleted)
        self._versions[kind] = self._versions.get(kind, 0) + 1
        order_id = data.get("order_id")
        if kind == "line_item" and known is None and type(order_id) is int:
            self._line_items.setdefault(order_id, []).append(record_id)

    def latest(self, kind: str, record_id: int) -> Snapshot | None:
        """The last known snapshot, deleted or not."""
        return self._records.get(kind, {}).get(record_id)

    def get(self, kind: str, record_id: int) -> Snapshot | None:
        """A live record."""
        snapshot = self.latest(kind, record_id)
        return None if snapshot is None or snapshot.deleted else snapshot

    def listing(
        self, kind: str, *, sort: str = "id", descending: bool = False, ids: list[int] | None = None
    ) -> list[Snapshot]:
        """Live records of `kind`, sorted by `sort` ("id" or "updated_at", ties by id), optionally only `ids`."""
        if ids is not None:
            chosen = [s for s in (self.get(kind, i) for i in dict.fromkeys(ids)) if s is not None]
            chosen.sort(key=_sort_key(sort))
        else:
            version = self._versions.get(kind, 0)
            cached = self._sorted.get((kind, sort))
            if cached is None or cached[0] != version:
                live = [s for s in self._records.get(kind, {}).values() if not s.deleted]
                live.sort(key=_sort_key(sort))
                cached = (version, live)
                self._sorted[(kind, sort)] = cached
            chosen = cached[1]
        return chosen[::-1] if descending else chosen

    def line_items(self, order_id: int) -> list[Snapshot]:
        found = (self.get("line_item", i) for i in self._line_items.get(order_id, ()))
        return [s for s in found if s is not None]


def _sort_key(sort: str) -> Any:
    if sort == "updated_at":
        return lambda s: (s.updated_at, s.record_id)
    return lambda s: s.record_id


# ---------------------------------------------------------------------------------------------------------------
# v2 shapes


def v2_item(snapshot: Snapshot) -> dict[str, Any]:
    """One v2 item: `{"data": {...}, "meta": {"type", "version"}}`."""
    return {"data": v2_data(snapshot), "meta": {"type": snapshot.kind, "version": snapshot.sequence}}


def v2_data(snapshot: Snapshot) -> dict[str, Any]:
    data = dict(snapshot.data)
    if "tags" in data:
        data["tags"] = [_tag_name(t) for t in data["tags"] or ()]
    if "custom_field_values" in data:
        data["custom_fields"] = _custom_fields(data.pop("custom_field_values"))
    for attr in _MONEY.get(snapshot.kind, ()):
        data[attr] = _number(data.get(attr))
    data["updated_at"] = snapshot.updated_at or data.get("created_at")
    return data


def encode(value: Any) -> bytes:
    """JSON with Decimals as numbers (v2 money)."""
    return _encoder.encode(value)


def _tag_name(tag: Any) -> Any:
    if isinstance(tag, dict) and isinstance(tag.get("data"), dict):
        return tag["data"].get("name")
    return tag


def _custom_fields(values: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for entry in values or ():
        try:
            name = entry["custom_field"]["data"]["name"]
        except (KeyError, TypeError):
            continue
        fields[str(name)] = _custom_value(entry.get("value"))
    return fields


def _custom_value(value: Any) -> Any:
    if isinstance(value, dict) and "name" in value and "id" in value:
        return value["name"]
    if isinstance(value, list):
        return [_custom_value(v) for v in value]
    return value


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    return value

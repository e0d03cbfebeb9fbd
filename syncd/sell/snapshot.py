"""Sell's Core API v2: a collection page's envelope, and one v2 item as a snapshot `ChangeEvent`. Pure.

v2 records differ from the Firehose's: `custom_fields` is a name -> value object (values untyped: the field
definitions say how to read them), `tags` a list of names, money a string or a number, ids numbers or strings, and
each record has `updated_at`; an item is `{"data": {...}, "meta": {"type", "version"}}`. A snapshot is read into
the same Firehose wire shapes and normalised by the same code as a stream change (syncd.sell.normalise), so routing,
mapping and delivery cannot tell them apart; only its action ("snapshot"), its sequence (the v2 version) and its
time (`updated_at`) say where it came from. What cannot be read raises NormaliseError naming the attribute.
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Union, get_args, get_origin

import msgspec

from syncd.errors import MalformedPage
from syncd.events import SNAPSHOT_CAUSE, AnyRecord, ChangeEvent, source_kind
from syncd.sell.normalise import NormaliseError, make_record, record_fields
from syncd.sell.values import BadValue, custom_value, ref_of, utc
from syncd.sell.wire import WIRE_RECORDS, Ref, WireRecord, explain

# ---------------------------------------------------------------------------------------------------------------
# the collection page


class _Links(msgspec.Struct, frozen=True):
    self: str | None = None
    next_page: str | None = None


class _CollectionMeta(msgspec.Struct, frozen=True):
    type: str | None = None
    count: int | None = None
    links: _Links = _Links()


class _Collection(msgspec.Struct, frozen=True):
    items: list[msgspec.Raw]
    meta: _CollectionMeta = _CollectionMeta()


@dataclass(frozen=True, slots=True)
class Collection:
    """One decoded v2 list page: its raw items, and whether Sell says another page follows (`links.next_page`)."""

    items: list[msgspec.Raw]
    more: bool


_collection_decoder = msgspec.json.Decoder(_Collection)


def decode_collection(body: bytes) -> Collection:
    """A v2 list response body; anything else raises MalformedPage (retried, never skipped). JSON that only an
    item's unpaired surrogate (`"\\ud800"`) makes invalid is read item by item: that item alone cannot be read
    (it is quarantined with its body) and the others go on."""
    try:
        page = _collection_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise MalformedPage(f"not a Core API list: {explain(exc)}") from None
    except msgspec.DecodeError as exc:
        tolerant = _tolerant(body)
        if tolerant is None:
            raise MalformedPage(f"not a Core API list: invalid JSON ({exc})") from None
        return tolerant
    return Collection(page.items, bool(page.meta.links.next_page))


def _tolerant(body: bytes) -> Collection | None:
    """The page as Python's JSON reader takes it (unpaired surrogates included), each item re-encoded as it came."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        return None
    meta = data.get("meta")
    links = meta.get("links") if isinstance(meta, dict) else None
    items = [msgspec.Raw(json.dumps(item, ensure_ascii=True).encode()) for item in data["items"]]
    return Collection(items, isinstance(links, dict) and bool(links.get("next_page")))


class _ItemMeta(msgspec.Struct, frozen=True):
    type: str | None = None
    version: int | str | None = None


class _Item(msgspec.Struct, frozen=True):
    data: msgspec.Raw
    meta: _ItemMeta = _ItemMeta()


class _Id(msgspec.Struct, frozen=True):
    id: Ref = None


_item_decoder = msgspec.json.Decoder(_Item)
_id_decoder = msgspec.json.Decoder(_Id)


def item_id(raw: bytes) -> int | None:
    """The id of a v2 item's record (None when it has none that can be read): what orders a scan (also of an
    item that cannot be read otherwise, an unpaired surrogate in a name, say)."""
    try:
        data = _item_decoder.decode(raw).data
        return ref_of(_id_decoder.decode(data).id, "id")
    except (msgspec.ValidationError, BadValue):
        return None
    except msgspec.DecodeError:
        try:
            found = json.loads(raw).get("data", {}).get("id")
            return ref_of(found if isinstance(found, int | str) and not isinstance(found, bool) else None, "id")
        except (ValueError, AttributeError, BadValue):
            return None


# ---------------------------------------------------------------------------------------------------------------
# the record


def _is_int_field(annotation: Any) -> bool:
    args = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    return int in args and all(a in (int, type(None)) for a in args)


class _Shape:
    """How one record kind is read from v2: its Firehose shape with ids that may be strings, and the v2 extras."""

    def __init__(self, kind: str, wire: type[WireRecord]) -> None:
        hints = {f.name: f.type for f in msgspec.structs.fields(wire)}
        self.ids = tuple(name for name, hint in hints.items() if (name == "id" or name.endswith("_id")))
        self.int_ids = tuple(name for name in self.ids if _is_int_field(hints[name]))
        fields: list[tuple[str, Any, Any]] = [(name, Ref, None) for name in self.int_ids]
        fields += [("custom_fields", dict[str, msgspec.Raw] | None, None), ("updated_at", datetime | None, None)]
        struct = msgspec.defstruct(f"V2{wire.__name__}", fields, bases=(wire,), frozen=True, kw_only=True)
        self.kind = kind
        self.decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(struct)


_SHAPES = {kind: _Shape(kind, wire) for kind, wire in WIRE_RECORDS.items()}
_any = msgspec.json.Decoder()
_CUSTOM = {"lead": "lead", "contact": "contact", "deal": "deal"}  # kinds with custom fields -> their resource


@dataclass(frozen=True, slots=True)
class Context:
    """What a snapshot needs besides its item: the custom field types by resource type and name (how to read the
    untyped v2 values), the attributes the listing implies (a line item's order and deal, a source's resource
    type), and when Sell served the page (a record without `updated_at` is at least that fresh)."""

    custom_types: Mapping[str, Mapping[str, str]]
    implied: Mapping[str, Any]
    observed_at: datetime


def snapshot(stream: str, kind: str, raw: bytes, context: Context) -> ChangeEvent:
    """One v2 item of a record of `kind` (its Firehose `meta.type`: "lead", "source", "line_item", ...), read from
    the listing of `stream`, as a snapshot ChangeEvent; raises NormaliseError."""
    shape = _SHAPES.get(kind)
    if shape is None:
        raise NormaliseError(f"{kind}: not a record kind syncd reads")
    try:
        item = _item_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise NormaliseError(f"{kind} item {explain(exc)}") from None
    except msgspec.DecodeError as exc:
        raise NormaliseError(f"{kind}: not valid JSON ({exc})") from None
    try:
        data = shape.decoder.decode(item.data)
    except msgspec.ValidationError as exc:
        raise NormaliseError(f"{kind}.{explain(exc)}") from None
    try:
        ids = {name: ref_of(getattr(data, name), f"{kind}.{name}") for name in shape.int_ids}
        record_id = ids.get("id")
        if record_id is None:
            raise NormaliseError(f"{kind}.id: missing")
        fields = record_fields(kind, msgspec.structs.replace(data, **ids))
        resource = _CUSTOM.get(kind)
        if resource is not None:
            fields["custom"] = _custom(kind, data.custom_fields, context.custom_types.get(resource, {}))
        version = _version(item.meta.version, kind)
    except BadValue as exc:
        raise NormaliseError(str(exc)) from None
    for attr, value in context.implied.items():
        if attr in fields and not fields[attr]:
            fields[attr] = value
    record: AnyRecord = make_record(kind, fields)
    when = utc(data.updated_at) if data.updated_at is not None else context.observed_at
    return ChangeEvent(
        stream=stream,
        kind=source_kind(fields["resource_type"]) if kind == "source" else kind,
        record_id=record_id,
        action="snapshot",
        sequence=version,
        event_id=f"v2-{kind}-{record_id}-{version}",
        occurred_at=when,
        record=record,
        cause=SNAPSHOT_CAUSE,
    )


_ADDRESS_PARTS = frozenset({"line1", "city", "postal_code", "state", "country"})


def _custom(kind: str, values: dict[str, msgspec.Raw] | None, types_by_name: Mapping[str, str]) -> dict[str, Any]:
    """v2 `custom_fields` read by each field's Sell type (a field not defined, say created since the definitions
    were read, by the shape of its value: an object of address parts is an address)."""
    plain: dict[str, Any] = {}
    for name, raw in (values or {}).items():
        value = _any.decode(raw)
        kind_of = types_by_name.get(name, "")
        if not kind_of and isinstance(value, dict) and value and set(value) <= _ADDRESS_PARTS:
            kind_of = "address"
        plain[name] = custom_value(kind_of, value, f"{kind}.custom_fields[{name}]")
    return plain


def _version(value: int | str | None, kind: str) -> int:
    """`meta.version` as a number (0 when Sell sends none)."""
    if value is None:
        return 0
    if isinstance(value, str):
        if not (value.strip().isascii() and value.strip().isdigit()):
            raise BadValue(f"{kind} item meta.version: not a whole number: {value!r}")
        return int(value.strip())
    if not 0 <= value < 2**63:
        raise BadValue(f"{kind} item meta.version: out of range: {value!r}")
    return value


def served_at(date_header: str | None, fallback: float) -> datetime:
    """When Sell served a page (its `Date` header, one second earlier to stay on the safe side), else `fallback`."""
    if date_header:
        try:
            moment = parsedate_to_datetime(date_header)
        except (TypeError, ValueError):
            moment = None
        if moment is not None:
            return utc(moment).replace(microsecond=0) - timedelta(seconds=1)
    return datetime.fromtimestamp(fallback, UTC)

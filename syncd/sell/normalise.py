"""One Firehose item -> one `ChangeEvent`: flat, typed, Sell-shape-agnostic. Pure; runs once per event.

The rules (syncd/events.py says what the result holds): tags become their names; `custom_field_values` become
`{field name: plain value}` (see `syncd.sell.values`); money strings become `Decimal`; addresses become `Address`
with "" for missing parts; a contact's `contact_id` becomes `organization_id`; the ids of other records (a deal's
`contact_id`, an order's `deal_id`, a line item's `product_id`, ...) become ints whether Sell sends numbers or
strings; a source is kept under the kind of its `resource_type` (`lead_source`, `deal_source`); `meta.previous` is
normalised the same way and keyed by the record's attribute names; a null attribute takes the record struct's
default. Attributes Sell adds are ignored. Anything else raises `NormaliseError` naming the attribute, so the
poller can quarantine the item.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

from syncd.errors import SyncdError
from syncd.events import (
    STREAM_KINDS,
    Action,
    AnyRecord,
    ChangeEvent,
    Contact,
    CustomField,
    CustomValue,
    Deal,
    Lead,
    LineItem,
    Note,
    Order,
    Price,
    Product,
    Source,
    Stage,
    source_kind,
)
from syncd.sell.values import (
    MAX_ID,
    BadValue,
    address_of,
    custom_values,
    date_of,
    decimal_of,
    ref_of,
    tag_names,
    utc,
    utc_or_none,
)
from syncd.sell.wire import (
    RENAMED,
    WIRE_RECORDS,
    Item,
    KindOnly,
    WireContact,
    WireCustomField,
    WireDeal,
    WireLead,
    WireLineItem,
    WireNote,
    WireOrder,
    WirePerson,
    WireProduct,
    WireRecord,
    WireSource,
    WireStage,
    explain,
)


class NormaliseError(SyncdError):
    """A Firehose item that cannot be turned into a ChangeEvent; the message names the attribute and the problem."""


ACTIONS: Final = frozenset({"created", "updated", "deleted"})

# ---------------------------------------------------------------------------------------------------------------
# records: Firehose shape -> the normalised record's attributes (a null attribute takes the record's default)


def _person(d: WirePerson, kind: str) -> dict[str, Any]:
    return {
        "id": d.id,
        "created_at": utc_or_none(d.created_at),
        "owner_id": d.owner_id,
        "creator_id": d.creator_id,
        "first_name": d.first_name or "",
        "last_name": d.last_name or "",
        "title": d.title or "",
        "description": d.description or "",
        "industry": d.industry or "",
        "website": d.website or "",
        "email": d.email or "",
        "phone": d.phone or "",
        "mobile": d.mobile or "",
        "fax": d.fax or "",
        "twitter": d.twitter or "",
        "facebook": d.facebook or "",
        "linkedin": d.linkedin or "",
        "skype": d.skype or "",
        "address": address_of(d.address),
        "tags": tag_names(d.tags),
        "custom": custom_values(d.custom_field_values, f"{kind}.custom_field_values"),
    }


def _lead(d: WireLead) -> dict[str, Any]:
    fields = _person(d, "lead")
    fields["organization_name"] = d.organization_name or ""
    fields["status"] = d.status or ""
    fields["source_id"] = ref_of(d.source_id, "lead.source_id")
    return fields


def _contact(d: WireContact) -> dict[str, Any]:
    fields = _person(d, "contact")
    fields["is_organization"] = bool(d.is_organization)
    fields["name"] = d.name or ""
    fields["organization_id"] = ref_of(d.contact_id, "contact.contact_id")
    fields["parent_organization_id"] = ref_of(d.parent_organization_id, "contact.parent_organization_id")
    fields["customer_status"] = d.customer_status or ""
    fields["prospect_status"] = d.prospect_status or ""
    fields["billing_address"] = address_of(d.billing_address)
    fields["shipping_address"] = address_of(d.shipping_address)
    return fields


def _deal(d: WireDeal) -> dict[str, Any]:
    close = d.estimated_close_date
    return {
        "id": d.id,
        "created_at": utc_or_none(d.created_at),
        "owner_id": d.owner_id,
        "creator_id": d.creator_id,
        "name": d.name or "",
        "value": decimal_of(d.value, "deal.value"),
        "currency": d.currency or "",
        "hot": bool(d.hot),
        "stage_id": ref_of(d.stage_id, "deal.stage_id"),
        "source_id": ref_of(d.source_id, "deal.source_id"),
        "loss_reason_id": ref_of(d.loss_reason_id, "deal.loss_reason_id"),
        "last_stage_change_at": utc_or_none(d.last_stage_change_at),
        "contact_id": ref_of(d.contact_id, "deal.contact_id"),
        "organization_id": ref_of(d.organization_id, "deal.organization_id"),
        "estimated_close_date": date_of(close, "deal.estimated_close_date") if close else None,
        "customized_win_likelihood": d.customized_win_likelihood,
        "tags": tag_names(d.tags),
        "custom": custom_values(d.custom_field_values, "deal.custom_field_values"),
    }


def _stage(d: WireStage) -> dict[str, Any]:
    return {
        "id": d.id,
        "created_at": utc_or_none(d.created_at),
        "name": d.name or "",
        "category": d.category or "",
        "active": True if d.active is None else d.active,
        "position": d.position,
        "likelihood": d.likelihood,
        "pipeline_id": ref_of(d.pipeline_id, "stage.pipeline_id"),
    }


def _source(d: WireSource) -> dict[str, Any]:
    return {
        "id": d.id,
        "created_at": utc_or_none(d.created_at),
        "name": d.name or "",
        "resource_type": d.resource_type or "",
    }


def _note(d: WireNote) -> dict[str, Any]:
    return {
        "id": d.id,
        "created_at": utc_or_none(d.created_at),
        "creator_id": d.creator_id,
        "content": d.content or "",
        "resource_id": ref_of(d.resource_id, "note.resource_id"),
        "resource_type": d.resource_type or "",
        "type": d.type or "",
    }


def _order(d: WireOrder) -> dict[str, Any]:
    return {
        "id": d.id,
        "created_at": utc_or_none(d.created_at),
        "deal_id": ref_of(d.deal_id, "order.deal_id"),
        "discount": decimal_of(d.discount, "order.discount"),
    }


def _line_item(d: WireLineItem) -> dict[str, Any]:
    return {
        "id": d.id,
        "created_at": utc_or_none(d.created_at),
        "order_id": ref_of(d.order_id, "line_item.order_id"),
        "deal_id": ref_of(d.deal_id, "line_item.deal_id"),
        "product_id": ref_of(d.product_id, "line_item.product_id"),
        "name": d.name or "",
        "sku": d.sku or "",
        "description": d.description or "",
        "quantity": decimal_of(d.quantity, "line_item.quantity"),
        "price": decimal_of(d.price, "line_item.price"),
        "value": decimal_of(d.value, "line_item.value"),
        "variation": decimal_of(d.variation, "line_item.variation"),
        "currency": d.currency or "",
    }


def _custom_field(d: WireCustomField) -> dict[str, Any]:
    return {
        "id": d.id,
        "created_at": utc_or_none(d.created_at),
        "name": d.name or "",
        "type": d.type or "",
        "resource_type": d.resource_type or "",
    }


def _product(d: WireProduct) -> dict[str, Any]:
    return {
        "id": d.id,
        "created_at": utc_or_none(d.created_at),
        "name": d.name or "",
        "description": d.description or "",
        "sku": d.sku or "",
        "active": True if d.active is None else d.active,
        "max_discount": decimal_of(d.max_discount, "product.max_discount"),
        "max_markup": decimal_of(d.max_markup, "product.max_markup"),
        "cost": decimal_of(d.cost, "product.cost"),
        "cost_currency": d.cost_currency or "",
        "prices": [
            Price(amount=decimal_of(p.amount, f"product.prices[{n}].amount"), currency=p.currency or "")
            for n, p in enumerate(d.prices or ())
        ],
    }


class _Kind:
    """How one record kind is decoded and normalised (built once at import)."""

    __slots__ = ("convert", "item_decoder", "name", "previous_decoder", "record", "renamed")

    def __init__(
        self,
        name: str,
        wire: type[WireRecord],
        record: type[AnyRecord],
        convert: Callable[[Any], dict[str, Any]],
    ) -> None:
        self.name = name
        item_type: Any = Item[wire]  # type: ignore[valid-type]
        self.item_decoder: msgspec.json.Decoder[Item[WireRecord]] = msgspec.json.Decoder(item_type)
        self.previous_decoder: msgspec.json.Decoder[WireRecord] = msgspec.json.Decoder(wire)
        self.record = record
        self.convert = convert
        self.renamed = RENAMED.get(name, {})


_KINDS: dict[str, _Kind] = {
    kind.name: kind
    for kind in (
        _Kind("lead", WIRE_RECORDS["lead"], Lead, _lead),
        _Kind("contact", WIRE_RECORDS["contact"], Contact, _contact),
        _Kind("deal", WIRE_RECORDS["deal"], Deal, _deal),
        _Kind("stage", WIRE_RECORDS["stage"], Stage, _stage),
        _Kind("source", WIRE_RECORDS["source"], Source, _source),
        _Kind("note", WIRE_RECORDS["note"], Note, _note),
        _Kind("order", WIRE_RECORDS["order"], Order, _order),
        _Kind("line_item", WIRE_RECORDS["line_item"], LineItem, _line_item),
        _Kind("custom_field", WIRE_RECORDS["custom_field"], CustomField, _custom_field),
        _Kind("product", WIRE_RECORDS["product"], Product, _product),
    )
}
_kind_decoder = msgspec.json.Decoder(KindOnly)


def record_fields(kind: str, data: WireRecord) -> dict[str, Any]:
    """A record of `kind` in its Firehose shape as the normalised record's attributes (also what the Core API's
    snapshots are read into: syncd.sell.snapshot); raises BadValue naming the attribute."""
    return _KINDS[kind].convert(data)


def make_record(kind: str, fields: dict[str, Any]) -> AnyRecord:
    """The normalised record of `kind` with these attributes."""
    record: AnyRecord = _KINDS[kind].record(**fields)
    return record


_keys_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_NULL = msgspec.Raw(b"null")


# ---------------------------------------------------------------------------------------------------------------
# the item


def normalise(stream: str, raw: bytes | msgspec.Raw) -> ChangeEvent:
    """Decode and normalise one raw Firehose item read from `stream` (its bytes, or the page's `msgspec.Raw` of
    it); raises `NormaliseError`."""
    expected = STREAM_KINDS.get(stream)
    if expected is None:
        raise NormaliseError(f"unknown stream {stream!r}")
    kind = _KINDS[expected]
    try:
        item = kind.item_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        _check_type(stream, expected, raw)  # a record of another kind fails on its fields; say what really is wrong
        raise NormaliseError(_located(expected, explain(exc))) from None
    except msgspec.DecodeError as exc:
        raise NormaliseError(f"{expected}: not valid JSON ({exc})") from None
    meta = item.meta
    if meta.type != expected:
        raise NormaliseError(f"{expected}: an item of type {meta.type!r} in the {stream} stream")
    if meta.event_type not in ACTIONS:
        raise NormaliseError(f"{expected}: unknown meta.event_type {meta.event_type!r}")
    action: Action = meta.event_type  # type: ignore[assignment]
    data = item.data
    if data.id is None:
        raise NormaliseError(f"{expected}.id: missing")
    # The record's own id and version are SQLite integers in the store: beyond them the item is quarantined here.
    if not 1 <= data.id <= MAX_ID:
        raise NormaliseError(f"{expected}.id: not an id (1..2^63-1): {data.id}")
    if not 0 <= meta.sequence <= MAX_ID:
        raise NormaliseError(f"{expected} item meta.sequence: out of range (0..2^63-1): {meta.sequence}")
    try:
        fields = kind.convert(data)
    except BadValue as exc:
        raise NormaliseError(str(exc)) from None
    previous = {} if meta.previous == _NULL else _previous(kind, meta.previous, fields)
    return ChangeEvent(
        stream=stream,
        kind=source_kind(fields["resource_type"]) if expected == "source" else expected,
        record_id=data.id,
        action=action,
        sequence=meta.sequence,
        event_id=meta.event_id,
        occurred_at=utc(meta.event_time),
        record=kind.record(**fields),
        cause=meta.event_cause,
        previous=previous,
    )


def _located(kind: str, reason: str) -> str:
    """Say where: "data.value: ..." -> "deal.value: ..."; meta problems as "deal item meta.sequence: ..."."""
    if reason.startswith("data."):
        return f"{kind}.{reason[5:]}"
    return f"{kind} item {reason}"


def _check_type(stream: str, expected: str, raw: bytes | msgspec.Raw) -> None:
    try:
        claimed = _kind_decoder.decode(raw).meta.type
    except msgspec.MsgspecError:
        return
    if claimed is not None and claimed != expected:
        raise NormaliseError(f"{expected}: an item of type {claimed!r} in the {stream} stream")


def _previous(kind: _Kind, raw: msgspec.Raw, current: dict[str, Any]) -> dict[str, Any]:
    """`meta.previous` normalised like the record and keyed by its attribute names; unknown attributes dropped."""
    try:
        keys = _keys_decoder.decode(raw)
        old = kind.convert(kind.previous_decoder.decode(raw))
    except msgspec.ValidationError as exc:
        raise NormaliseError(f"{kind.name}.previous.{explain(exc)}") from None
    except BadValue as exc:  # "deal.value: ..." -> "deal.previous.value: ..."
        raise NormaliseError(f"{kind.name}.previous.{str(exc).removeprefix(kind.name + '.')}") from None
    except msgspec.DecodeError as exc:  # pragma: no cover - the item as a whole was valid JSON
        raise NormaliseError(f"{kind.name}.previous: not valid JSON ({exc})") from None
    previous: dict[str, Any] = {}
    for key in keys:
        attr = kind.renamed.get(key, key)
        if attr == "id" or attr not in old:
            continue
        if attr == "custom":
            changed = _changed_custom(old["custom"], current.get("custom", {}))
            if changed:
                previous["custom"] = changed
            continue
        previous[attr] = old[attr]
    return previous


def _changed_custom(old: dict[str, CustomValue], new: dict[str, CustomValue]) -> dict[str, CustomValue]:
    """The custom fields whose value changed, with their old values (None for a field that was not set before).

    `previous.custom_field_values` holds the attribute's old value: the whole old list. A field missing from it was
    unset, and fields whose value did not change are left out, so only real changes are reported.
    """
    changed = {name: value for name, value in old.items() if new.get(name) != value}
    changed.update((name, None) for name, value in new.items() if name not in old and value is not None)
    return changed

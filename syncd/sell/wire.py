"""Zendesk Sell Firehose wire formats: the page envelope and the record shapes inside items (which differ from v2).

`decode_page` checks the envelope and keeps every item as raw bytes, so one bad item can be quarantined with its body
while the rest of the page goes on. The record structs below describe Firehose `data` objects; every attribute is
optional (a `deleted` item may carry only `id`) and unknown attributes are ignored (Sell adds fields over time).
Values are kept close to the wire (Sell's strings, nulls and embedded objects); `syncd.sell.normalise` makes them
plain. Every struct here is `gc=False`: frozen, holding only decoded JSON, it can be in no reference cycle, and
untracked structs are cheaper to make (about a tenth of decoding a person's item) and never walked by the
collector.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

from syncd.errors import MalformedPage

# ---------------------------------------------------------------------------------------------------------------
# the page


class WirePage(msgspec.Struct, frozen=True, gc=False):
    """One decoded Firehose page: raw items, the authoritative position, and whether it is the stream's head."""

    items: list[msgspec.Raw]
    position: str
    top: bool


class _Links(msgspec.Struct, frozen=True, gc=False):
    """`meta.links`: checked for shape, not used (the position is what counts; `next` may be "")."""

    next: str | None = None


class _PageMeta(msgspec.Struct, frozen=True, gc=False):
    position: str
    top: bool
    links: _Links | None = None


class _Page(msgspec.Struct, frozen=True, gc=False):
    items: list[msgspec.Raw]
    meta: _PageMeta


_page_decoder = msgspec.json.Decoder(_Page)


def decode_page(body: bytes) -> WirePage:
    """Decode a Firehose response body; anything that is not a valid page raises `MalformedPage`. A page whose
    only fault lies inside an item (a lone surrogate such as "Zo\\ud83d", a byte that is not UTF-8, a NaN) is
    read leniently instead: each item comes back re-encoded as strict-ASCII JSON, the faulty ones still faulty, so
    normalising quarantines them with their bodies and the rest of the page goes on."""
    try:
        page = _page_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise MalformedPage(f"not a Firehose page: {explain(exc)}") from None
    except msgspec.DecodeError as exc:
        page = _lenient(body, exc)
    if not page.meta.position:
        raise MalformedPage("not a Firehose page: meta.position is empty")
    return WirePage(page.items, page.meta.position, page.meta.top)


def _lenient(body: bytes, error: msgspec.DecodeError) -> _Page:
    """The page read by Python's JSON parser, which takes what a strict one refuses inside strings (lone
    surrogates; bytes that are not UTF-8, kept as surrogate escapes) and NaN; each item re-encoded on its own.
    Anything that is not JSON even so raises MalformedPage with the strict parser's reason."""
    try:
        data = json.loads(body.decode("utf-8", errors="surrogateescape"))
        items = data["items"] if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ValueError("no items")
        meta = msgspec.convert(data["meta"], _PageMeta)
        raws = [msgspec.Raw(json.dumps(entry, ensure_ascii=True).encode()) for entry in items]
    except (ValueError, KeyError, msgspec.ValidationError):
        raise MalformedPage(f"not a Firehose page: invalid JSON ({error})") from None
    return _Page(raws, meta)


def explain(exc: msgspec.ValidationError) -> str:
    """msgspec's "Expected `bool`, got `str` - at `$.meta.top`" as "meta.top: expected `bool`, got `str`"."""
    message, sep, path = str(exc).rpartition(" - at `$")
    if not sep:
        message, path = str(exc), ""
    path = path.rstrip("`").lstrip(".")
    missing = "Object missing required field `"
    if message.startswith(missing):
        field = message[len(missing) :].rstrip("`")
        return f"{path}.{field}: missing" if path else f"{field}: missing"
    text = message[:1].lower() + message[1:]
    return f"{path}: {text}" if path else text


# ---------------------------------------------------------------------------------------------------------------
# items

T = TypeVar("T")


class ItemMeta(msgspec.Struct, frozen=True, gc=False):
    """`meta` of one Firehose item."""

    type: str
    event_type: str
    event_id: str
    event_time: datetime
    sequence: int
    event_cause: str = "interaction"
    previous: msgspec.Raw = msgspec.Raw(b"null")  # decoded later, by the record's own shape


class Item(msgspec.Struct, Generic[T], frozen=True, gc=False):
    """One Firehose item: the record snapshot after the event, and the event's meta."""

    data: T
    meta: ItemMeta


class _KindMeta(msgspec.Struct, frozen=True, gc=False):
    type: str | None = None


class KindOnly(msgspec.Struct, frozen=True, gc=False):
    """Just enough of an item to say what kind of record it claims to be."""

    meta: _KindMeta = _KindMeta()


# ---------------------------------------------------------------------------------------------------------------
# embedded objects


class WireAddress(msgspec.Struct, frozen=True, gc=False):
    line1: str | None = None
    city: str | None = None
    postal_code: str | int | None = None
    state: str | None = None
    country: str | None = None


class _TagData(msgspec.Struct, frozen=True, gc=False):
    name: str
    id: int | None = None
    resource_type: str | None = None


class WireTag(msgspec.Struct, frozen=True, gc=False):
    """`{"data": {"id", "name", "resource_type"}, "meta": {"type": "tag"}}`."""

    data: _TagData


class _CustomFieldData(msgspec.Struct, frozen=True, gc=False):
    name: str
    type: str
    id: int | None = None
    resource_type: str | None = None


class _CustomFieldRef(msgspec.Struct, frozen=True, gc=False):
    data: _CustomFieldData


class WireCustomValue(msgspec.Struct, frozen=True, gc=False):
    """`{"value": <typed by the field's type>, "custom_field": {"data": {"id", "name", "type", ...}, ...}}`."""

    custom_field: _CustomFieldRef
    value: Any = None  # decoded with the item in one pass; read by the field's type in sell.values.custom_value


Text = str | None
Money = str | int | float | None  # Sell sends decimals as strings; accept numbers too
Ref = int | str | None  # the id of another record: documented as a string in places, shown as a number; both
Tags = list[str | WireTag] | None
CustomValues = list[WireCustomValue] | None

# ---------------------------------------------------------------------------------------------------------------
# records


class WireRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    id: int | None = None  # always present in `data`; absent in `meta.previous`, which shares these shapes
    created_at: datetime | None = None


class WirePerson(WireRecord, frozen=True, kw_only=True):
    creator_id: int | None = None
    owner_id: int | None = None
    first_name: Text = None
    last_name: Text = None
    title: Text = None
    description: Text = None
    industry: Text = None
    website: Text = None
    email: Text = None
    phone: Text = None
    mobile: Text = None
    fax: Text = None
    twitter: Text = None
    facebook: Text = None
    linkedin: Text = None
    skype: Text = None
    address: WireAddress | None = None
    tags: Tags = None
    custom_field_values: CustomValues = None


class WireLead(WirePerson, frozen=True, kw_only=True):
    organization_name: Text = None
    status: Text = None
    source_id: Ref = None


class WireContact(WirePerson, frozen=True, kw_only=True):
    is_organization: bool | None = None
    contact_id: Ref = None  # the organisation an individual belongs to
    parent_organization_id: Ref = None
    name: Text = None
    customer_status: Text = None
    prospect_status: Text = None
    billing_address: WireAddress | None = None
    shipping_address: WireAddress | None = None


class WireDeal(WireRecord, frozen=True, kw_only=True):
    creator_id: int | None = None
    owner_id: int | None = None
    name: Text = None
    value: Money = None
    currency: Text = None
    hot: bool | None = None
    stage_id: Ref = None
    source_id: Ref = None
    loss_reason_id: Ref = None
    last_stage_change_at: datetime | None = None
    contact_id: Ref = None
    organization_id: Ref = None
    estimated_close_date: Text = None
    customized_win_likelihood: int | None = None
    tags: Tags = None
    custom_field_values: CustomValues = None


class WireStage(WireRecord, frozen=True, kw_only=True):
    name: Text = None
    category: Text = None
    active: bool | None = None
    position: int | None = None
    likelihood: int | None = None
    pipeline_id: Ref = None


class WireSource(WireRecord, frozen=True, kw_only=True):
    name: Text = None
    resource_type: Text = None


class WireNote(WireRecord, frozen=True, kw_only=True):
    creator_id: int | None = None
    content: Text = None
    resource_id: Ref = None
    resource_type: Text = None
    type: Text = None


class WireOrder(WireRecord, frozen=True, kw_only=True):
    deal_id: Ref = None
    discount: Money = None


class WireLineItem(WireRecord, frozen=True, kw_only=True):
    order_id: Ref = None
    deal_id: Ref = None
    product_id: Ref = None
    name: Text = None
    sku: Text = None
    description: Text = None
    quantity: Money = None
    price: Money = None
    value: Money = None
    variation: Money = None
    currency: Text = None


class WireCustomField(WireRecord, frozen=True, kw_only=True):
    name: Text = None
    type: Text = None
    resource_type: Text = None


class WirePrice(msgspec.Struct, frozen=True, gc=False):
    amount: Money = None
    currency: Text = None


class WireProduct(WireRecord, frozen=True, kw_only=True):
    name: Text = None
    description: Text = None
    sku: Text = None
    active: bool | None = None
    max_discount: Money = None
    max_markup: Money = None
    cost: Money = None
    cost_currency: Text = None
    prices: list[WirePrice] | None = None


# record kind (`meta.type`) -> its Firehose shape
WIRE_RECORDS: dict[str, type[WireRecord]] = {
    "lead": WireLead,
    "contact": WireContact,
    "deal": WireDeal,
    "stage": WireStage,
    "source": WireSource,
    "note": WireNote,
    "order": WireOrder,
    "line_item": WireLineItem,
    "custom_field": WireCustomField,
    "product": WireProduct,
}

# Firehose attribute -> the normalised record's attribute, where they differ (by kind)
RENAMED: dict[str, dict[str, str]] = {
    "contact": {"contact_id": "organization_id", "custom_field_values": "custom"},
    "lead": {"custom_field_values": "custom"},
    "deal": {"custom_field_values": "custom"},
}

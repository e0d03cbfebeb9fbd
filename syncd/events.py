"""The normalised change event: one Sell Firehose item, flat, typed and Sell-shape-agnostic.

`normalise()` (syncd.sell.normalise) produces these from wire items; the store keeps them as msgspec JSON; mappers
turn them into destination calls. Field names follow Sell's where Sell has the field, with these normalisations:
tags are plain names, custom field values are `{field name: plain value}`, money strings are `Decimal`, Sell's
"4/27/2016" dates are `date`s, addresses are `Address` structs with every part a string ("" when empty), the ids of
other records are ints (Sell sends some as strings), and sources are kept by their resource type (`source_kind`).

The structs are `gc=False`: frozen and holding only plain values, they can be in no reference cycle, so the cyclic
collector need not track them (cheaper to make, and never walked: a page of events is ~10,000 objects).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec

# "snapshot": not a change but a record as read from Sell's Core API by a backfill (its state at that moment).
Action = Literal["created", "updated", "deleted", "snapshot"]

# Firehose stream name -> the `meta.type` of its items.
STREAM_KINDS: dict[str, str] = {
    "leads": "lead",
    "contacts": "contact",
    "deals": "deal",
    "notes": "note",
    "orders": "order",
    "line_items": "line_item",
    "stages": "stage",
    "custom_fields": "custom_field",
    "sources": "source",
    "products": "product",
}
PERSON_KINDS = frozenset({"lead", "contact"})
# The cause of what a backfill writes (a ChangeEvent's `cause`): snapshots, and the deletes of records it found gone
# from Sell. The store orders these by time, never by sequence (see state.ingest).
SNAPSHOT_CAUSE = "backfill"
# Sell keeps lead sources and deal sources apart (the same id may name one of each): the shadow keeps them under
# these kinds, by the item's `resource_type` ("source" when an item does not say, e.g. a bare delete).
SOURCE_KINDS: dict[str, str] = {"lead": "lead_source", "deal": "deal_source"}


def source_kind(resource_type: str) -> str:
    """The kind a Sell source is kept under: "lead_source", "deal_source", or "source" when unknown."""
    return SOURCE_KINDS.get(resource_type, "source")


class Address(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A postal address; Sell's empty parts are ""."""

    line1: str = ""
    city: str = ""
    postal_code: str = ""
    state: str = ""
    country: str = ""  # free text as typed in Sell ("Poland")


# A custom field value after normalisation, by Sell type:
#   bool -> bool; number -> canonical decimal string ("123.45"); date -> ISO date ("2016-04-27");
#   datetime -> ISO datetime ("2016-04-28T06:00:00"); list -> the option name; multi_select_list -> list of names;
#   address -> Address; email/phone/string/text/url -> str; unset -> None.
CustomValue = bool | str | list[str] | Address | None


class Record(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="kind", gc=False):
    """The state of one Sell record after an event (on `deleted`, possibly only its id)."""

    id: int
    created_at: datetime | None = None


class _Person(Record, frozen=True, kw_only=True, omit_defaults=True):
    owner_id: int | None = None
    creator_id: int | None = None
    first_name: str = ""
    last_name: str = ""
    title: str = ""
    description: str = ""
    industry: str = ""
    website: str = ""
    email: str = ""
    phone: str = ""
    mobile: str = ""
    fax: str = ""
    twitter: str = ""
    facebook: str = ""
    linkedin: str = ""
    skype: str = ""
    address: Address | None = None
    tags: list[str] = []
    custom: dict[str, CustomValue] = {}


class Lead(_Person, frozen=True, kw_only=True, omit_defaults=True, tag="lead"):
    organization_name: str = ""
    status: str = ""
    source_id: int | None = None


class Contact(_Person, frozen=True, kw_only=True, omit_defaults=True, tag="contact"):
    is_organization: bool = False
    name: str = ""  # organisations only
    organization_id: int | None = None  # Sell's `contact_id`: the organisation an individual belongs to
    parent_organization_id: int | None = None
    customer_status: str = ""  # none / current / past
    prospect_status: str = ""  # none / current / lost
    billing_address: Address | None = None
    shipping_address: Address | None = None


class Deal(Record, frozen=True, kw_only=True, omit_defaults=True, tag="deal"):
    owner_id: int | None = None
    creator_id: int | None = None
    name: str = ""
    value: Decimal | None = None
    currency: str = ""
    hot: bool = False
    stage_id: int | None = None
    source_id: int | None = None
    loss_reason_id: int | None = None
    last_stage_change_at: datetime | None = None
    contact_id: int | None = None
    organization_id: int | None = None
    estimated_close_date: date | None = None
    customized_win_likelihood: int | None = None
    tags: list[str] = []
    custom: dict[str, CustomValue] = {}


class Stage(Record, frozen=True, kw_only=True, omit_defaults=True, tag="stage"):
    name: str = ""
    category: str = ""  # e.g. "incoming", "qualified", "won", "lost"
    active: bool = True
    position: int | None = None
    likelihood: int | None = None
    pipeline_id: int | None = None


class Source(Record, frozen=True, kw_only=True, omit_defaults=True, tag="source"):
    name: str = ""
    resource_type: str = ""


class Note(Record, frozen=True, kw_only=True, omit_defaults=True, tag="note"):
    creator_id: int | None = None
    content: str = ""
    resource_id: int | None = None
    resource_type: str = ""  # lead / contact / deal
    type: str = ""


class Order(Record, frozen=True, kw_only=True, omit_defaults=True, tag="order"):
    deal_id: int | None = None
    discount: Decimal | None = None  # percent


class LineItem(Record, frozen=True, kw_only=True, omit_defaults=True, tag="line_item"):
    order_id: int | None = None
    deal_id: int | None = None
    product_id: int | None = None
    name: str = ""
    sku: str = ""
    description: str = ""
    quantity: Decimal | None = None
    price: Decimal | None = None
    value: Decimal | None = None
    variation: Decimal | None = None
    currency: str = ""


class CustomField(Record, frozen=True, kw_only=True, omit_defaults=True, tag="custom_field"):
    name: str = ""
    type: str = ""
    resource_type: str = ""


class Price(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A product's price in one currency."""

    amount: Decimal | None = None
    currency: str = ""


class Product(Record, frozen=True, kw_only=True, omit_defaults=True, tag="product"):
    name: str = ""
    description: str = ""
    sku: str = ""
    active: bool = True
    max_discount: Decimal | None = None  # percent
    max_markup: Decimal | None = None  # percent
    cost: Decimal | None = None
    cost_currency: str = ""
    prices: list[Price] = []

    def price_in(self, currency: str) -> Decimal | None:
        """The product's price in `currency` (None when it has none there)."""
        for price in self.prices:
            if price.currency == currency:
                return price.amount
        return None


AnyRecord = Lead | Contact | Deal | Stage | Source | Note | Order | LineItem | CustomField | Product


class ChangeEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One change of one Sell record, as read from one Firehose stream; or a snapshot of one record as read from
    the Core API by a backfill (action "snapshot", `sequence` its v2 `meta.version`, `occurred_at` its
    `updated_at`), which routes, maps and delivers like a change."""

    stream: str
    kind: str
    record_id: int
    action: Action
    sequence: int
    event_id: str
    occurred_at: datetime
    record: AnyRecord
    cause: str = "interaction"
    # Only the changed attributes, with their OLD values, normalised like the record's own fields and keyed by the
    # record's attribute names (custom field values under "custom" as {name: old value}).
    previous: dict[str, Any] = {}

    @property
    def introduces(self) -> bool:
        """Whether the record may be new to whoever receives this: a create, or a snapshot (a backfill carries
        records the destinations never heard of, made long ago)."""
        return self.action in ("created", "snapshot")

    @property
    def identity(self) -> tuple[str, int, int, str]:
        """What makes two deliveries of this event the same event."""
        return (self.kind, self.record_id, self.sequence, self.action)


_encoder = msgspec.json.Encoder(decimal_format="string")
_event_decoder = msgspec.json.Decoder(ChangeEvent)
_record_decoder = msgspec.json.Decoder(AnyRecord)


def encode(value: ChangeEvent | Record) -> bytes:
    """Compact JSON for the store."""
    return _encoder.encode(value)


def encode_with_record(event: ChangeEvent) -> tuple[bytes, bytes]:
    """The event's JSON and its record's, the record encoded once (the event's JSON embeds the same bytes)."""
    record = _encoder.encode(event.record)
    embedded: Any = msgspec.Raw(record)
    return _encoder.encode(msgspec.structs.replace(event, record=embedded)), record


def decode_event(body: bytes) -> ChangeEvent:
    return _event_decoder.decode(body)


def decode_record(body: bytes) -> AnyRecord:
    record: AnyRecord = _record_decoder.decode(body)
    return record


def email_of(record: Record) -> str:
    """The record's e-mail, lower-cased and stripped ("" when it has none)."""
    email = getattr(record, "email", "")
    return email.strip().lower() if isinstance(email, str) else ""

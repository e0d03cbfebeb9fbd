"""Firehose items -> ChangeEvents, and Firehose pages -> WirePage: every shape the contract allows, and the failures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from syncd.errors import MalformedPage
from syncd.events import (
    Address,
    Contact,
    CustomField,
    Deal,
    Lead,
    LineItem,
    Note,
    Order,
    Price,
    Product,
    Source,
    Stage,
    decode_event,
    encode,
)
from syncd.sandbox.sell.history import custom, item, tag
from syncd.sell.normalise import NormaliseError, normalise
from syncd.sell.wire import decode_page

T0 = datetime(2024, 3, 1, 10, 15, 2, tzinfo=UTC)
ADDRESS = {"line1": "Marszałkowska 1", "city": "Warszawa", "postal_code": "00-001", "state": "", "country": "Poland"}


def run(stream: str, wire: dict[str, Any]) -> Any:
    return normalise(stream, msgspec.json.encode(wire))


def lead(**fields: Any) -> dict[str, Any]:
    return {"id": 1, **fields}


# ---------------------------------------------------------------------------------------------------------------
# each kind


KINDS = [
    pytest.param(
        "leads",
        "lead",
        {
            "id": 1, "creator_id": 7, "owner_id": 8, "first_name": "Łukasz", "last_name": "Wiśniewski",
            "organization_name": "Acme", "status": "New", "source_id": 3, "title": None, "description": "hi",
            "industry": "Software", "website": "https://acme.example", "email": "lw@example.org", "phone": "+48 1",
            "mobile": None, "fax": None, "twitter": None, "facebook": None, "linkedin": None, "skype": None,
            "address": ADDRESS, "tags": [tag("vip")], "custom_field_values": [], "created_at": "2024-01-02T03:04:05Z",
        },
        Lead(
            id=1, creator_id=7, owner_id=8, first_name="Łukasz", last_name="Wiśniewski", organization_name="Acme",
            status="New", source_id=3, description="hi", industry="Software", website="https://acme.example",
            email="lw@example.org", phone="+48 1", address=Address(**ADDRESS), tags=["vip"],
            created_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        ),
        id="lead",
    ),
    pytest.param(
        "contacts",
        "contact",
        {
            "id": 2, "is_organization": False, "contact_id": 9, "parent_organization_id": None, "name": None,
            "first_name": "Zoë", "last_name": "Müller", "customer_status": "current", "prospect_status": "none",
            "email": "zoe@example.org", "billing_address": ADDRESS, "shipping_address": None, "address": None,
            "tags": [tag("partner", resource_type="contact")],
        },
        Contact(
            id=2, organization_id=9, first_name="Zoë", last_name="Müller", customer_status="current",
            prospect_status="none", email="zoe@example.org", billing_address=Address(**ADDRESS), tags=["partner"],
        ),
        id="contact-individual",
    ),
    pytest.param(
        "contacts",
        "contact",
        {"id": 9, "is_organization": True, "name": "Acme sp. z o.o.", "first_name": None, "last_name": None,
         "contact_id": None, "parent_organization_id": 5, "email": None},
        Contact(id=9, is_organization=True, name="Acme sp. z o.o.", parent_organization_id=5),
        id="contact-organisation",
    ),
    pytest.param(
        "deals",
        "deal",
        {
            "id": 3, "name": "Pro licence", "value": "1250.00", "currency": "EUR", "hot": True, "stage_id": 4,
            "source_id": None, "loss_reason_id": None, "last_stage_change_at": "2024-02-01T12:00:00Z",
            "last_stage_change_by_id": 8, "dropbox_email": "d@dropbox.example", "contact_id": 2,
            "organization_id": 9, "estimated_close_date": "2024-06-19", "customized_win_likelihood": 50,
            "tags": [], "custom_field_values": [custom("Seats", "number", "12", resource_type="deal")],
        },
        Deal(
            id=3, name="Pro licence", value=Decimal("1250.00"), currency="EUR", hot=True, stage_id=4,
            last_stage_change_at=datetime(2024, 2, 1, 12, tzinfo=UTC), contact_id=2, organization_id=9,
            estimated_close_date=date(2024, 6, 19), customized_win_likelihood=50, custom={"Seats": "12"},
        ),
        id="deal",
    ),
    pytest.param(
        "stages",
        "stage",
        {"id": 4, "name": "Won", "category": "won", "active": False, "position": 4, "likelihood": 100,
         "pipeline_id": 1},
        Stage(id=4, name="Won", category="won", active=False, position=4, likelihood=100, pipeline_id=1),
        id="stage",
    ),
    pytest.param(
        "sources",
        "source",
        {"id": 5, "name": "Website", "resource_type": "lead", "created_at": "2024-01-01T00:00:00Z"},
        Source(id=5, name="Website", resource_type="lead", created_at=datetime(2024, 1, 1, tzinfo=UTC)),
        id="source",
    ),
    pytest.param(
        "notes",
        "note",
        {"id": 6, "creator_id": 7, "content": "Spotkanie we wtorek", "resource_id": 1, "resource_type": "lead",
         "type": "regular"},
        Note(id=6, creator_id=7, content="Spotkanie we wtorek", resource_id=1, resource_type="lead", type="regular"),
        id="note",
    ),
    pytest.param(
        "orders",
        "order",
        {"id": 7, "deal_id": 3, "discount": 10},
        Order(id=7, deal_id=3, discount=Decimal(10)),
        id="order",
    ),
    pytest.param(
        "line_items",
        "line_item",
        {"id": 8, "order_id": 7, "deal_id": 3, "product_id": 1001, "name": "Pro", "sku": "LIC-PRO",
         "description": "", "quantity": 3, "price": "249.00", "value": "747.00", "variation": "0.00",
         "currency": "EUR"},
        LineItem(id=8, order_id=7, deal_id=3, product_id=1001, name="Pro", sku="LIC-PRO", quantity=Decimal(3),
                 price=Decimal("249.00"), value=Decimal("747.00"), variation=Decimal("0.00"), currency="EUR"),
        id="line_item",
    ),
    pytest.param(
        "custom_fields",
        "custom_field",
        {"id": 10, "name": "Budget", "type": "number", "resource_type": "lead"},
        CustomField(id=10, name="Budget", type="number", resource_type="lead"),
        id="custom_field",
    ),
    pytest.param(
        "products",
        "product",
        {"id": 1001, "name": "Pro licence", "description": "Pro (LIC-PRO)", "sku": "LIC-PRO", "active": True,
         "max_discount": 10, "max_markup": 25, "cost": "99.60", "cost_currency": "EUR",
         "prices": [{"amount": "249.00", "currency": "EUR"}, {"amount": 269.5, "currency": "USD"}],
         "created_at": "2024-01-01T00:00:00Z"},
        Product(id=1001, name="Pro licence", description="Pro (LIC-PRO)", sku="LIC-PRO", max_discount=Decimal(10),
                max_markup=Decimal(25), cost=Decimal("99.60"), cost_currency="EUR",
                prices=[Price(amount=Decimal("249.00"), currency="EUR"),
                        Price(amount=Decimal("269.5"), currency="USD")],
                created_at=datetime(2024, 1, 1, tzinfo=UTC)),
        id="product",
    ),
]  # fmt: skip
# The kind an event is kept under, where it is not the item's type: Sell's lead and deal sources are kept apart.
EVENT_KINDS = {"source": "lead_source"}


@pytest.mark.parametrize(("stream", "kind", "data", "expected"), KINDS)
def test_each_kind_normalises_to_its_record(stream: str, kind: str, data: dict[str, Any], expected: Any) -> None:
    """Every kind's Firehose snapshot becomes its normalised record, with kind and record id on the event."""
    event = run(stream, item(kind, data))
    assert event.record == expected
    assert (event.stream, event.kind, event.record_id) == (stream, EVENT_KINDS.get(kind, kind), data["id"])


@pytest.mark.parametrize(
    ("resource_type", "kind"),
    [("lead", "lead_source"), ("deal", "deal_source"), (None, "source"), ("campaign", "source")],
)
def test_sources_are_kept_apart_by_resource_type(resource_type: str | None, kind: str) -> None:
    """A lead source and a deal source with the same id are different records (kinds); a source whose item does
    not say which it is (a bare delete) keeps the plain kind."""
    data: dict[str, Any] = {"id": 5, "name": "Website"}
    if resource_type is not None:
        data["resource_type"] = resource_type
    assert run("sources", item("source", data)).kind == kind


@pytest.mark.parametrize(
    ("stream", "kind", "data", "attr", "expected"),
    [
        ("orders", "order", {"id": 7, "deal_id": "3"}, "deal_id", 3),
        ("orders", "order", {"id": 7, "deal_id": 3}, "deal_id", 3),
        ("orders", "order", {"id": 7, "deal_id": ""}, "deal_id", None),
        ("line_items", "line_item", {"id": 8, "product_id": "1001"}, "product_id", 1001),
        ("line_items", "line_item", {"id": 8, "order_id": "7", "deal_id": "3"}, "order_id", 7),
        ("deals", "deal", {"id": 3, "contact_id": "12", "stage_id": "4"}, "contact_id", 12),
        ("deals", "deal", {"id": 3, "stage_id": "4"}, "stage_id", 4),
        ("notes", "note", {"id": 6, "resource_id": "9223372036854775807"}, "resource_id", 2**63 - 1),
        ("stages", "stage", {"id": 4, "pipeline_id": "1"}, "pipeline_id", 1),
        ("leads", "lead", {"id": 1, "source_id": "3"}, "source_id", 3),
        ("contacts", "contact", {"id": 2, "contact_id": "9"}, "organization_id", 9),
        ("contacts", "contact", {"id": 2, "parent_organization_id": "9"}, "parent_organization_id", 9),
    ],
)
def test_ids_of_other_records_are_read_as_numbers_or_strings(
    stream: str, kind: str, data: dict[str, Any], attr: str, expected: int | None
) -> None:
    """The id of another record (documented as a string in places, shown as a number) is an int either way."""
    assert getattr(run(stream, item(kind, data)).record, attr) == expected


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"id": 7, "deal_id": "3a"}, "order.deal_id: not an id: '3a'"),
        ({"id": 7, "deal_id": "-3"}, "order.deal_id: not an id: '-3'"),
        ({"id": 7, "deal_id": 0}, "order.deal_id: not an id (1..2^63-1): 0"),
        ({"id": 7, "deal_id": 2**63}, "order.deal_id: not an id (1..2^63-1): 9223372036854775808"),
        ({"id": 7, "deal_id": "99999999999999999999"}, "order.deal_id: not an id (1..2^63-1): '99999999999999999999'"),
        ({"id": 7, "deal_id": 3.5}, "order.deal_id: expected `int | str | null`, got `float`"),
    ],
)
def test_bad_ids_of_other_records_name_the_attribute(data: dict[str, Any], reason: str) -> None:
    """An id that is not one (text, negative, zero, beyond what SQLite holds, a fraction) fails normalising with
    the attribute named, so the item is quarantined instead of failing its page at the store."""
    with pytest.raises(NormaliseError) as caught:
        run("orders", item("order", data))
    assert str(caught.value) == reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (msgspec.json.encode(item("contact", {"id": 2, "contact_id": "x"})), "contact.contact_id: not an id: 'x'"),
        (msgspec.json.encode(item("lead", {"id": 1, "source_id": 2**63})), "lead.source_id: not an id (1..2^63-1): "),
        (msgspec.json.encode(item("lead", {"id": 2**63})), "lead.id: not an id (1..2^63-1): 9223372036854775808"),
        (msgspec.json.encode(item("lead", {"id": 0})), "lead.id: not an id (1..2^63-1): 0"),
        (msgspec.json.encode(item("lead", {"id": 1}, sequence=2**63)), "lead item meta.sequence: out of range"),
        (msgspec.json.encode(item("lead", {"id": 1}, sequence=-1)), "lead item meta.sequence: out of range"),
    ],
)
def test_ids_and_versions_beyond_what_the_store_holds_are_refused(raw: bytes, reason: str) -> None:
    """A person's references, a record's own id and its sequence must fit a SQLite integer: anything else fails
    normalising (the item is quarantined with the reason) instead of failing its whole page at the store."""
    with pytest.raises(NormaliseError) as caught:
        normalise("leads" if b'"lead"' in raw else "contacts", raw)
    assert str(caught.value).startswith(reason)


def test_product_prices_accept_numbers_and_keep_each_currency() -> None:
    """A product's prices are Decimals per currency, whether Sell sends strings or numbers; price_in finds one."""
    data = {"id": 1, "prices": [{"amount": 10, "currency": "PLN"}, {"amount": "2.50", "currency": "EUR"}]}
    product = run("products", item("product", data)).record
    assert isinstance(product, Product)
    assert (product.price_in("EUR"), product.price_in("PLN"), product.price_in("USD")) == (
        Decimal("2.50"),
        Decimal(10),
        None,
    )


def test_meta_becomes_the_event_fields() -> None:
    """sequence, event_id, event_cause and action come from meta; event_time becomes an aware UTC datetime."""
    wire = item("lead", lead(), action="updated", sequence=4, event_time="2024-03-01T12:15:02+02:00",
                cause="system", event_id="c2FtcGxlLWV2ZW50LWlkAA", previous={})  # fmt: skip
    event = run("leads", wire)
    assert (event.action, event.sequence, event.event_id, event.cause) == (
        "updated", 4, "c2FtcGxlLWV2ZW50LWlkAA", "system",
    )  # fmt: skip
    assert event.occurred_at == T0
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert event.previous == {}


def test_naive_event_time_is_taken_as_utc() -> None:
    """An event_time without an offset is UTC, never local time."""
    event = run("leads", item("lead", lead(), event_time="2024-03-01T10:15:02"))
    assert event.occurred_at == T0
    assert event.occurred_at.tzinfo is not None


def test_event_survives_the_store_round_trip() -> None:
    """What normalise returns encodes and decodes back to an equal event (as the store keeps it)."""
    wire = item("deal", {"id": 3, "value": "10.50", "custom_field_values": [custom("Go-live", "date", "4/27/2016")]})
    event = run("deals", wire)
    assert decode_event(encode(event)) == event


def test_unknown_attributes_are_ignored() -> None:
    """Attributes Sell adds later (at any level) do not break normalising."""
    data = lead(email="a@example.org", brand_new_attribute={"x": [1, 2]}, address={**ADDRESS, "district": "Mokotów"})
    wire = item("lead", data)
    wire["meta"]["brand_new_meta"] = True
    wire["surprise"] = 1
    assert run("leads", wire).record == Lead(id=1, email="a@example.org", address=Address(**ADDRESS))


# ---------------------------------------------------------------------------------------------------------------
# tags, custom values, money, addresses


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ([tag("vip", id=1), tag("Überprüfen", id=2)], ["vip", "Überprüfen"]),
        (["plain"], ["plain"]),
        ([], []),
        (None, []),
    ],
)
def test_tags_become_names(tags: Any, expected: list[str]) -> None:
    """Tag objects (and plain strings, should Sell send them) become tag names; null is no tags."""
    assert run("leads", item("lead", lead(tags=tags))).record.tags == expected


CUSTOM_VALUES = [
    ("bool", True, True),
    ("bool", False, False),
    ("number", "123.45", "123.45"),
    ("number", "123.450", "123.45"),
    ("number", "1E+2", "100"),
    ("number", "0.00", "0"),
    ("number", 1250, "1250"),
    ("number", 12.5, "12.5"),
    ("date", "4/27/2016", "2016-04-27"),
    ("date", "2016-04-27", "2016-04-27"),
    ("datetime", "4/28/2016 6:00", "2016-04-28T06:00:00"),
    ("datetime", "12/1/2016 18:30:15", "2016-12-01T18:30:15"),
    ("datetime", "4/28/2016 6:05 PM", "2016-04-28T18:05:00"),
    ("list", {"id": 1, "name": "Gold"}, "Gold"),
    ("multi_select_list", [{"id": 1, "name": "CRM"}, {"id": 2, "name": "SMS"}], ["CRM", "SMS"]),
    ("multi_select_list", [], []),
    ("address", ADDRESS, Address(**ADDRESS)),
    ("address", {"line1": None, "city": "Łódź"}, Address(city="Łódź")),
    ("email", "billing@example.org", "billing@example.org"),
    ("phone", "+48 600 100 200", "+48 600 100 200"),
    ("string", "REF-1", "REF-1"),
    ("text", "Długi opis ☕", "Długi opis ☕"),
    ("url", "https://example.org", "https://example.org"),
    ("number", None, None),
    ("list", None, None),
    ("some_future_type", "kept as text", "kept as text"),
]


@pytest.mark.parametrize(("type_", "value", "expected"), CUSTOM_VALUES)
def test_custom_field_values_become_plain_values(type_: str, value: Any, expected: Any) -> None:
    """Each custom field type's wire value becomes the plain value events.py documents, keyed by field name."""
    data = lead(custom_field_values=[custom("Field", type_, value), custom("Other", "string", "x", id=2)])
    assert run("leads", item("lead", data)).record.custom == {"Field": expected, "Other": "x"}


@pytest.mark.parametrize(
    ("type_", "value", "reason"),
    [
        ("number", "abc", "not a decimal: 'abc'"),
        ("number", True, "not a decimal: True"),
        ("bool", "yes", "not true or false: 'yes'"),
        ("date", "31/31/2016", "not a date: '31/31/2016'"),
        ("datetime", "tomorrow", "not a date and time: 'tomorrow'"),
        ("datetime", "4/28/2016 13:00 PM", "not a date and time"),
        ("list", 5, "not a list option: 5"),
        ("multi_select_list", "CRM", "not a list of options: 'CRM'"),
        ("address", "Main St 1", "not an address"),
        ("text", 5, "not text: 5"),
    ],
)
def test_bad_custom_values_name_the_field(type_: str, value: Any, reason: str) -> None:
    """A custom value that does not fit its type raises NormaliseError naming the record, attribute and field."""
    data = lead(custom_field_values=[custom("Budget", type_, value)])
    with pytest.raises(NormaliseError) as caught:
        run("leads", item("lead", data))
    assert str(caught.value).startswith("lead.custom_field_values[Budget]: ")
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1250.00", Decimal("1250.00")),
        ("0.10", Decimal("0.10")),
        (" 99.5 ", Decimal("99.5")),
        (1250, Decimal(1250)),
        (12.25, Decimal("12.25")),
        ("", None),
        (None, None),
    ],
)
def test_money_becomes_decimal(value: Any, expected: Decimal | None) -> None:
    """Money strings (and numbers) become Decimals with their scale kept; null and "" are no value."""
    event = run("deals", item("deal", {"id": 3, "value": value}))
    assert event.record.value == expected
    if expected is not None:
        assert str(event.record.value) == str(expected)


@pytest.mark.parametrize(
    ("stream", "kind", "data", "reason"),
    [
        ("deals", "deal", {"id": 3, "value": "abc"}, "deal.value: not a decimal: 'abc'"),
        ("deals", "deal", {"id": 3, "value": "NaN"}, "deal.value: not a decimal: 'NaN'"),
        ("deals", "deal", {"id": 3, "value": True}, "deal.value: expected"),
        ("deals", "deal", {"id": 3, "estimated_close_date": "soon"}, "deal.estimated_close_date: not a date: 'soon'"),
        ("line_items", "line_item", {"id": 8, "price": "1,50"}, "line_item.price: not a decimal: '1,50'"),
        ("orders", "order", {"id": 7, "discount": "ten"}, "order.discount: not a decimal: 'ten'"),
        ("leads", "lead", {"id": 1, "owner_id": "x"}, "lead.owner_id: expected `int | null`, got `str`"),
        ("leads", "lead", {"id": 1, "address": "Main St"}, "lead.address: expected `object | null`, got `str`"),
        ("leads", "lead", {"id": 1, "created_at": "yesterday"}, "lead.created_at: invalid RFC3339"),
        ("leads", "lead", {"first_name": "No id"}, "lead.id: missing"),
    ],
)
def test_bad_values_raise_with_the_attribute(stream: str, kind: str, data: dict[str, Any], reason: str) -> None:
    """A value that cannot be normalised raises NormaliseError with a reason naming the attribute."""
    with pytest.raises(NormaliseError) as caught:
        run(stream, item(kind, data))
    assert str(caught.value).startswith(reason)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (ADDRESS, Address(**ADDRESS)),
        ({"line1": "", "city": "", "postal_code": "", "state": "", "country": "USA"}, Address(country="USA")),
        ({"line1": None, "city": "Praha", "postal_code": None, "state": None, "country": None}, Address(city="Praha")),
        ({"city": "Dublin"}, Address(city="Dublin")),
        ({"postal_code": 10115}, Address(postal_code="10115")),
        (None, None),
    ],
)  # fmt: skip
def test_addresses_flatten_with_empty_parts(address: Any, expected: Address | None) -> None:
    """Addresses become Address structs; missing or null parts are "", a null address is None."""
    record = run("contacts", item("contact", {"id": 2, "address": address, "shipping_address": address})).record
    assert record.address == expected
    assert record.shipping_address == expected


# ---------------------------------------------------------------------------------------------------------------
# previous


def _custom_list(budget: Any, tier: Any) -> list[dict[str, Any]]:
    return [custom("Budget", "number", budget, id=1), custom("Tier", "list", tier, id=2)]


PREVIOUS = [
    pytest.param("leads", "lead", {"title": "CTO"}, {"title": "CEO"}, {"title": "CEO"}, id="plain"),
    pytest.param("leads", "lead", {"title": "CTO"}, {"title": None}, {"title": ""}, id="null-old-value"),
    pytest.param(
        "leads", "lead", {"email": "new@example.org"}, {"email": "old@example.org"}, {"email": "old@example.org"},
        id="email",
    ),
    pytest.param(
        "leads", "lead", {"tags": [tag("vip")]}, {"tags": [tag("cold", id=2), tag("vip")]}, {"tags": ["cold", "vip"]},
        id="tags",
    ),
    pytest.param(
        "leads", "lead",
        {"custom_field_values": _custom_list("20.00", {"id": 1, "name": "Gold"})},
        {"custom_field_values": _custom_list("10.00", {"id": 1, "name": "Gold"})},
        {"custom": {"Budget": "10"}},
        id="custom-full-old-list",
    ),
    pytest.param(
        "leads", "lead",
        {"custom_field_values": _custom_list("20.00", {"id": 2, "name": "Silver"})},
        {"custom_field_values": []},
        {"custom": {"Budget": None, "Tier": None}},
        id="custom-set-from-nothing",
    ),
    pytest.param(
        "leads", "lead",
        {"custom_field_values": _custom_list("20.00", None)},
        {"custom_field_values": _custom_list("20.00", {"id": 1, "name": "Gold"})},
        {"custom": {"Tier": "Gold"}},
        id="custom-cleared",
    ),
    pytest.param(
        "leads", "lead",
        {"custom_field_values": [custom("Budget", "number", None)]},
        {"custom_field_values": [custom("Tier", "list", {"id": 1, "name": "Gold"}, id=2)]},
        {"custom": {"Tier": "Gold"}},
        id="custom-field-gone-from-the-list",
    ),
    pytest.param(
        "leads", "lead", {"custom_field_values": _custom_list("1", None)}, {"custom_field_values": None},
        {"custom": {"Budget": None}}, id="custom-null-before",
    ),
    pytest.param(
        "contacts", "contact", {"contact_id": 9}, {"contact_id": 8}, {"organization_id": 8}, id="contact_id-renamed"
    ),
    pytest.param(
        "contacts", "contact", {"address": ADDRESS}, {"address": {"city": "Kraków", "country": "Polska"}},
        {"address": Address(city="Kraków", country="Polska")}, id="address",
    ),
    pytest.param(
        "deals", "deal", {"stage_id": 4, "value": "20.00", "last_stage_change_at": "2024-03-01T10:00:00Z"},
        {"stage_id": 3, "value": "10.00", "last_stage_change_at": None, "last_stage_change_by_id": None},
        {"stage_id": 3, "value": Decimal("10.00"), "last_stage_change_at": None},
        id="deal-stage-value",
    ),
    pytest.param(
        "custom_fields", "custom_field", {"name": "Budget (v2)"}, {"name": "Budget"}, {"name": "Budget"}, id="rename"
    ),
    pytest.param("leads", "lead", {"title": "CTO"}, {"updated_at": "x", "id": 5}, {}, id="unknown-keys-dropped"),
]  # fmt: skip


@pytest.mark.parametrize(("stream", "kind", "data", "previous", "expected"), PREVIOUS)
def test_previous_is_normalised_like_the_record(
    stream: str, kind: str, data: dict[str, Any], previous: dict[str, Any], expected: dict[str, Any]
) -> None:
    """meta.previous is keyed by the record's attribute names, with old values normalised the same way."""
    event = run(stream, item(kind, {"id": 1, **data}, action="updated", sequence=2, previous=previous))
    assert event.previous == expected


def test_bad_previous_value_names_it() -> None:
    """An old value that cannot be normalised raises NormaliseError naming meta.previous and the attribute."""
    with pytest.raises(NormaliseError, match=r"^deal\.previous\.value: not a decimal: 'x'"):
        run("deals", item("deal", {"id": 3, "value": "1"}, action="updated", previous={"value": "x"}))


# ---------------------------------------------------------------------------------------------------------------
# deletes


def test_delete_with_only_the_id_gives_a_bare_record() -> None:
    """A deleted item whose data is only {id} yields a record holding only the id."""
    event = run("contacts", item("contact", {"id": 2}, action="deleted", sequence=5))
    assert event.action == "deleted"
    assert event.record == Contact(id=2)
    assert msgspec.json.decode(encode(event.record)) == {"kind": "contact", "id": 2}


def test_delete_with_the_last_snapshot_keeps_it() -> None:
    """A deleted item carrying the last snapshot yields the full record (its e-mail stays known)."""
    event = run(
        "leads", item("lead", lead(email="gone@example.org", first_name="Ada"), action="deleted", cause="system")
    )
    assert event.record == Lead(id=1, email="gone@example.org", first_name="Ada")
    assert (event.action, event.cause) == ("deleted", "system")


# ---------------------------------------------------------------------------------------------------------------
# items that are not events of the stream


def _with_meta(**changes: Any) -> bytes:
    wire = item("lead", lead())
    wire["meta"].update(changes)
    return msgspec.json.encode({**wire, "meta": {k: v for k, v in wire["meta"].items() if v is not None}})


@pytest.mark.parametrize(
    ("stream", "raw", "reason"),
    [
        ("contacts", msgspec.json.encode(item("lead", lead())), "contact: an item of type 'lead' in the contacts"),
        ("deals", msgspec.json.encode(item("contact", {"id": 1, "is_organization": "no"})),
         "deal: an item of type 'contact' in the deals stream"),
        ("tasks", msgspec.json.encode(item("task", {"id": 1})), "unknown stream 'tasks'"),
        ("leads", _with_meta(event_type="merged"), "lead: unknown meta.event_type 'merged'"),
        ("leads", _with_meta(sequence=None), "lead item meta.sequence: missing"),
        ("leads", _with_meta(event_time="soon"), "lead item meta.event_time: invalid RFC3339"),
        ("leads", msgspec.json.encode({"data": {"id": 1}}), "lead item meta: missing"),
        ("leads", msgspec.json.encode({"meta": item("lead", {})["meta"]}), "lead item data: missing"),
        ("leads", b'{"data": {"id": 1}, "meta": ', "lead: not valid JSON"),
        ("leads", b"[1, 2]", "lead item expected `object`, got `array`"),
    ],
)  # fmt: skip
def test_items_that_are_not_events_of_the_stream_raise(stream: str, raw: bytes, reason: str) -> None:
    """A wrong meta.type, unknown stream or event type, missing meta fields or bad JSON raise NormaliseError."""
    with pytest.raises(NormaliseError) as caught:
        normalise(stream, raw)
    assert str(caught.value).startswith(reason)


# ---------------------------------------------------------------------------------------------------------------
# pages


def _page(items: list[Any], meta: dict[str, Any]) -> bytes:
    return msgspec.json.encode({"items": items, "meta": meta})


def test_decode_page_keeps_items_raw() -> None:
    """A page decodes to its raw items (byte-exact), the position and the top flag (links.next is not needed)."""
    one, two = item("lead", lead()), item("lead", {"id": 2, "first_name": "Zoë"}, sequence=3)
    body = _page([one, two], {"links": {"next": "https://api.getbase.com/v3/leads/stream?position=cD0y"},
                              "position": "cD0y", "top": False})  # fmt: skip
    page = decode_page(body)
    assert [msgspec.json.decode(raw) for raw in page.items] == [one, two]
    assert (page.position, page.top) == ("cD0y", False)
    assert normalise("leads", bytes(page.items[1])).record_id == 2


@pytest.mark.parametrize(
    ("meta", "top"),
    [
        ({"links": {"next": ""}, "position": "cD0z", "top": True}, True),
        ({"links": {"next": None}, "position": "cD0z", "top": True}, True),
        ({"links": {}, "position": "cD0z", "top": False}, False),
        ({"position": "cD0z", "top": False}, False),
    ],
)
def test_decode_page_accepts_empty_pages_and_links(meta: dict[str, Any], top: bool) -> None:
    """Empty pages (with top false too) and an empty, null or missing links.next are valid pages."""
    page = decode_page(_page([], meta))
    assert (page.items, page.position, page.top) == ([], "cD0z", top)


def test_a_bad_item_does_not_spoil_the_page() -> None:
    """An item that cannot be normalised is still returned raw, so the poller can quarantine just that one."""
    good, bad = item("lead", lead()), item("lead", {"id": "one"})
    page = decode_page(_page([good, bad], {"position": "cD0y", "top": True}))
    assert normalise("leads", bytes(page.items[0])).record_id == 1
    with pytest.raises(NormaliseError, match=r"^lead\.id: "):
        normalise("leads", bytes(page.items[1]))


@pytest.mark.parametrize(
    ("fault", "text"),
    [
        pytest.param(b'"Zo\\ud83d"', "a lone surrogate", id="lone-surrogate"),
        pytest.param(b'"Zo\xff\xfe"', "bytes that are not UTF-8", id="invalid-utf8"),
        pytest.param(b"NaN", "a NaN", id="nan"),
    ],
)
def test_an_item_a_strict_parser_refuses_is_quarantined_not_the_page(fault: bytes, text: str) -> None:
    """A page whose only fault is inside one item (a lone surrogate, bytes that are not UTF-8, NaN) still
    decodes: the other items normalise as they are, and the faulty one, kept raw, fails alone."""
    good, later = msgspec.json.encode(item("lead", lead())), msgspec.json.encode(item("lead", {"id": 2}, sequence=2))
    bad = msgspec.json.encode(item("lead", {"id": 3, "first_name": "__FAULT__"})).replace(b'"__FAULT__"', fault)
    body = b'{"items": [' + b",".join((good, bad, later)) + b'], "meta": {"position": "cD0y", "top": true}}'
    page = decode_page(body)
    assert (len(page.items), page.position, page.top) == (3, "cD0y", True)
    assert [normalise("leads", bytes(page.items[n])).record_id for n in (0, 2)] == [1, 2]
    with pytest.raises(NormaliseError, match=r"^lead: not valid JSON"):
        normalise("leads", bytes(page.items[1]))
    assert b'"id":3' in bytes(page.items[1]).replace(b" ", b"")  # the body kept for the quarantine


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"items": [', "invalid JSON"),
        (b'{"items": ["Zo\\ud83d"], "meta": {"position": "p"}', "invalid JSON"),
        (b'{"items": ["Zo\\ud83d"], "meta": {"position": 5, "top": true}}', "invalid JSON"),
        (b"", "invalid JSON"),
        (_page([], {"top": True}), "meta.position: missing"),
        (_page([], {"position": "cD0z"}), "meta.top: missing"),
        (_page([], {"position": "", "top": True}), "meta.position is empty"),
        (_page([], {"position": 5, "top": True}), "meta.position: expected `str`, got `int`"),
        (_page([], {"position": "cD0z", "top": "false"}), "meta.top: expected `bool`, got `str`"),
        (_page([], {"links": "next", "position": "cD0z", "top": True}), "meta.links: expected `object | null`"),
        (msgspec.json.encode({"items": {}, "meta": {"position": "p", "top": True}}), "items: expected `array`"),
        (msgspec.json.encode({"items": []}), "meta: missing"),
        (msgspec.json.encode({"meta": {"position": "p", "top": True}}), "items: missing"),
        (b'"a string"', "expected `object`, got `str`"),
        (msgspec.json.encode({"errors": [{"error": {"code": "server_error"}}]}), "missing"),
    ],
)
def test_decode_page_rejects_what_is_not_a_page(body: bytes, reason: str) -> None:
    """Bad JSON, missing meta fields, wrong types or an error body raise MalformedPage with a clear reason."""
    with pytest.raises(MalformedPage) as caught:
        decode_page(body)
    assert str(caught.value).startswith("not a Firehose page: ")
    assert reason in str(caught.value)


def test_event_time_with_an_offset_is_converted_to_utc() -> None:
    """A non-UTC event_time (should one appear) is converted to UTC, not relabelled."""
    moment = datetime(2024, 3, 1, 5, 15, 2, tzinfo=timezone(timedelta(hours=-5)))
    assert run("leads", item("lead", lead(), event_time=moment.isoformat())).occurred_at == T0

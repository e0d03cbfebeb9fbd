"""Core API v2 items as snapshot ChangeEvents: the same normalised records a Firehose item gives, whatever v2's own
shapes (custom fields by name, tags as strings, money as strings or numbers, ids as numbers or strings)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncd.errors import MalformedPage
from syncd.events import SNAPSHOT_CAUSE, Address, Contact, Deal, Lead, LineItem, Source
from syncd.sell.normalise import NormaliseError, normalise
from syncd.sell.snapshot import Context, decode_collection, item_id, served_at, snapshot

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TYPES = {"lead": {"Tier": "list", "Score": "number", "Since": "date", "Met": "datetime", "Skills": "multi_select_list"}}


def v2(kind: str, data: dict[str, Any], version: Any = 3) -> bytes:
    return json.dumps({"data": data, "meta": {"type": kind, "version": version}}).encode()


def ctx(**implied: Any) -> Context:
    return Context(TYPES, implied, NOW)


def test_a_v2_lead_is_the_record_its_firehose_item_gives() -> None:
    """A lead read from v2 normalises to the same Lead as the Firehose item of the same state."""
    firehose = {
        "data": {
            "id": 9001,
            "first_name": "Ada",
            "email": "ada@example.org",
            "owner_id": 7,
            "tags": [{"data": {"id": 1, "name": "vip", "resource_type": "lead"}, "meta": {"type": "tag"}}],
            "custom_field_values": [
                {"value": {"id": 2, "name": "Gold"},
                 "custom_field": {"data": {"id": 5, "name": "Tier", "type": "list"}}},
                {"value": "12.50", "custom_field": {"data": {"id": 6, "name": "Score", "type": "number"}}},
                {"value": "4/27/2016", "custom_field": {"data": {"id": 7, "name": "Since", "type": "date"}}},
            ],
            "address": {"line1": "1 Main St", "city": "Kraków", "postal_code": 30001, "state": "", "country": "PL"},
        },
        "meta": {"type": "lead", "event_type": "updated", "event_id": "e1", "event_time": "2024-03-01T10:00:00Z",
                 "sequence": 3},
    }  # fmt: skip
    stream = normalise("leads", json.dumps(firehose).encode()).record
    data = {
        "id": 9001,
        "first_name": "Ada",
        "email": "ada@example.org",
        "owner_id": "7",
        "tags": ["vip"],
        "custom_fields": {"Tier": "Gold", "Score": "12.50", "Since": "4/27/2016"},
        "address": {"line1": "1 Main St", "city": "Kraków", "postal_code": 30001, "state": "", "country": "PL"},
        "updated_at": "2024-03-01T10:00:00Z",
    }
    event = snapshot("leads", "lead", v2("lead", data), ctx())
    assert event.record == stream
    assert isinstance(event.record, Lead)
    assert event.record.custom == {"Tier": "Gold", "Score": "12.5", "Since": "2016-04-27"}
    assert event.record.address == Address(line1="1 Main St", city="Kraków", postal_code="30001", country="PL")
    assert (event.action, event.sequence, event.cause) == ("snapshot", 3, SNAPSHOT_CAUSE)
    assert event.occurred_at == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert event.identity == ("lead", 9001, 3, "snapshot")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("1250.00", Decimal("1250.00"), id="string"),
        pytest.param(1250.5, Decimal("1250.5"), id="number"),
        pytest.param(1250, Decimal("1250"), id="integer"),
        pytest.param(None, None, id="null"),
    ],
)
def test_money_as_strings_or_numbers(value: Any, expected: Decimal | None) -> None:
    """A deal's value reads the same whether v2 sends a decimal string or a number."""
    event = snapshot("deals", "deal", v2("deal", {"id": 3, "value": value, "stage_id": "8001"}), ctx())
    assert isinstance(event.record, Deal)
    assert (event.record.value, event.record.stage_id) == (expected, 8001)


@pytest.mark.parametrize("record_id", [9001, "9001"])
def test_ids_as_numbers_or_strings(record_id: Any) -> None:
    """The record's own id and the ids of others read as numbers or as strings of digits."""
    data = {"id": record_id, "contact_id": str(record_id), "owner_id": 4, "is_organization": False}
    event = snapshot("contacts", "contact", v2("contact", data), ctx())
    assert isinstance(event.record, Contact)
    assert (event.record_id, event.record.organization_id, event.record.owner_id) == (9001, 9001, 4)


def test_the_listing_implies_what_v2_leaves_out() -> None:
    """A line item read through its order gets the order and the deal; a lead source gets its resource type (and
    the kind the shadow keeps lead sources under)."""
    line = snapshot("line_items", "line_item", v2("line_item", {"id": 6, "price": "9.90"}), ctx(order_id=5, deal_id=3))
    assert isinstance(line.record, LineItem)
    assert (line.record.order_id, line.record.deal_id, line.record.price) == (5, 3, Decimal("9.90"))
    source = snapshot("sources", "source", v2("lead_source", {"id": 1, "name": "Web"}), ctx(resource_type="lead"))
    assert isinstance(source.record, Source)
    assert (source.kind, source.record.resource_type) == ("lead_source", "lead")


@pytest.mark.parametrize(
    ("version", "expected"),
    [pytest.param(7, 7, id="number"), pytest.param("7", 7, id="string"), pytest.param(None, 0, id="none")],
)
def test_the_version_becomes_the_sequence(version: Any, expected: int) -> None:
    """meta.version (a number or digits) is the snapshot's sequence; without one it is 0."""
    assert snapshot("leads", "lead", v2("lead", {"id": 1}, version), ctx()).sequence == expected


def test_without_updated_at_the_time_is_when_sell_served_it() -> None:
    """A record without updated_at is as fresh as the page that served it (its Date header, a second early)."""
    context = Context({}, {}, served_at("Tue, 01 Dec 2026 12:00:05 GMT", 0.0))
    assert snapshot("leads", "lead", v2("lead", {"id": 1}), context).occurred_at == datetime(
        2026, 12, 1, 12, 0, 4, tzinfo=UTC
    )
    assert served_at(None, NOW.timestamp()) == NOW
    assert served_at("not a date", NOW.timestamp()) == NOW


def test_custom_fields_without_a_definition_keep_their_plain_shape() -> None:
    """A custom field the definitions do not name is read by the shape of its value."""
    office = {"line1": "1 Main St", "city": "Kraków", "postal_code": "", "state": "", "country": "Poland"}
    data = {"id": 1, "custom_fields": {"Unknown": "x", "Flag": True, "Many": ["a", "b"], "Count": 3, "Office": office}}
    record = snapshot("leads", "lead", v2("lead", data), ctx()).record
    assert isinstance(record, Lead)
    assert record.custom == {
        "Unknown": "x",
        "Flag": True,
        "Many": ["a", "b"],
        "Count": "3",
        "Office": Address(line1="1 Main St", city="Kraków", country="Poland"),
    }


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        pytest.param("lead", {"first_name": "A"}, "lead.id: missing", id="no-id"),
        pytest.param("lead", {"id": "x"}, "lead.id: not an id", id="id-not-digits"),
        pytest.param("lead", {"id": 2**64}, "lead.id", id="id-beyond-sqlite"),
        pytest.param("deal", {"id": 1, "value": "abc"}, "deal.value: not a decimal", id="bad-money"),
        pytest.param("lead", {"id": 1, "custom_fields": {"Since": "31/31/2016"}}, "custom_fields[Since]", id="date"),
        pytest.param("lead", {"id": 1, "email": 5}, "lead.email", id="wrong-type"),
    ],
)
def test_what_cannot_be_read_raises_naming_the_attribute(kind: str, data: dict[str, Any], message: str) -> None:
    """Bad values raise NormaliseError naming where they were (the backfill quarantines the item)."""
    with pytest.raises(NormaliseError, match=message.replace("[", r"\[").replace("]", r"\]")):
        snapshot(f"{kind}s", kind, v2(kind, data), ctx())


def test_a_collection_page_and_its_next_page_link() -> None:
    """A list page's items stay raw; `links.next_page` says whether another page follows."""
    body = json.dumps({"items": [{"data": {"id": 5}}], "meta": {"links": {"next_page": "https://x/v2/leads?page=2"}}})
    page = decode_collection(body.encode())
    assert page.more is True
    assert [item_id(bytes(item)) for item in page.items] == [5]
    assert decode_collection(b'{"items": [], "meta": {"links": {}}}').more is False
    assert item_id(b'{"data": {"id": "x"}}') is None


@pytest.mark.parametrize("body", [b"<html>502</html>", b'{"items": 5}', b"[]", b""])
def test_what_is_not_a_list_page_is_malformed(body: bytes) -> None:
    """An HTML page from a proxy, or JSON of another shape, raises MalformedPage (retried, never skipped)."""
    with pytest.raises(MalformedPage):
        decode_collection(body)


def test_an_unpaired_surrogate_spoils_only_its_own_item() -> None:
    """A page whose JSON only an item's unpaired surrogate makes invalid is read item by item: that item cannot be
    read (the backfill quarantines it with its body), the others go on, and the order of ids holds."""
    body = (
        rb'{"items": [{"data": {"id": 5, "first_name": "a\ud800b"}, "meta": {"type": "lead"}},'
        rb' {"data": {"id": 6, "first_name": "Bo"}, "meta": {"type": "lead"}}], "meta": {"links": {"next_page": "x"}}}'
    )
    page = decode_collection(body)
    assert page.more is True
    assert [item_id(bytes(item)) for item in page.items] == [5, 6]
    with pytest.raises(NormaliseError, match="not valid JSON"):
        snapshot("leads", "lead", bytes(page.items[0]), ctx())
    assert snapshot("leads", "lead", bytes(page.items[1]), ctx()).record_id == 6

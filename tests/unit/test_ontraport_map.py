"""The Ontraport mapper (pure): Sell people as Ontraport contact fields, value conversion by field type, and the
check of a `[sinks.ontraport.fields]` table against the account's contact meta."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncd.errors import PermanentError
from syncd.events import Address, Contact, Lead
from syncd.sandbox.ontraport.fields import CONTACT_FIELDS, DEFAULT_CUSTOM_FIELDS
from syncd.sinks.base import DestinationField
from syncd.sinks.mapping import digest, external_id, parse_fields
from syncd.sinks.ontraport.map import (
    Related,
    check_mapping,
    map_person,
    missing_targets,
    parse_meta,
)
from syncd.sinks.ontraport.values import to_field

# The sandbox account's `GET /1/Contacts/meta` data: the contract's fields plus custom f1557..f1561.
META_DATA = {"0": {"name": "Contact", "fields": {f.key: f.meta() for f in (*CONTACT_FIELDS, *DEFAULT_CUSTOM_FIELDS)}}}
META = parse_meta(META_DATA)
EXT = "f1558"
ADA = Address(line1="1 Analytical St", city="London", postal_code="NW1", state="Greater London", country="UK")
DEFAULT_KEYS = {
    "firstname", "lastname", "email", "address", "city", "state", "zip", "country", "office_phone", "cell_phone",
    "sms_number", "fax", "title", "website",
}  # fmt: skip


def lead(**fields: Any) -> Lead:
    return Lead(id=9, **fields)


def contact(**fields: Any) -> Contact:
    return Contact(id=5, **fields)


def mapped(record: Lead | Contact, table: dict[str, str] | None = None, **kwargs: Any) -> dict[str, str]:
    return map_person(record, rows=parse_fields("ontraport", table or {}), meta=META, **kwargs)


def field(type_: str, key: str = "f2000", options: dict[str, str] | None = None) -> DestinationField:
    return DestinationField(key=key, label="Test", type=type_, editable=True, options=options)


# ---------------------------------------------------------------------------------------------------------------
# the connector's default field list


@pytest.mark.parametrize(
    ("record", "related", "key", "expected"),
    [
        (lead(first_name="Ada"), None, "firstname", "Ada"),
        (lead(last_name="Lovelace"), None, "lastname", "Lovelace"),
        (lead(email="  ada@example.org "), None, "email", "ada@example.org"),
        (lead(address=ADA), None, "address", "1 Analytical St"),
        (lead(address=ADA), None, "city", "London"),
        (lead(address=Address(state="California", country="USA")), None, "state", "CA"),
        (lead(address=Address(state="New South Wales", country="Australia")), None, "state", "NSW"),
        (lead(address=Address(state="Texas")), None, "state", "TX"),
        (lead(address=Address(state="Atlantis", country="USA")), None, "state", "Atlantis"),
        (lead(address=ADA), None, "zip", "NW1"),
        (lead(address=ADA), None, "country", "GB"),
        (lead(address=Address(country="Deutschland")), None, "country", "DE"),
        (lead(address=Address(country="Poland")), None, "country", "PL"),
        (lead(address=Address(country="Narnia")), None, "country", "Narnia"),
        (lead(phone="+44 20 1234"), None, "office_phone", "+44 20 1234"),
        (lead(mobile="+44 7700 900"), None, "cell_phone", "+44 7700 900"),
        (lead(mobile="+44 7700 900"), None, "sms_number", "+44 7700 900"),
        (lead(fax="+44 20 9999"), None, "fax", "+44 20 9999"),
        (lead(organization_name="Analytical Engines Ltd"), None, "company", "Analytical Engines Ltd"),
        (contact(), Related(company="Difference Engines plc"), "company", "Difference Engines plc"),
        (contact(), Related(company=""), "company", ""),
        (lead(title="Countess"), None, "title", "Countess"),
        (lead(website="https://example.org"), None, "website", "https://example.org"),
        (lead(source_id=3), Related(source="Website"), "n_lead_source", "Website"),
        (lead(source_id=3), Related(source="Website"), "l_lead_source", "Website"),
        (lead(source_id=3), Related(source="Website"), "use_utm_names", "1"),
        (lead(), Related(source=""), "n_lead_source", ""),
    ],
)
def test_default_fields(record: Lead | Contact, related: Related | None, key: str, expected: str) -> None:
    """Every field of the connector's list is filled from its Sell attribute (codes for country and state)."""
    assert mapped(record, related=related)[key] == expected


@pytest.mark.parametrize(
    ("record", "expected"), [(lead(), "sell-lead-9"), (contact(), "sell-contact-5")], ids=["lead", "contact"]
)
def test_external_id_field_carries_the_sell_identity(record: Lead | Contact, expected: str) -> None:
    """With external_id_field set, that field holds "sell-<kind>-<id>"; without it, no such key is sent."""
    assert mapped(record, external_id_field=EXT)[EXT] == expected
    assert EXT not in mapped(record)
    assert external_id(Lead(id=9)) == "sell-lead-9"


def test_blank_values_are_sent_as_empty_strings_and_unowned_keys_never() -> None:
    """A record with nothing set sends "" for every owned key (clearing Ontraport) and no key it does not own."""
    payload = mapped(contact(), related=Related(company=None))
    assert set(payload) == DEFAULT_KEYS
    assert set(payload.values()) == {""}
    assert all(isinstance(v, str) for v in mapped(lead(address=ADA, source_id=1), related=Related(source="x")).values())


def test_unknown_related_names_are_not_written() -> None:
    """A company or source syncd has not seen yet is left out rather than blanked."""
    assert "company" not in mapped(contact(), related=Related(company=None))
    payload = mapped(lead(source_id=3), related=Related(source=None))
    assert not {"n_lead_source", "l_lead_source", "use_utm_names"} & set(payload)
    assert "n_lead_source" not in mapped(contact(), related=Related(company="", source="Website"))


def test_email_change_maps_the_new_address() -> None:
    """The payload always carries the latest e-mail; identity (same contact) is the writer's job."""
    assert mapped(lead(email="ada@new.example.org"))["email"] == "ada@new.example.org"


def test_keys_the_account_lacks_are_left_out() -> None:
    """A default key missing from the meta (cell_phone on newer accounts) or read-only there is never sent."""
    meta = {k: v for k, v in META.items() if k != "cell_phone"}
    payload = map_person(lead(mobile="1"), rows=[], meta=meta)
    assert "cell_phone" not in payload
    assert payload["sms_number"] == "1"
    table = parse_fields("ontraport", {"industry": "f1561"})
    assert "f1561" not in map_person(lead(industry="x"), rows=table, meta=META)


# ---------------------------------------------------------------------------------------------------------------
# the [sinks.ontraport.fields] table: every further key of the connector's list


@pytest.mark.parametrize(
    ("sell", "custom", "target", "expected"),
    [
        ("custom.Partner", "12", "freferrer", "12"),
        ("custom.Partner", "13", "lreferrer", "13"),
        ("custom.Birthday", "1990-05-17", "birthday", "642902400"),
        ("custom.Priority", "high", "priority", "8"),
        ("custom.Priority", "Medium", "priority", "9"),
        ("custom.Priority", "LOW", "priority", "10"),
        ("custom.Priority", "10", "priority", "10"),
        ("custom.Stage", "Qualified Lead", "status", "6"),
        ("custom.Stage", "2", "status", "2"),
        ("=0", None, "bulk_mail", "0"),
        ("=Transactional Only", None, "bulk_mail", "0"),
        ("custom.SMS", "Opted-in", "bulk_sms", "1"),
        ("custom.SMS", "0", "bulk_sms", "0"),
        ("custom.Content", "Spring banner", "n_content", "Spring banner"),
        ("custom.Medium", "email", "n_medium", "email"),
        ("custom.Campaign", "Spring", "n_campaign", "Spring"),
        ("custom.Term", "engines", "n_term", "engines"),
        ("custom.Content", "Autumn banner", "l_content", "Autumn banner"),
        ("custom.Medium", "cpc", "l_medium", "cpc"),
        ("custom.Campaign", "Autumn", "l_campaign", "Autumn"),
        ("custom.Term", "looms", "l_term", "looms"),
        ("=1", None, "use_utm_names", "1"),
        ("custom.Referrer", "https://example.org/a", "referral_page", "https://example.org/a"),
        ("custom.Sales", "3", "aff_sales", "3"),
        ("custom.Amount", "1250.50", "aff_amount", "1250.50"),
        ("custom.Program", "4", "program_id", "4"),
        ("custom.PayPal", "pay@example.org", "aff_paypal", "pay@example.org"),
        ("custom.Zone", "Europe/Warsaw", "timezone", "Europe/Warsaw"),
        ("custom.Home", "+48 22 123", "home_phone", "+48 22 123"),
        ("custom.Flat", "Flat 2", "address2", "Flat 2"),
        ("custom.Tier", "Gold", "f1557", "1"),
        ("custom.Tier", "silver", "f1557", "2"),
        ("industry", None, "f1559", "Computing"),
        ("custom.Interests", ["Events", "Webinars"], "f1560", "*/*2*/*3*/*"),
        ("custom.Interests", "Email", "f1560", "*/*1*/*"),
        ("custom.Interests", [], "f1560", ""),
        ("tags", None, "f1559", "vip,engines"),
        ("billing_address.city", None, "address2", "Paris"),
        ("custom.Tier", None, "f1557", ""),
    ],
)
def test_fields_table_rows(sell: str, custom: Any, target: str, expected: str) -> None:
    """Each row of the fields table fills its destination key, converted by that field's type."""
    values = {} if custom is None else {sell.removeprefix("custom."): custom}
    record = contact(
        industry="Computing",
        tags=["vip", "engines"],
        billing_address=Address(city="Paris"),
        custom=values,
    )
    assert mapped(record, {sell: target})[target] == expected


def test_table_rows_win_over_the_defaults() -> None:
    """A row for a default key replaces the default value (here the home number as the office phone)."""
    assert mapped(lead(phone="1", custom={"Office": "2"}), {"custom.Office": "office_phone"})["office_phone"] == "2"


def test_utm_rows_on_contacts_switch_on_utm_names_unless_mapped() -> None:
    """Writing a UTM field by name sets use_utm_names = 1, unless the table maps use_utm_names itself."""
    assert mapped(contact(custom={"C": "Spring"}), {"custom.C": "n_campaign"})["use_utm_names"] == "1"
    table = {"custom.C": "n_campaign", "custom.U": "use_utm_names"}
    assert mapped(contact(custom={"C": "Spring", "U": False}), table)["use_utm_names"] == "0"
    assert "use_utm_names" not in mapped(contact())


@pytest.mark.parametrize(
    ("custom", "target", "reason"),
    [
        ("Platinum", "f1557", "matches no option"),
        (["Email", "Knitting"], "f1560", "matches no option"),
        ("urgent", "priority", "matches no option"),
        ("Signed", "status", "matches no option"),
        ("lots", "aff_amount", "expected a number"),
        ("someday", "birthday", "expected a date"),
        ("Mars/Olympus", "timezone", "IANA time zone"),
        ("1", "bulk_mail", "bulk_mail"),
    ],
)
def test_unconvertible_values_are_a_permanent_error_naming_the_field(custom: Any, target: str, reason: str) -> None:
    """A value the field cannot take dead-letters the record with the config key and field, never the value itself."""
    record = contact(custom={"X": custom})
    with pytest.raises(PermanentError) as caught:
        mapped(record, {"custom.X": target})
    error = caught.value
    assert reason in error.message
    assert 'sinks.ontraport.fields."custom.X"' in error.message
    assert target in error.message
    assert "Platinum" not in error.message and "someday" not in error.message
    assert error.request is not None
    assert json.loads(error.request)["field"] == target


# ---------------------------------------------------------------------------------------------------------------
# conversion by destination field type


@pytest.mark.parametrize(
    ("value", "type_", "options", "expected"),
    [
        ("Hello ", "text", None, "Hello"),
        ("Line one\nLine two", "longtext", None, "Line one\nLine two"),
        ("ada@example.org", "email", None, "ada@example.org"),
        ("+1 555", "phone", None, "+1 555"),
        ("+1 555", "sms", None, "+1 555"),
        (True, "text", None, "1"),
        (["a", "b"], "text", None, "a,b"),
        (Address(line1="1 St", city="Oslo"), "address", None, "1 St, Oslo"),
        (None, "text", None, ""),
        ("123.45", "numeric", None, "123.45"),
        (Decimal("99.90"), "price", None, "99.90"),
        (7, "numeric", None, "7"),
        (False, "numeric", None, "0"),
        ("", "price", None, ""),
        (True, "check", None, "1"),
        (False, "check", None, "0"),
        ("yes", "check", None, "1"),
        ("off", "check", None, "0"),
        (None, "check", None, "0"),
        (date(2016, 4, 27), "fulldate", None, "1461715200"),
        ("2016-04-27", "fulldate", None, "1461715200"),
        ("4/27/2016", "fulldate", None, "1461715200"),
        ("2016-04-28T06:00:00", "timestamp", None, "1461823200"),
        ("2016-04-28T08:00:00+02:00", "timestamp", None, "1461823200"),
        (datetime(2016, 4, 28, 6, tzinfo=UTC), "timestamp", None, "1461823200"),
        ("1461823200", "timestamp", None, "1461823200"),
        (None, "fulldate", None, ""),
        ("Gold", "drop", {"1": "Gold", "2": "Silver"}, "1"),
        (" gold ", "drop", {"1": "Gold", "2": "Silver"}, "1"),
        ("2", "drop", {"1": "Gold", "2": "Silver"}, "2"),
        (["Silver"], "drop", {"1": "Gold", "2": "Silver"}, "2"),
        ("", "drop", {"1": "Gold"}, ""),
        ("Opted-in", "subscription", {"0": "Unconfirmed", "1": "Opted-in"}, "1"),
        (["Red", "Blue"], "list", {"1": "Red", "2": "Blue"}, "*/*1*/*2*/*"),
        ("Red, Blue", "list", {"1": "Red", "2": "Blue"}, "*/*1*/*2*/*"),
        ("Red, White", "list", {"1": "Red, White", "2": "Blue"}, "*/*1*/*"),
        (["Red", "red"], "list", {"1": "Red"}, "*/*1*/*"),
        (None, "list", {"1": "Red"}, ""),
        ("Australia", "country", None, "AU"),
        ("pl", "country", None, "PL"),
        ("Quebec", "state", None, "QC"),
        ("Middle-earth", "state", None, "Middle-earth"),
    ],
)
def test_values_convert_by_field_type(value: Any, type_: str, options: dict[str, str] | None, expected: str) -> None:
    """Each Ontraport field type gets its own string form (decimal, 1/0, epoch seconds, option ids, ISO codes)."""
    assert to_field(value, field(type_, options=options)) == expected


@pytest.mark.parametrize(
    ("text", "country", "expected"),
    [("Quebec", "CA", "QC"), ("California", "US", "CA"), ("California", None, "CA"), ("Nowhere", "US", "Nowhere")],
)
def test_state_fields_use_the_records_country(text: str, country: str | None, expected: str) -> None:
    """A state field takes the code within the record's country, or the text as written when unknown."""
    assert to_field(text, field("state"), country=country) == expected


@pytest.mark.parametrize(
    ("value", "type_", "options"),
    [
        ("abc", "numeric", None),
        ("NaN", "price", None),
        ([1], "numeric", None),
        ("maybe", "check", None),
        (5, "check", None),
        ("2016-13-45", "fulldate", None),
        ("13/45/2016", "fulldate", None),
        (1.5, "fulldate", None),
        ("Bronze", "drop", {"1": "Gold"}),
        (["Gold", "Silver"], "drop", {"1": "Gold", "2": "Silver"}),
        ("Green", "list", {"1": "Red"}),
    ],
)
def test_unconvertible_values_raise_without_repeating_them(
    value: Any, type_: str, options: dict[str, str] | None
) -> None:
    """A value a field type cannot take raises ValueError, and the reason never contains the value."""
    with pytest.raises(ValueError, match=r"expected|option") as caught:
        to_field(value, field(type_, options=options))
    assert str(value) not in str(caught.value)


# ---------------------------------------------------------------------------------------------------------------
# the meta, the digest, the fields check


def test_meta_is_read_with_types_options_and_editable_flags() -> None:
    """parse_meta turns the meta answer into fields with their alias, type, options and editable flag."""
    assert META["firstname"] == DestinationField("firstname", "First Name", "text", True, None)
    assert META["f1557"].options == {"1": "Gold", "2": "Silver"}
    assert (META["f1561"].editable, META["num_purchased"].editable, META["date"].type) == (False, False, "timestamp")
    with pytest.raises(ValueError, match="no fields"):
        parse_meta({"0": {"name": "Contact"}})


def test_digest_is_canonical() -> None:
    """The same fields in any order give one digest; any changed value gives another."""
    assert digest({"a": "1", "b": "2"}) == digest({"b": "2", "a": "1"})
    assert digest({"a": "1", "b": "2"}) != digest({"a": "1", "b": ""})


def test_missing_targets_lists_configured_keys_the_meta_lacks() -> None:
    """Only configured keys (table rows, the external id field) absent from the meta are reported."""
    rows = parse_fields("ontraport", {"industry": "f9999", "title": "f1559"})
    assert missing_targets(rows, META, external_id_field="f8888") == ["f8888", "f9999"]
    assert missing_targets(rows[1:], META, external_id_field=EXT) == []


@pytest.mark.parametrize(
    ("table", "external", "key", "message"),
    [
        ({"industry": "f9999"}, None, 'sinks.ontraport.fields."industry"', "no contact field 'f9999'"),
        ({"industry": "num_purchased"}, None, 'sinks.ontraport.fields."industry"', "read-only"),
        ({"industry": "f1561"}, None, 'sinks.ontraport.fields."industry"', "read-only"),
        ({"=1": "bulk_mail"}, None, 'sinks.ontraport.fields."=1"', 'only set bulk_mail to "0"'),
        ({"custom.Opt": "bulk_mail"}, None, 'sinks.ontraport.fields."custom.Opt"', 'constant "=0"'),
        ({"=Platinum": "f1557"}, None, 'sinks.ontraport.fields."=Platinum"', "matches no option"),
        ({"shoe_size": "f1559"}, None, 'sinks.ontraport.fields."shoe_size"', "unknown Sell field"),
        ({"custom.Nope": "f1559"}, None, 'sinks.ontraport.fields."custom.Nope"', "no custom field named 'Nope'"),
        ({"industry": "f1559", "title": "f1559"}, None, 'sinks.ontraport.fields."title"', "already mapped"),
        ({"industry": "f1558"}, EXT, 'sinks.ontraport.fields."industry"', "external id field"),
        ({}, "f9999", "sinks.ontraport.external_id_field", "no contact field"),
        ({}, "f1557", "sinks.ontraport.external_id_field", "must hold text"),
        ({}, "f1561", "sinks.ontraport.external_id_field", "read-only"),
    ],
)
def test_check_mapping_names_the_config_key(
    table: dict[str, str], external: str | None, key: str, message: str
) -> None:
    """Each kind of broken row (or external id field) is reported under its own config key with the reason."""
    problems = check_mapping(
        parse_fields("ontraport", table), META, custom_names=frozenset({"Opt"}), external_id_field=external
    )
    assert [(p.key, message in p.message) for p in problems] == [(key, True)]
    assert str(problems[0]).startswith(key + ": ")


def test_check_mapping_accepts_a_good_table() -> None:
    """A table of known Sell fields to editable keys, with a valid constant, has no problems."""
    table = {"=0": "bulk_mail", "custom.Tier": "f1557", "industry": "f1559", "custom.Birthday": "birthday"}
    rows = parse_fields("ontraport", table)
    assert check_mapping(rows, META, custom_names=frozenset({"Tier", "Birthday"}), external_id_field=EXT) == []
    assert check_mapping(rows, META, custom_names=None) == []

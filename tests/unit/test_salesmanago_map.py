"""Sell lead/contact → SALESmanago upsert item: every default field, every `[fields]` target, e-mail changes, tags,
the digest, what is kept for the next write, and the mapping checks (syncd.sinks.salesmanago.map)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from syncd.config import SalesmanagoConfig, SalesmanagoTags
from syncd.events import Address, Contact, CustomValue, Lead
from syncd.sinks.mapping import FieldMapping, parse_fields
from syncd.sinks.salesmanago.map import LastWrite, MappedContact, check_mapping, map_person, wanted_tags
from syncd.sinks.salesmanago.targets import parse_target

CONFIG = SalesmanagoConfig(base_url="http://127.0.0.1:9", client_id="c-1", owner="sales@example.com")
ADDRESS = Address(line1="12 Byron St", postal_code="N1 9GU", city="London", state="London", country="United Kingdom")
NO_VALUE = object()  # the item has nothing at this path

# SALESmanago API documentation's example body of `contact/upsert`, as printed (auth placeholders included).
CONTRACT_UPSERT_EXAMPLE = """
{ "clientId": "…", "apiKey": "…", "requestTime": 1709288102000, "sha": "…", "owner": "sales@example.com",
  "contact": { "email": "ada@example.org", "name": "Ada Lovelace", "phone": "+44 20 7946 0000", "fax": "",
               "company": "Analytical Engines Ltd", "state": "PROSPECT", "externalId": "sell-lead-9001",
               "address": { "streetAddress": "12 Byron St", "zipCode": "N1 9GU", "city": "London", "country": "GB" } },
  "newEmail": "ada@new.example.org",
  "tags": ["ZENDESK_SELL", "LEAD"], "removeTags": ["CUSTOMER"],
  "properties": { "industry": "Computing" },
  "dictionaryProperties": [ { "name": "score", "type": "NUMBER", "value": 42 } ],
  "forceOptIn": false, "birthday": "19901210", "province": "London" }
"""


def lead(**fields: Any) -> Lead:
    return Lead(**{"id": 9001, "email": "ada@example.org", **fields})


def contact(**fields: Any) -> Contact:
    return Contact(**{"id": 5, "email": "ada@example.org", **fields})


def mapped(
    record: Lead | Contact,
    *,
    fields: dict[str, str] | None = None,
    organization: str = "",
    config: SalesmanagoConfig = CONFIG,
) -> MappedContact:
    rows = parse_fields("salesmanago", fields or {})
    return map_person(record, config=config, rows=rows, organization=organization)


def dig(item: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of an item (`contact.address.city`, `dictionaryProperties.score`)."""
    value: Any = item
    for part in path.split("."):
        if isinstance(value, list):  # dictionaryProperties: by name
            value = next((entry for entry in value if entry["name"] == part), NO_VALUE)
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return NO_VALUE
    return value


# ---------------------------------------------------------------------------------------------------------------
# defaults


@pytest.mark.parametrize(
    ("record", "organization", "path", "expected"),
    [
        # identity
        (lead(email=" Ada@Example.ORG "), "", "contact.email", "ada@example.org"),
        # name
        (lead(first_name="Ada", last_name="Lovelace"), "", "contact.name", "Ada Lovelace"),
        (lead(first_name=" Ada "), "", "contact.name", "Ada"),
        (lead(last_name="Lovelace"), "", "contact.name", "Lovelace"),
        (lead(organization_name="Analytical Engines"), "", "contact.name", "Analytical Engines"),
        (contact(is_organization=True, name="Analytical Engines"), "", "contact.name", "Analytical Engines"),
        (contact(), "Some Org", "contact.name", NO_VALUE),
        # phone, fax
        (lead(phone="+44 1", mobile="+44 2"), "", "contact.phone", "+44 1"),
        (lead(mobile="+44 2"), "", "contact.phone", "+44 2"),
        (lead(), "", "contact.phone", NO_VALUE),
        (lead(fax="+44 3"), "", "contact.fax", "+44 3"),
        (lead(), "", "contact.fax", NO_VALUE),
        # company
        (lead(organization_name="Analytical Engines Ltd"), "", "contact.company", "Analytical Engines Ltd"),
        (contact(organization_id=77), "Analytical Engines Ltd", "contact.company", "Analytical Engines Ltd"),
        (contact(), "", "contact.company", NO_VALUE),
        # state
        (lead(status="Working"), "", "contact.state", "PROSPECT"),
        (contact(customer_status="current"), "", "contact.state", "CUSTOMER"),
        (contact(customer_status="current", prospect_status="current"), "", "contact.state", "CUSTOMER"),
        (contact(prospect_status="current"), "", "contact.state", "PROSPECT"),
        (contact(customer_status="past", prospect_status="lost"), "", "contact.state", "OTHER"),
        (contact(), "", "contact.state", "OTHER"),
        # external id
        (lead(id=9001), "", "contact.externalId", "sell-lead-9001"),
        (contact(id=5), "", "contact.externalId", "sell-contact-5"),
        # address
        (lead(address=ADDRESS), "", "contact.address.streetAddress", "12 Byron St"),
        (lead(address=ADDRESS), "", "contact.address.zipCode", "N1 9GU"),
        (lead(address=ADDRESS), "", "contact.address.city", "London"),
        (lead(address=ADDRESS), "", "contact.address.country", "GB"),
        (lead(address=Address(country="Deutschland")), "", "contact.address.country", "DE"),
        (lead(address=Address(country="Polska")), "", "contact.address.country", "PL"),
        (lead(address=Address(country="USA")), "", "contact.address.country", "US"),
        (lead(address=Address(country="UK")), "", "contact.address.country", "GB"),
        (lead(address=Address(country="Narnia")), "", "contact.address.country", "Narnia"),
        (lead(address=Address(city="Paris")), "", "contact.address.country", NO_VALUE),
        (lead(address=Address(city="Paris")), "", "contact.address", {"city": "Paris"}),
        (lead(), "", "contact.address", NO_VALUE),
        (lead(address=ADDRESS), "", "province", "London"),
        (lead(address=Address(state="mazowieckie")), "", "province", "mazowieckie"),
        (lead(), "", "province", NO_VALUE),
        # properties
        (lead(title="CEO"), "", "properties.title", "CEO"),
        (lead(industry="Computing"), "", "properties.industry", "Computing"),
        (lead(website="https://example.org"), "", "properties.website", "https://example.org"),
        (lead(mobile="+48 600"), "", "properties.mobile", "+48 600"),
        (lead(twitter="ada"), "", "properties.twitter", "ada"),
        (lead(facebook="ada.l"), "", "properties.facebook", "ada.l"),
        (lead(linkedin="in/ada"), "", "properties.linkedin", "in/ada"),
        (lead(skype="ada.skype"), "", "properties.skype", "ada.skype"),
        (lead(status="Working"), "", "properties.lead_status", "Working"),
        (contact(customer_status="current"), "", "properties.customer_status", "current"),
        (contact(prospect_status="lost"), "", "properties.prospect_status", "lost"),
        (lead(description="Met at the fair."), "", "properties.description", "Met at the fair."),
        (lead(description="x" * 1000), "", "properties.description", "x" * 254 + "…"),
        (lead(), "", "properties", NO_VALUE),
        (contact(customer_status="none"), "", "properties.lead_status", NO_VALUE),
        (lead(status="New"), "", "properties.customer_status", NO_VALUE),
        # nothing else by default
        (lead(), "", "birthday", NO_VALUE),
        (lead(), "", "dictionaryProperties", NO_VALUE),
        (lead(), "", "newEmail", NO_VALUE),
        (lead(), "", "removeTags", NO_VALUE),
    ],
)
def test_default_fields(record: Lead | Contact, organization: str, path: str, expected: Any) -> None:
    """Each Sell field lands where the defaults say, converted as they say; an unset one is left out (nothing is
    ever sent blank)."""
    item = mapped(record, organization=organization).upsert(LastWrite())
    assert dig(item, path) == expected


@pytest.mark.parametrize(
    ("record", "tags", "expected"),
    [
        (lead(), SalesmanagoTags(), ["ZENDESK_SELL", "LEAD"]),
        (
            lead(tags=["vip", "trade show", " cold "]),
            SalesmanagoTags(),
            ["VIP", "TRADE_SHOW", "COLD", "ZENDESK_SELL", "LEAD"],
        ),
        (lead(tags=["Überprüfen"]), SalesmanagoTags(), ["ÜBERPRÜFEN", "ZENDESK_SELL", "LEAD"]),
        (lead(tags=["lead", "Lead"]), SalesmanagoTags(), ["LEAD", "ZENDESK_SELL"]),
        (contact(), SalesmanagoTags(), ["ZENDESK_SELL", "CONTACT"]),
        (contact(customer_status="current"), SalesmanagoTags(), ["ZENDESK_SELL", "CONTACT", "CUSTOMER"]),
        (contact(customer_status="past"), SalesmanagoTags(), ["ZENDESK_SELL", "CONTACT"]),
        (lead(), SalesmanagoTags(always=["from sell", "crm"], lead=["sell lead"]), ["FROM_SELL", "CRM", "SELL_LEAD"]),
        (lead(), SalesmanagoTags(always=[], lead=[]), []),
        (
            contact(customer_status="current"),
            SalesmanagoTags(customer=["paying"]),
            ["ZENDESK_SELL", "CONTACT", "PAYING"],
        ),
        # tags.skip: Sell tags not copied (exact names; feedback's own are added there)
        (
            lead(tags=["vip", "synced-salesmanago", "rejected-ontraport", "Synced-Salesmanago"]),
            SalesmanagoTags(skip=["synced-salesmanago", "rejected-ontraport"]),
            ["VIP", "SYNCED-SALESMANAGO", "ZENDESK_SELL", "LEAD"],
        ),
    ],
)
def test_tags(record: Lead | Contact, tags: SalesmanagoTags, expected: list[str]) -> None:
    """Tags are the Sell tags as SALESmanago shows them plus the configured always/kind/customer tags, once each."""
    config = SalesmanagoConfig(base_url="http://127.0.0.1:9", tags=tags)
    assert mapped(record, config=config).upsert(LastWrite())["tags"] == expected
    assert list(wanted_tags(record, config)) == expected


# ---------------------------------------------------------------------------------------------------------------
# the [fields] table


@pytest.mark.parametrize(
    ("target", "value", "path", "expected"),
    [
        # contact.*: text; an unset value keeps the default
        ("contact.name", "Countess of Lovelace", "contact.name", "Countess of Lovelace"),
        ("contact.phone", "+1 555", "contact.phone", "+1 555"),
        ("contact.phone", None, "contact.phone", "+44 1"),
        ("contact.fax", "+1 556", "contact.fax", "+1 556"),
        ("contact.company", "Babbage & Co", "contact.company", "Babbage & Co"),
        ("contact.externalId", "crm-77", "contact.externalId", "crm-77"),
        ("Contact.ExternalID", "crm-78", "contact.externalId", "crm-78"),
        ("contact.state", "customer", "contact.state", "CUSTOMER"),
        ("contact.state", "Partner", "contact.state", "PARTNER"),
        ("contact.state", "VIP", "contact.state", "PROSPECT"),
        ("contact.state", None, "contact.state", "PROSPECT"),
        # address.*
        ("address.streetAddress", "1 Main St", "contact.address.streetAddress", "1 Main St"),
        ("address.zipCode", "00-001", "contact.address.zipCode", "00-001"),
        ("address.city", "Kraków", "contact.address.city", "Kraków"),
        ("address.country", "Polska", "contact.address.country", "PL"),
        ("address.country", "Atlantis", "contact.address.country", "Atlantis"),
        ("address.city", Address(city="Gdańsk", country="Poland"), "contact.address.city", "Gdańsk"),
        ("address.zipCode", Address(postal_code="80-001"), "contact.address.zipCode", "80-001"),
        ("address.streetAddress", Address(line1="Długa 1"), "contact.address.streetAddress", "Długa 1"),
        ("address.country", Address(country="Deutschland"), "contact.address.country", "DE"),
        ("address.city", None, "contact.address.city", "London"),
        # province
        ("province", "Mazowieckie", "province", "Mazowieckie"),
        ("province", Address(state="Bayern"), "province", "Bayern"),
        ("province", None, "province", "London"),
        # birthday
        ("birthday", "1990-12-10", "birthday", "19901210"),
        ("birthday", "1990-12-10T06:00:00", "birthday", "19901210"),
        ("birthday", "19901210", "birthday", "19901210"),
        ("birthday", "12-10", "birthday", "1210"),
        ("birthday", "--02-29", "birthday", "0229"),
        ("birthday", "1990-13-10", "birthday", NO_VALUE),
        ("birthday", "19901340", "birthday", NO_VALUE),
        ("birthday", "some day", "birthday", NO_VALUE),
        ("birthday", True, "birthday", NO_VALUE),
        ("birthday", None, "birthday", NO_VALUE),
        # property.<name>: text of any value
        ("property.source", "Web form", "properties.source", "Web form"),
        ("property.newsletter", True, "properties.newsletter", "1"),
        ("property.newsletter", False, "properties.newsletter", "0"),
        ("property.budget", "1250.50", "properties.budget", "1250.50"),
        ("property.interests", ["CRM", "Email"], "properties.interests", "CRM,Email"),
        ("property.office", Address(line1="1 Main St", city="Paris"), "properties.office", "1 Main St, Paris"),
        ("property.notes", "y" * 300, "properties.notes", "y" * 254 + "…"),
        ("property.title", "Chief", "properties.title", "Chief"),
        ("property.source", None, "properties.source", NO_VALUE),
        ("property.source", "  ", "properties.source", NO_VALUE),
        # number.<name>: dictionary NUMBER
        ("number.score", "42", "dictionaryProperties.score", {"name": "score", "type": "NUMBER", "value": 42}),
        ("number.score", "12.5", "dictionaryProperties.score", {"name": "score", "type": "NUMBER", "value": 12.5}),
        ("number.score", "-3", "dictionaryProperties.score", {"name": "score", "type": "NUMBER", "value": -3}),
        ("number.score", "12.00", "dictionaryProperties.score", {"name": "score", "type": "NUMBER", "value": 12}),
        ("number.vip", True, "dictionaryProperties.vip", {"name": "vip", "type": "NUMBER", "value": 1}),
        ("number.score", "many", "dictionaryProperties.score", NO_VALUE),
        ("number.score", None, "dictionaryProperties.score", NO_VALUE),
        # date.<name>: dictionary DATE as epoch ms
        (
            "date.since",
            "2024-03-01",
            "dictionaryProperties.since",
            {"name": "since", "type": "DATE", "value": 1709251200000},
        ),
        (
            "date.since",
            "2024-03-01T10:15:02",
            "dictionaryProperties.since",
            {"name": "since", "type": "DATE", "value": 1709288102000},
        ),
        (
            "date.since",
            "2024-03-01T10:15:02+01:00",
            "dictionaryProperties.since",
            {"name": "since", "type": "DATE", "value": 1709284502000},
        ),
        ("date.since", "soon", "dictionaryProperties.since", NO_VALUE),
        ("date.since", None, "dictionaryProperties.since", NO_VALUE),
        # tags: added
        ("tags", "vip customer", "tags", ["ZENDESK_SELL", "LEAD", "VIP_CUSTOMER"]),
        ("tags", ["Webinar", "trade show"], "tags", ["ZENDESK_SELL", "LEAD", "WEBINAR", "TRADE_SHOW"]),
        ("tags", True, "tags", ["ZENDESK_SELL", "LEAD", "FIELD"]),
        ("tags", False, "tags", ["ZENDESK_SELL", "LEAD"]),
        ("tags", "lead", "tags", ["ZENDESK_SELL", "LEAD"]),
        ("tags", None, "tags", ["ZENDESK_SELL", "LEAD"]),
    ],
)
def test_field_targets(target: str, value: CustomValue, path: str, expected: Any) -> None:
    """A custom field mapped to each target form lands there, converted for that target's type."""
    record = lead(phone="+44 1", address=ADDRESS, custom={"Field": value})
    item = mapped(record, fields={"custom.Field": target}).upsert(LastWrite())
    assert dig(item, path) == expected


@pytest.mark.parametrize(
    ("fields", "path", "expected"),
    [
        ({"title": "property.job_title"}, "properties.job_title", "CEO"),
        ({"address.city": "property.town"}, "properties.town", "London"),
        ({"mobile": "contact.phone"}, "contact.phone", "+48 600"),
        ({"custom.Office": "address.city", "custom.Tier": "property.tier"}, "contact.address.city", "Leeds"),
        ({"custom.Office": "address.city", "custom.Tier": "property.tier"}, "properties.tier", "Gold"),
        ({"custom.Missing": "property.x"}, "properties.x", NO_VALUE),
        ({"custom.Tier": "no.such.target"}, "properties", {"title": "CEO", "mobile": "+48 600"}),
    ],
)
def test_standard_fields_and_several_rows(fields: dict[str, str], path: str, expected: Any) -> None:
    """Plain Sell fields map like custom ones; several rows apply together; unknown targets change nothing."""
    record = lead(
        title="CEO",
        phone="+44 1",
        mobile="+48 600",
        address=ADDRESS,
        custom={"Office": Address(city="Leeds"), "Tier": "Gold"},
    )
    assert dig(mapped(record, fields=fields).upsert(LastWrite()), path) == expected


# ---------------------------------------------------------------------------------------------------------------
# what the last write changes: e-mail changes, tags and properties syncd wrote


@pytest.mark.parametrize(
    ("record", "last", "rename", "expected"),
    [
        # nothing written before: a plain upsert
        (lead(), LastWrite(), True, {"contact.email": "ada@example.org", "newEmail": NO_VALUE, "removeTags": NO_VALUE}),
        # same e-mail (any case was lower-cased when kept)
        (
            lead(email="ADA@example.org"),
            LastWrite("ada@example.org"),
            True,
            {"contact.email": "ada@example.org", "newEmail": NO_VALUE},
        ),
        # e-mail changed: match the old one, rename to the new one
        (
            lead(email="ada@new.example.org"),
            LastWrite("ada@example.org"),
            True,
            {"contact.email": "ada@example.org", "newEmail": "ada@new.example.org"},
        ),
        # e-mail changed but the old contact stays someone else's: write the new e-mail, no rename
        (
            lead(email="ada@new.example.org"),
            LastWrite("ada@example.org"),
            False,
            {"contact.email": "ada@new.example.org", "newEmail": NO_VALUE},
        ),
        # a tag removed in Sell
        (
            lead(tags=["vip"]),
            LastWrite("ada@example.org", ("VIP", "COLD", "ZENDESK_SELL", "LEAD")),
            True,
            {"removeTags": ["COLD"], "tags": ["VIP", "ZENDESK_SELL", "LEAD"]},
        ),
        # no longer a customer
        (
            contact(customer_status="past"),
            LastWrite("ada@example.org", ("ZENDESK_SELL", "CONTACT", "CUSTOMER")),
            True,
            {"removeTags": ["CUSTOMER"]},
        ),
        # a tag syncd did not write is never removed
        (lead(), LastWrite("ada@example.org", ("ZENDESK_SELL", "LEAD")), True, {"removeTags": NO_VALUE}),
        # a property syncd wrote and Sell no longer has is left out (never sent blank), like one it never wrote
        (
            lead(title="CEO"),
            LastWrite("ada@example.org", (), ("title", "industry")),
            True,
            {"properties": {"title": "CEO"}},
        ),
        (lead(), LastWrite("ada@example.org", (), ("title",)), True, {"properties": NO_VALUE}),
    ],
)
def test_upsert_after_last_write(record: Lead, last: LastWrite, rename: bool, expected: dict[str, Any]) -> None:
    """The item carries a rename for an e-mail change and removeTags for syncd's stale tags, nothing of the kind when
    nothing changed, and never a blank value (a stale property is left out)."""
    item = mapped(record).upsert(last, rename_from=last.email if rename else None)
    assert {path: dig(item, path) for path in expected} == expected


def test_lead_tag_stays_off_a_contact_record() -> None:
    """A contact record never wants the lead tags; what it wrote itself it removes once unwanted."""
    became_contact = mapped(contact(customer_status="past")).upsert(LastWrite("ada@example.org", ("CUSTOMER",)))
    assert "LEAD" not in became_contact["tags"]
    assert became_contact["removeTags"] == ["CUSTOMER"]


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (None, LastWrite()),
        ({}, LastWrite()),
        (
            {"email": "a@example.org", "tags": ["A", "B"], "properties": ["title"]},
            LastWrite("a@example.org", ("A", "B"), ("title",)),
        ),
        ({"email": 7, "tags": "A", "properties": [1, "title"]}, LastWrite("", (), ("title",))),
    ],
)
def test_last_write_reads_sent_defensively(sent: dict[str, Any] | None, expected: LastWrite) -> None:
    """A link's `sent` reads back as the e-mail, tags and property names written; odd entries read as nothing."""
    assert LastWrite.from_sent(sent) == expected


def test_sent_round_trips_through_last_write() -> None:
    """What a write keeps (`sent`) is exactly what the next write reads as its last write."""
    result = mapped(lead(title="CEO", tags=["vip"], email="Ada@Example.org"))
    assert LastWrite.from_sent(json.loads(json.dumps(result.sent()))) == LastWrite(
        "ada@example.org", ("VIP", "ZENDESK_SELL", "LEAD"), ("title",)
    )


@pytest.mark.parametrize(
    ("before", "after", "same"),
    [
        (lead(first_name="Ada"), lead(first_name="Ada"), True),
        (lead(first_name="Ada", custom={"Unmapped": "x"}), lead(first_name="Ada", custom={"Unmapped": "y"}), True),
        (lead(first_name="Ada"), lead(first_name="Ada", last_name="L"), False),
        (lead(tags=["a"]), lead(tags=["b"]), False),
        (lead(), lead(email="ada@new.example.org"), False),
        (lead(address=Address(country="UK")), lead(address=Address(country="United Kingdom")), True),
    ],
)
def test_digest(before: Lead, after: Lead, same: bool) -> None:
    """The digest changes exactly when the state SALESmanago should hold changes."""
    assert (mapped(before).digest == mapped(after).digest) is same


def test_digest_ignores_how_the_last_write_is_undone() -> None:
    """Renames and removals are not part of the digest: an unchanged state after them is 'unchanged'."""
    result = mapped(lead(email="ada@new.example.org"))
    assert result.digest == mapped(lead(email="ada@new.example.org")).digest
    assert result.upsert(LastWrite("ada@example.org", ("OLD",))) != result.desired()
    assert result.digest == mapped(lead(email="ada@new.example.org")).digest


def test_contract_example_is_what_the_mapper_produces() -> None:
    """The contract's example upsert body (minus auth, the opt-in flag and its blank fax) is the item for the
    equivalent lead."""
    example = json.loads(CONTRACT_UPSERT_EXAMPLE)
    for key in ("clientId", "apiKey", "requestTime", "sha", "owner", "forceOptIn"):
        example.pop(key)
    assert example["contact"].pop("fax") == ""  # syncd never sends a blank value
    record = lead(
        id=9001,
        email="ada@new.example.org",
        first_name="Ada",
        last_name="Lovelace",
        phone="+44 20 7946 0000",
        organization_name="Analytical Engines Ltd",
        industry="Computing",
        address=ADDRESS,
        custom={"Score": "42", "Birthday": "1990-12-10"},
    )
    fields = {"custom.Score": "number.score", "custom.Birthday": "birthday"}
    last = LastWrite("ada@example.org", ("CUSTOMER", "ZENDESK_SELL", "LEAD"))  # "customer" was a Sell tag
    assert mapped(record, fields=fields).upsert(last, rename_from="ada@example.org") == example


# ---------------------------------------------------------------------------------------------------------------
# checks of the [fields] table


@pytest.mark.parametrize(
    ("fields", "custom_names", "expected"),
    [
        (
            {
                "custom.Score": "number.score",
                "custom.Since": "date.since",
                "custom.Birthday": "birthday",
                "custom.Interests": "tags",
                "industry": "property.sector",
                "address.state": "province",
                "custom.Office": "address.city",
                "custom.Level": "contact.state",
            },
            None,
            [],
        ),
        ({"custom.Score": "score"}, None, ['sinks.salesmanago.fields."custom.Score": unknown SALESmanago target']),
        (
            {"custom.Score": "contact.score"},
            None,
            ['sinks.salesmanago.fields."custom.Score": unknown SALESmanago target'],
        ),
        (
            {"custom.Score": "address.street"},
            None,
            ['sinks.salesmanago.fields."custom.Score": unknown SALESmanago target'],
        ),
        (
            {"custom.Score": "customer.email"},
            None,
            ['sinks.salesmanago.fields."custom.Score": unknown SALESmanago target'],
        ),
        ({"custom.Mail": "contact.email"}, None, ['sinks.salesmanago.fields."custom.Mail": contact.email is how']),
        ({"custom.Score": "property."}, None, ['sinks.salesmanago.fields."custom.Score": property.<name> needs']),
        ({"custom.Score": "number. "}, None, ['sinks.salesmanago.fields."custom.Score": number.<name> needs']),
        ({"nickname": "property.nick"}, None, ["sinks.salesmanago.fields.\"nickname\": unknown Sell field 'nickname'"]),
        (
            {"custom.Scor": "number.score"},
            frozenset({"Score"}),
            ['sinks.salesmanago.fields."custom.Scor": Sell has no custom field'],
        ),
        ({"custom.Score": "number.score"}, frozenset({"Score"}), []),
        (
            {"nickname": "nowhere"},
            None,
            [
                'sinks.salesmanago.fields."nickname": unknown SALESmanago target',
                "sinks.salesmanago.fields.\"nickname\": unknown Sell field 'nickname'",
            ],
        ),
    ],
)
def test_check_mapping(fields: dict[str, str], custom_names: frozenset[str] | None, expected: list[str]) -> None:
    """Each problem names the config key: an unknown target form, contact.email, a missing name, an unknown Sell
    field; good rows give none."""
    problems = check_mapping(parse_fields("salesmanago", fields), custom_names=custom_names)
    assert len(problems) == len(expected)
    for problem, start in zip(problems, expected, strict=True):
        assert str(problem).startswith(start)


def test_unknown_target_is_ignored_when_mapping() -> None:
    """A row `check` would reject never breaks a write: the mapper leaves it out."""
    row = FieldMapping("custom.X", "nowhere", 'sinks.salesmanago.fields."custom.X"')
    assert isinstance(parse_target(row.target), str)
    plain = mapped(lead(custom={"X": "1"})).desired()
    assert map_person(lead(custom={"X": "1"}), config=CONFIG, rows=[row]).desired() == plain

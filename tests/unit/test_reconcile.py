"""The pure parts of a reconciliation: how a destination's contact differs from what the writer writes (each
destination's own way of keeping values), and the report."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.config import loads
from syncd.events import Address, Lead
from syncd.reconcile.report import Finding, SinkReport, problems_in, render
from syncd.sinks.ontraport.inspect import differences as op_differences
from syncd.sinks.salesmanago.inspect import differences as sm_differences
from syncd.sinks.salesmanago.map import map_person

CONFIG = loads(
    """
[sell]
token = "t"
[sinks.salesmanago]
base_url = "https://app3.salesmanago.pl"
client_id = "c"
api_secret = "s"
owner = "owner@example.com"
"""
)
assert CONFIG.sinks.salesmanago is not None
SM = CONFIG.sinks.salesmanago
LEAD = Lead(
    id=9,
    first_name="Ada",
    last_name="Lovelace",
    email="ada@example.org",
    phone="+44 1",
    title="Analyst",
    tags=["vip"],
    address=Address(line1="12 Byron St", city="London", country="United Kingdom"),
)


def held_sm(**changes: Any) -> dict[str, Any]:
    """The lead's contact as contact/list answers it once the writer wrote it."""
    contact: dict[str, Any] = {
        "email": "ada@example.org",
        "name": "Ada Lovelace",
        "phone": "+44 1",
        "fax": None,
        "company": None,
        "state": "PROSPECT",
        "externalId": "sell-lead-9",
        "address": {"streetAddress": "12 Byron St", "zipCode": None, "city": "London", "country": "gb"},
        "province": None,
        "contactTags": [{"tag": t} for t in ("VIP", "ZENDESK_SELL", "LEAD", "SOMEONE_ELSES")],
        "properties": [{"name": "title", "value": "Analyst"}, {"name": "theirs", "value": "x"}],
        "deleted": False,
    }
    contact.update(changes)
    return contact


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        pytest.param({}, [], id="equal-with-their-own-tags-and-properties-beside"),
        pytest.param({"name": "Someone Else"}, ["name"], id="renamed"),
        pytest.param({"name": "  Ada Lovelace "}, [], id="blanks-around-do-not-count"),
        pytest.param({"contactTags": [{"tag": "VIP"}]}, ["tags"], id="a-tag-of-ours-removed"),
        pytest.param(
            {"address": {"streetAddress": "1 Other St", "city": "London", "country": "GB"}},
            ["address.streetAddress"],
            id="street-changed-country-case-ignored",
        ),
        pytest.param({"properties": [{"name": "title", "value": "CEO"}]}, ["properties.title"], id="a-property"),
        pytest.param({"fax": "+44 9"}, [], id="a-value-sell-has-not-is-never-sent-so-never-compared"),
    ],
)
def test_salesmanago_differences(changes: dict[str, Any], fields: list[str]) -> None:
    """Only what the writer sends is compared (SALESmanago keeps a value Sell cleared; tags and properties others
    added stay); text compares without surrounding blanks, countries without case."""
    mapped = map_person(LEAD, config=SM)
    assert sm_differences(mapped, held_sm(**changes)) == fields


@pytest.mark.parametrize(
    ("held", "fields"),
    [
        pytest.param({"firstname": "Ada", "lastname": "Lovelace", "email": "ADA@example.org", "title": ""}, []),
        pytest.param({"firstname": "Ada", "lastname": "Else", "email": "ada@example.org", "title": ""}, ["lastname"]),
        pytest.param({"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.org"}, [], id="unset-is-blank"),
        pytest.param(
            {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.org", "title": "CEO"}, ["title"]
        ),
    ],
)
def test_ontraport_differences(held: dict[str, Any], fields: list[str]) -> None:
    """Every key the writer sends is compared (a blank overwrites in Ontraport); e-mails without case."""
    payload = {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.org", "title": ""}
    assert op_differences(payload, held) == fields


def test_a_report_counts_everything_and_lists_problems_by_key() -> None:
    """Counts per state, problems listed by key with their fields, reasons of what is not synced, and a verdict."""
    report = SinkReport("ontraport")
    for finding in (
        Finding("lead:1", "equal"),
        Finding("lead:2", "different", ("lastname",)),
        Finding("lead:3", "missing"),
        Finding("lead:4", "extra", reason="deleted in Sell (on_delete = delete)"),
        Finding("lead:5", "skipped", reason="no e-mail"),
    ):
        report.add(finding)
    data = report.to_json()
    assert data["counts"] == {"equal": 1, "different": 1, "missing": 1, "extra": 1, "skipped": 1}
    assert data["different"] == [{"key": "lead:2", "fields": ["lastname"]}]
    assert data["skipped"] == {"no e-mail": 1}
    result = {"sell": {"leads": 5, "contacts": 0, "requests": 2}, "sinks": {"ontraport": data}}
    assert problems_in(result) == 3
    text = render(result)
    assert "ontraport: 1 equal, 1 different, 1 missing, 1 present but deleted in Sell" in text
    assert "lead:2" in text and "lastname" in text and "3 difference(s) found" in text
    clean = {"sell": {}, "sinks": {"ontraport": SinkReport("ontraport").to_json()}}
    assert problems_in(clean) == 0 and render(clean).endswith("zero differences")
    busy = render({**clean, "pending_at_start": {"ontraport": 12, "salesmanago": 0}})
    assert "deliveries were still pending when this began (12 for ontraport)" in busy

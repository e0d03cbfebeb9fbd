"""Writes to the Sell sandbox over real loopback HTTP: PUT /v2/leads|contacts/:id as Sell answers it, the Firehose
echo each write leaves, and the log tests read back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest

from syncd.sandbox.sell.app import SellSandbox
from syncd.sandbox.sell.history import custom, item, tag, wire_time
from syncd.sandbox.server import ServerThread
from syncd.sell.normalise import normalise
from syncd.units import Rate
from tests.support import AppSwitch, FakeClock

TOKEN = "writes-token"
T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=2)

FIELDS = [
    {"id": 1, "name": "Tier", "type": "list", "resource_type": "lead",
     "choices": [{"id": 1, "name": "Gold"}, {"id": 2, "name": "Silver"}]},
    {"id": 2, "name": "Interests", "type": "multi_select_list", "resource_type": "lead"},  # the catalogue's options
    {"id": 3, "name": "Budget", "type": "number", "resource_type": "lead"},
    {"id": 4, "name": "Consent", "type": "bool", "resource_type": "lead"},
    {"id": 5, "name": "First contact", "type": "date", "resource_type": "lead"},
    {"id": 6, "name": "Synced to", "type": "string", "resource_type": "contact"},
]  # fmt: skip


def lead_record() -> dict[str, Any]:
    return {
        "id": 7, "creator_id": 101, "owner_id": 101, "first_name": "Ada", "last_name": "Lovelace",
        "organization_name": None, "status": "New", "source_id": None, "title": None, "description": None,
        "industry": None, "website": None, "email": "ada@example.org", "phone": None, "mobile": None, "fax": None,
        "twitter": None, "facebook": None, "linkedin": None, "skype": None, "address": None,
        "tags": [tag("vip", id=1), tag("newsletter", id=2)],
        "custom_field_values": [
            custom("Tier", "list", {"id": 1, "name": "Gold"}, id=1),
            custom("Interests", "multi_select_list", [{"id": 1, "name": "CRM"}, {"id": 3, "name": "SMS"}], id=2),
            custom("Budget", "number", None, id=3),
            custom("Consent", "bool", True, id=4),
            custom("First contact", "date", None, id=5),
        ],
        "created_at": wire_time(T0),
    }  # fmt: skip


class Api:
    def __init__(self, box: SellSandbox, url: str) -> None:
        self.box = box
        self.url = url
        self.headers = {"Authorization": f"Bearer {TOKEN}", "User-Agent": "tests/1.0"}
        self.http = httpx.Client(base_url=url, headers=self.headers, timeout=10)

    def put(self, path: str, data: Any) -> httpx.Response:
        return self.http.put(path, json={"data": data})

    def ok(self, path: str, data: Any) -> dict[str, Any]:
        response = self.put(path, data)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def stream(self, stream: str = "leads") -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.http.get("/_sandbox/events", params={"stream": stream}).json()["items"]
        return items

    def writes(self, **params: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.http.get("/_sandbox/writes", params=params).json()["writes"]
        return found


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ServerThread, AppSwitch]]:
    switch = AppSwitch()
    with ServerThread(switch) as thread:
        yield thread, switch


@pytest.fixture
def api(server: tuple[ServerThread, AppSwitch]) -> Iterator[Api]:
    thread, switch = server
    box = SellSandbox(tokens=[TOKEN], rate=None, clock=FakeClock(NOW.timestamp()))
    box.append("custom_fields", [item("custom_field", f, event_time=T0) for f in FIELDS])
    box.append("sources", [item("source", {"id": 9, "name": "Web", "resource_type": "lead"}, event_time=T0)])
    box.append("leads", [
        item("lead", lead_record(), event_time=T0),
        item("lead", {**lead_record(), "id": 8, "email": "bob@example.org", "tags": []}, event_time=T0),
    ])  # fmt: skip
    box.append("contacts", [
        item("contact", {"id": 20, "is_organization": True, "name": "Acme", "contact_id": None, "tags": []},
             event_time=T0),
        item("contact", {"id": 21, "is_organization": False, "first_name": "Cy", "last_name": "Young",
                         "contact_id": None, "customer_status": "none", "tags": [],
                         "custom_field_values": [custom("Synced to", "string", None, id=6, resource_type="contact")]},
             event_time=T0),
    ])  # fmt: skip
    switch.app = box.app
    client = Api(box, thread.url)
    yield client
    client.http.close()
    switch.app = None


def error_entries(response: httpx.Response, status: int) -> list[dict[str, Any]]:
    """The errors of Sell's envelope, after checking the envelope."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["meta"]["type"] == "errors"
    assert body["meta"]["http_status"].startswith(f"{status} ")
    assert body["meta"]["logref"] == response.headers["x-request-id"]
    return [entry["error"] for entry in body["errors"]]


# ---------------------------------------------------------------------------------------------------------------
# what a write does


def test_tags_replace_the_whole_set(api: Api) -> None:
    """tags replaces the set: tags not sent go, new ones come (known ones keep their ids), version + 1."""
    body = api.ok("/v2/leads/7", {"tags": ["vip", "synced", "vip"]})
    assert body["data"]["tags"] == ["vip", "synced"]
    assert body["meta"] == {"type": "lead", "version": 2}
    stored = api.http.get("/v2/leads/7").json()
    assert (stored["data"]["tags"], stored["meta"]["version"]) == (["vip", "synced"], 2)
    echo = api.stream()[-1]
    ids = {t["data"]["name"]: t["data"]["id"] for t in echo["data"]["tags"]}
    assert ids["vip"] == 1
    assert ids["synced"] not in (1, 2)


def test_multi_select_values_replace_the_whole_set_and_other_fields_stay(api: Api) -> None:
    """A multi-select custom field takes exactly the values sent; fields not named keep their values."""
    body = api.ok("/v2/leads/7", {"custom_fields": {"Interests": ["E-mail"], "Budget": "1250.50"}})
    fields = body["data"]["custom_fields"]
    assert fields["Interests"] == ["E-mail"]
    assert fields["Budget"] == "1250.50"
    assert (fields["Tier"], fields["Consent"]) == ("Gold", True)
    assert api.ok("/v2/leads/7", {"custom_fields": {"Interests": []}})["data"]["custom_fields"]["Interests"] == []


def test_each_write_reappears_on_the_firehose_with_the_written_keys_in_previous(api: Api) -> None:
    """The echo is an `updated` item with the next sequence, the full snapshot, and previous = the written keys
    (Firehose names) with their old values, at the sandbox's now; it normalises like any item."""
    before = api.stream()[0]["data"]
    api.ok("/v2/leads/7", {"tags": ["vip"], "custom_fields": {"Tier": "Silver"}, "title": None})
    echo = api.stream()[-1]
    meta = echo["meta"]
    assert (meta["event_type"], meta["sequence"], meta["type"], meta["event_time"]) == (
        "updated", 2, "lead", wire_time(NOW),
    )  # fmt: skip
    assert set(meta["previous"]) == {"tags", "custom_field_values", "title"}  # title was written, unchanged
    assert meta["previous"]["tags"] == before["tags"]
    assert meta["previous"]["custom_field_values"] == before["custom_field_values"]
    assert echo["data"]["email"] == "ada@example.org"  # the whole record
    event = normalise("leads", msgspec.json.encode(echo))
    assert event.record.tags == ["vip"]  # type: ignore[attr-defined]
    assert event.record.custom["Tier"] == "Silver"  # type: ignore[attr-defined]
    assert set(event.previous) >= {"tags"}


def test_previous_can_hold_only_the_changed_keys(api: Api) -> None:
    """write_previous="changed": previous names only the attributes the write changed."""
    api.box.configure(write_previous="changed")
    api.ok("/v2/leads/7", {"tags": ["vip"], "title": None})
    assert set(api.stream()[-1]["meta"]["previous"]) == {"tags"}


def test_a_write_that_changes_nothing_is_silent_or_an_event(api: Api) -> None:
    """By default a write that changes nothing adds no event and keeps the version; unchanged_write="event" adds
    one whose previous holds the written keys."""
    same = api.ok("/v2/leads/7", {"tags": ["vip", "newsletter"], "first_name": "Ada"})
    assert same["meta"]["version"] == 1
    assert len(api.stream()) == 2
    assert api.writes(id=7)[-1]["changed"] == [] and api.writes(id=7)[-1]["event"] is False
    api.box.configure(unchanged_write="event")
    again = api.ok("/v2/leads/7", {"first_name": "Ada"})
    assert again["meta"]["version"] == 2
    assert api.stream()[-1]["meta"]["previous"] == {"first_name": "Ada"}


def test_a_write_moves_the_record_in_the_default_order(api: Api) -> None:
    """A written lead's updated_at is now, so it goes to the end of the default (updated_at:asc) list."""
    assert [i["data"]["id"] for i in api.http.get("/v2/leads").json()["items"]] == [7, 8]
    api.ok("/v2/leads/7", {"title": "CEO"})
    listed = api.http.get("/v2/leads").json()["items"]
    assert [i["data"]["id"] for i in listed] == [8, 7]
    assert listed[1]["data"]["updated_at"] == wire_time(NOW)


def test_an_address_is_replaced_whole(api: Api) -> None:
    """An address sent replaces the address: parts not sent become ""."""
    api.ok("/v2/leads/8", {"address": {"city": "Kraków", "country": "Poland", "line1": "Rynek 1"}})
    body = api.ok("/v2/leads/8", {"address": {"city": "Gdańsk"}})
    assert body["data"]["address"] == {"line1": "", "city": "Gdańsk", "postal_code": "", "state": "", "country": ""}


def test_contacts_take_writes_too(api: Api) -> None:
    """PUT /v2/contacts/:id: organisation links must name an organisation, statuses their choices."""
    body = api.ok("/v2/contacts/21", {"contact_id": 20, "customer_status": "current",
                                      "custom_fields": {"Synced to": "salesmanago"}})  # fmt: skip
    assert (body["data"]["contact_id"], body["data"]["customer_status"]) == (20, "current")
    assert body["data"]["custom_fields"] == {"Synced to": "salesmanago"}
    assert api.stream("contacts")[-1]["meta"]["sequence"] == 2
    problems = error_entries(api.put("/v2/contacts/21", {"contact_id": 21, "prospect_status": "maybe",
                                                          "is_organization": True}), 422)  # fmt: skip
    assert {p["field"] for p in problems} == {"/contact_id", "/prospect_status", "/is_organization"}


# ---------------------------------------------------------------------------------------------------------------
# what Sell refuses


@pytest.mark.parametrize(
    ("data", "code", "field"),
    [
        ({"colour": "red"}, "unknown_attribute", "/colour"),
        ({"id": 8}, "unknown_attribute", "/id"),
        ({"updated_at": "2024-01-01T00:00:00Z"}, "unknown_attribute", "/updated_at"),
        ({"custom_fields": {"Nope": "x"}}, "unknown_attribute", "/custom_fields/Nope"),
        ({"address": {"street": "x"}}, "unknown_attribute", "/address/street"),
        ({"custom_fields": {"Tier": "Platinum"}}, "incorrect_value", "/custom_fields/Tier"),
        ({"custom_fields": {"Interests": ["CRM", "Fax"]}}, "incorrect_value", "/custom_fields/Interests"),
        ({"custom_fields": {"Interests": "CRM"}}, "incorrect_value", "/custom_fields/Interests"),
        ({"custom_fields": {"Budget": "a lot"}}, "incorrect_value", "/custom_fields/Budget"),
        ({"custom_fields": {"Consent": "yes"}}, "incorrect_value", "/custom_fields/Consent"),
        ({"custom_fields": {"First contact": "2024-13-01"}}, "incorrect_value", "/custom_fields/First contact"),
        ({"custom_fields": ["Tier"]}, "incorrect_value", "/custom_fields"),
        ({"tags": "vip"}, "incorrect_value", "/tags"),
        ({"tags": ["vip", ""]}, "incorrect_value", "/tags"),
        ({"tags": None}, "incorrect_value", "/tags"),
        ({"email": "not an address"}, "incorrect_value", "/email"),
        ({"first_name": 7}, "incorrect_value", "/first_name"),
        ({"first_name": "x" * 256}, "incorrect_value", "/first_name"),
        ({"owner_id": "101"}, "incorrect_value", "/owner_id"),
        ({"owner_id": 2**63}, "incorrect_value", "/owner_id"),
        ({"owner_id": True}, "incorrect_value", "/owner_id"),
        ({"source_id": 12345}, "incorrect_value", "/source_id"),
    ],
)
def test_bad_writes_get_422_and_change_nothing(api: Api, data: dict[str, Any], code: str, field: str) -> None:
    """Unknown or read-only attributes are unknown_attribute, bad values incorrect_value, each with its pointer;
    the record, its version and its stream stay as they were."""
    [error] = error_entries(api.put("/v2/leads/7", data), 422)
    assert (error["code"], error["field"], error["resource"]) == (code, field, "lead")
    assert api.http.get("/v2/leads/7").json()["meta"]["version"] == 1
    assert len(api.stream()) == 2
    assert api.writes()[-1]["status"] == 422


def test_every_problem_is_reported_at_once(api: Api) -> None:
    """A body with several problems gets one 422 listing each of them."""
    errors = error_entries(api.put("/v2/leads/7", {"colour": 1, "email": "x", "custom_fields": {"Tier": 3}}), 422)
    assert [(e["code"], e["field"]) for e in errors] == [
        ("unknown_attribute", "/colour"), ("incorrect_value", "/email"), ("incorrect_value", "/custom_fields/Tier"),
    ]  # fmt: skip


def test_a_valid_source_is_accepted(api: Api) -> None:
    """source_id naming a lead source is written."""
    assert api.ok("/v2/leads/7", {"source_id": 9})["data"]["source_id"] == 9


@pytest.mark.parametrize("path", ["/v2/leads/999", "/v2/contacts/7", "/v2/widgets/1"])
def test_writes_to_missing_records_get_404(api: Api, path: str) -> None:
    """A record that does not exist (or a collection that does not) is 404 not_found."""
    [error] = error_entries(api.put(path, {"title": "x"}), 404)
    assert error["code"] == "not_found"


def test_writes_to_deleted_records_get_404(api: Api) -> None:
    """A record deleted on the Firehose cannot be written."""
    api.box.append("leads", [item("lead", {"id": 8}, action="deleted", sequence=2, event_time=T0)])
    assert error_entries(api.put("/v2/leads/8", {"title": "x"}), 404)[0]["code"] == "not_found"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"not json", "application/json"),
        (b'{"title": "x"}', "application/json"),
        (b'{"data": ["x"]}', "application/json"),
        (b'["data"]', "application/json"),
        (b'{"data": {"title": "\\ud800"}}', "application/json"),  # a lone surrogate
        (b'{"data": {"title": "\xff"}}', "application/json"),  # not UTF-8
        (b"title=x", "application/x-www-form-urlencoded"),
    ],
)
def test_bodies_that_are_not_a_write_get_400(api: Api, content: bytes, content_type: str) -> None:
    """A body that is not JSON, not {"data": {...}}, or not UTF-8 text is 400 invalid_payload; nothing changes."""
    response = api.http.put("/v2/leads/7", content=content, headers={"Content-Type": content_type})
    assert error_entries(response, 400)[0]["code"] == "invalid_payload"
    assert len(api.stream()) == 2


def test_writes_to_other_collections_are_not_taken(api: Api) -> None:
    """The sandbox takes writes to leads and contacts only: other collections answer 405, in the envelope."""
    assert error_entries(api.put("/v2/deals/1", {"name": "x"}), 405)[0]["code"] == "method_not_allowed"


def test_writes_are_guarded_like_every_call(api: Api) -> None:
    """Without the token a write is 401; past the rate limit 429; neither is logged as a write."""
    anonymous = httpx.put(f"{api.url}/v2/leads/7", json={"data": {"title": "x"}}, headers={"User-Agent": "t/1"})
    assert error_entries(anonymous, 401)[0]["code"] == "unauthorized"
    api.box.configure(rate="1/min")
    assert api.put("/v2/leads/7", {"title": "a"}).status_code == 200
    assert api.put("/v2/leads/7", {"title": "b"}).status_code == 429
    assert [w["body"]["data"]["title"] for w in api.writes()] == ["a"]
    api.box.configure(rate=None)


# ---------------------------------------------------------------------------------------------------------------
# the log


def test_the_write_log_lists_what_was_written(api: Api) -> None:
    """GET /_sandbox/writes lists every write with its body, status, changed keys and version; filters by
    resource and id; DELETE clears it."""
    api.ok("/v2/leads/7", {"tags": ["synced"]})
    api.put("/v2/leads/8", {"colour": "x"})
    api.ok("/v2/contacts/21", {"title": "Buyer"})
    assert [(w["resource"], w["id"], w["status"]) for w in api.writes()] == [
        ("leads", 7, 200), ("leads", 8, 422), ("contacts", 21, 200),
    ]  # fmt: skip
    [first] = api.writes(resource="leads", id=7)
    assert first["body"] == {"data": {"tags": ["synced"]}}
    assert (first["changed"], first["event"], first["version"], first["at"]) == (["tags"], True, 2, wire_time(NOW))
    assert api.writes(resource="leads", id=8)[0]["problems"] == ["/colour"]
    assert api.box.writes("contacts") == api.writes(resource="contacts")
    assert api.http.delete("/_sandbox/writes").json() == {"writes": []}
    assert api.writes() == []


def test_the_rate_limit_counts_writes_with_reads(api: Api) -> None:
    """Writes and reads share the per-token rate."""
    api.box.configure(rate=str(Rate(2, 60)))
    assert api.http.get("/v2/leads").status_code == 200
    assert api.put("/v2/leads/7", {"title": "a"}).status_code == 200
    assert api.http.get("/v2/leads").status_code == 429


def test_custom_field_definitions_are_listed_with_their_choices(api: Api) -> None:
    """GET /v2/lead/custom_fields lists the lead fields by id, list types with the choices a write may use."""
    body = api.http.get("/v2/lead/custom_fields").json()
    fields = {i["data"]["name"]: i["data"] for i in body["items"]}
    assert list(fields) == ["Tier", "Interests", "Budget", "Consent", "First contact"]
    assert fields["Tier"]["choices"] == [{"id": 1, "name": "Gold"}, {"id": 2, "name": "Silver"}]
    assert [c["name"] for c in fields["Interests"]["choices"]][:2] == ["CRM", "E-mail"]
    assert "choices" not in fields["Budget"]
    assert {i["meta"]["type"] for i in body["items"]} == {"custom_field"}
    contact = api.http.get("/v2/contact/custom_fields").json()["items"]
    assert [i["data"]["name"] for i in contact] == ["Synced to"]
    assert api.http.get("/v2/widget/custom_fields").status_code == 404

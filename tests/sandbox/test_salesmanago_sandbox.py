"""The SALESmanago simulator over real loopback HTTP: auth, contacts, batches, deletes, events, limits, control."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncd.sandbox.salesmanago.app import SalesmanagoSandbox
from syncd.sandbox.server import ServerThread
from syncd.units import Rate
from tests.sandbox import salesmanago_client
from tests.sandbox.salesmanago_client import (
    CLIENT_ID,
    OWNER,
    PURCHASE,
    SECRET,
    T0,
    SmApi,
    contacts_by_email,
    serve,
    sha1,
)
from tests.support import AppSwitch, FakeClock, wait_until

sm_clock = salesmanago_client.sm_clock
sm_sandbox = salesmanago_client.sm_sandbox
sm_server = salesmanago_client.sm_server
sm = salesmanago_client.sm

# contracts/salesmanago.md, "Upsert a contact", as printed; only the three "…" auth placeholders are filled in.
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

# --- authentication -------------------------------------------------------------------------------------------


def test_contract_example_body_is_accepted_verbatim(sm: SmApi) -> None:
    """The contract's documented upsert body, with a correct sha, creates the contact it describes."""
    body = json.loads(CONTRACT_UPSERT_EXAMPLE)
    body.update(clientId=CLIENT_ID, apiKey="any random string", sha=sha1("any random string" + CLIENT_ID + SECRET))
    response = sm.http.post(
        "/api/contact/upsert",
        content=json.dumps(body).encode(),
        headers={"Accept": "application/json", "Content-Type": "application/json;charset=UTF-8"},
    )
    assert response.status_code == 200
    reply = response.json()
    assert reply["success"] is True
    assert reply["message"] == []
    assert reply["externalId"] == "sell-lead-9001"
    stored = contacts_by_email(sm)["ada@new.example.org"]
    assert stored["contactId"] == reply["contactId"]
    assert stored["tags"] == ["ZENDESK_SELL", "LEAD"]
    assert stored["properties"] == {"industry": "Computing"}
    assert stored["dictionaryProperties"] == [{"name": "score", "type": "NUMBER", "value": 42}]
    assert stored["province"] == "London"
    assert (stored["birthdayYear"], stored["birthdayMonth"], stored["birthdayDay"]) == (1990, 12, 10)
    assert stored["address"] == {"streetAddress": "12 Byron St", "zipCode": "N1 9GU", "city": "London", "country": "GB"}


@pytest.mark.parametrize(
    "request_time",
    [int(T0 * 1000), int(T0), str(int(T0 * 1000)), str(int(T0)), T0 + 0.5, int(T0 * 1000) - 3600_000],
    ids=["millis", "seconds", "millis-string", "seconds-string", "float-seconds", "an-hour-old"],
)
def test_request_time_forms_are_accepted(sm: SmApi, request_time: object) -> None:
    """requestTime in milliseconds, in seconds, or as a numeric string, within the skew, authenticates."""
    reply = sm.call("contact/hasContact", email="x@example.org", **{"requestTime": request_time})
    assert reply == {"success": True, "message": [], "result": False, "contactId": None}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sha": "0" * 40}, "Not authenticated"),
        ({"clientId": "someone-else"}, "Not authenticated"),
        ({"requestTime": int((T0 - 2 * 86400) * 1000)}, "Not authenticated"),
        ({"requestTime": int((T0 + 2 * 86400) * 1000)}, "Not authenticated"),
        ({"requestTime": "yesterday"}, "Not authenticated"),
        ({"requestTime": None}, "Not authenticated"),
        ({"apiKey": None}, "Not authenticated"),
        ({"owner": None}, "Not authenticated, not owner specified"),
        ({"owner": ""}, "Not authenticated, not owner specified"),
        ({"owner": "intruder@example.com"}, "Not authenticated, invalid owner"),
    ],
    ids=[
        "bad-sha", "wrong-client", "stale", "future", "text-time", "no-time", "no-api-key", "no-owner",
        "empty-owner", "unknown-owner",
    ],
)  # fmt: skip
def test_authentication_failures_are_http_200_success_false(sm: SmApi, overrides: dict[str, Any], message: str) -> None:
    """Each authentication failure answers HTTP 200, success false, with SALESmanago's message; nothing is written."""
    body = {k: v for k, v in sm.auth(**overrides).items() if v is not None}
    response = sm.post("contact/upsert", {**body, "contact": {"email": "ada@example.org"}})
    assert response.status_code == 200
    assert response.json() == {"success": False, "message": [message]}
    assert sm.state()["contacts"] == 0


def test_sha_is_recomputed_from_each_api_key(sm: SmApi) -> None:
    """A sha made for another apiKey fails even though both keys sign correctly on their own."""
    first, second = sm.auth(), sm.auth()
    assert first["apiKey"] != second["apiKey"]
    assert sm.post("contact/hasContact", {**first, "email": "a@example.org"}).json()["success"] is True
    assert sm.post("contact/hasContact", {**second, "email": "a@example.org"}).json()["success"] is True
    mixed = {**first, "sha": second["sha"], "email": "a@example.org"}
    assert sm.post("contact/hasContact", mixed).json()["message"] == ["Not authenticated"]


def test_owner_matches_case_insensitively(sm: SmApi) -> None:
    """The owner e-mail is compared without regard to case."""
    assert sm.call("contact/hasContact", email="a@example.org", owner=OWNER.upper())["success"] is True


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"clientId": ', "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"", "application/json", 400),
        (b"{}", "text/plain", 415),
    ],
    ids=["truncated-json", "not-an-object", "empty", "not-json-content-type"],
)
def test_unusable_bodies_are_refused_with_http_errors(
    sm: SmApi, content: bytes, content_type: str, status: int
) -> None:
    """Unparseable JSON is HTTP 400 (and a non-JSON content type 415), before any authentication."""
    response = sm.http.post("/api/contact/upsert", content=content, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert response.json()["success"] is False


def test_unknown_method_is_404(sm: SmApi) -> None:
    """A method the API does not have answers 404."""
    response = sm.post("contact/teleport", sm.auth())
    assert response.status_code == 404


# --- contact/upsert ---------------------------------------------------------------------------------------------


def test_upsert_creates_then_updates_the_same_contact(sm: SmApi) -> None:
    """A second upsert of an e-mail updates it: same contactId, tags and properties merged, unsent fields kept."""
    first = sm.upsert(
        "ada@example.org",
        contact={"name": "Ada", "company": "AE Ltd", "state": "PROSPECT"},
        tags=["zendesk sell", "Lead"],
        properties={"industry": "Computing", "size": "10"},
        dictionaryProperties=[{"name": "score", "type": "NUMBER", "value": 1}],
    )
    second = sm.upsert(
        "ADA@Example.org",
        contact={"name": "Ada Lovelace", "state": "CUSTOMER"},
        tags=["Customer"],
        removeTags=["lead"],
        properties={"size": "50"},
        dictionaryProperties=[{"name": "since", "type": "DATE", "value": 1709288100000}],
    )
    assert first["success"]
    assert second["success"]
    assert first["contactId"] == second["contactId"]
    stored = contacts_by_email(sm)["ada@example.org"]
    assert stored["tags"] == ["ZENDESK_SELL", "CUSTOMER"]
    assert stored["properties"] == {"industry": "Computing", "size": "50"}
    assert stored["dictionaryProperties"] == [
        {"name": "score", "type": "NUMBER", "value": 1},
        {"name": "since", "type": "DATE", "value": 1709288100000},
    ]
    assert (stored["name"], stored["company"], stored["state"]) == ("Ada Lovelace", "AE Ltd", "CUSTOMER")
    state = sm.state()
    assert state["contacts"] == 1
    assert state["writes_per_email"] == {"ada@example.org": 2}


def test_upsert_reply_carries_the_external_id_or_null(sm: SmApi) -> None:
    """The reply's externalId is the contact's, or null when it has none."""
    assert sm.upsert("a@example.org")["externalId"] is None
    assert sm.upsert("b@example.org", contact={"externalId": "sell-1"})["externalId"] == "sell-1"


def test_contact_id_is_stable_across_a_rename(sm: SmApi) -> None:
    """newEmail renames the matched contact: same contactId, the old e-mail no longer found."""
    created = sm.upsert("old@example.org", tags=["A"])
    renamed = sm.upsert("old@example.org", newEmail="new@example.org")
    assert renamed["contactId"] == created["contactId"]
    assert sm.call("contact/hasContact", email="old@example.org")["result"] is False
    [contact] = sm.basic("new@example.org")
    assert contact["contactId"] == created["contactId"]
    assert contacts_by_email(sm)["new@example.org"]["tags"] == ["A"]


def test_a_retried_rename_updates_the_renamed_contact(sm: SmApi) -> None:
    """Repeating a rename whose first attempt succeeded updates the contact under newEmail, no duplicate."""
    created = sm.upsert("old@example.org")
    sm.upsert("old@example.org", newEmail="new@example.org")
    again = sm.upsert("old@example.org", newEmail="new@example.org", contact={"name": "Second try"})
    assert again["success"]
    assert again["contactId"] == created["contactId"]
    assert sm.state()["contacts"] == 1
    assert contacts_by_email(sm)["new@example.org"]["name"] == "Second try"


def test_a_rename_of_an_unknown_email_creates_under_the_new_one(sm: SmApi) -> None:
    """When neither e-mail exists, the contact is created under newEmail."""
    reply = sm.upsert("ghost@example.org", newEmail="fresh@example.org")
    assert reply["success"]
    assert list(contacts_by_email(sm)) == ["fresh@example.org"]


def test_a_rename_onto_another_contact_is_refused(sm: SmApi) -> None:
    """Renaming a contact to an e-mail another contact holds fails and changes nothing."""
    sm.upsert("one@example.org")
    sm.upsert("two@example.org")
    reply = sm.upsert("one@example.org", newEmail="two@example.org")
    assert reply["success"] is False
    assert "two@example.org" in reply["message"][0]
    assert sorted(contacts_by_email(sm)) == ["one@example.org", "two@example.org"]


@pytest.mark.parametrize(
    "email",
    [
        "a" * 65 + "@example.org",
        "no-at-sign.example.org",
        "two@@example.org",
        "ada@localhost",
        "ada@-bad-.example.org",
        "ada@example.c0m",
        ".ada@example.org",
        "a" * 10 + "@" + "d" * 60 + "." + "e" * 60 + "." + "f" * 60 + "." + "g" * 60 + ".org",
    ],
    ids=["local-65", "no-at", "two-ats", "no-dot-domain", "hyphen-label", "numeric-tld", "leading-dot", "over-254"],
)
def test_invalid_emails_are_refused_naming_the_email(sm: SmApi, email: str) -> None:
    """An e-mail SALESmanago would not store fails with a message naming it; nothing is created."""
    reply = sm.upsert(email)
    assert reply["success"] is False
    assert email in reply["message"][0]
    assert "Invalid email" in reply["message"][0]
    assert sm.state()["contacts"] == 0


def test_the_longest_valid_local_part_is_accepted(sm: SmApi) -> None:
    """64 characters before the @ are still valid."""
    assert sm.upsert("a" * 64 + "@example.org")["success"] is True


def test_an_invalid_new_email_is_refused(sm: SmApi) -> None:
    """newEmail is validated like contact.email."""
    sm.upsert("ada@example.org")
    reply = sm.upsert("ada@example.org", newEmail="ada@@example.org")
    assert reply["success"] is False
    assert "ada@@example.org" in reply["message"][0]


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"contact": {"state": "LEAD"}}, "state"),
        ({"birthday": "1990-12-10"}, "birthday"),
        ({"birthday": "0230"}, "birthday"),
        ({"properties": {"size": 50}}, "properties"),
        ({"tags": "VIP"}, "tags"),
        ({"dictionaryProperties": [{"name": "score", "type": "TEXT", "value": "x"}]}, "NUMBER or DATE"),
        ({"dictionaryProperties": [{"name": "score", "type": "NUMBER", "value": "many"}]}, "score"),
        ({"contact": {"name": 7}}, "contact.name"),
        ({"forceOptIn": "yes"}, "forceOptIn"),
    ],
    ids=[
        "state", "birthday-format", "birthday-date", "property-type", "tags-type", "dictionary-type",
        "dictionary-value", "name-type", "opt-in-type",
    ],
)  # fmt: skip
def test_invalid_fields_are_refused(sm: SmApi, fields: dict[str, Any], fragment: str) -> None:
    """A field SALESmanago would not accept fails the whole upsert with a message about it."""
    reply = sm.upsert("ada@example.org", **fields)
    assert reply["success"] is False
    assert fragment in reply["message"][0]
    assert sm.state()["contacts"] == 0


@pytest.mark.parametrize(
    ("birthday", "expected"),
    [("19901210", [1990, 12, 10]), ("1210", [None, 12, 10]), ("0229", [None, 2, 29])],
)
def test_birthday_is_read_back_in_parts(sm: SmApi, birthday: str, expected: list[int | None]) -> None:
    """birthday "yyyyMMdd" or "MMdd" shows as birthdayYear/Month/Day."""
    sm.upsert("ada@example.org", birthday=birthday)
    [contact] = sm.basic("ada@example.org")
    assert [contact["birthdayYear"], contact["birthdayMonth"], contact["birthdayDay"]] == expected


def test_force_opt_in_and_out_set_opted_out(sm: SmApi) -> None:
    """forceOptOut marks the contact opted out and a later forceOptIn clears it."""
    sm.upsert("ada@example.org", forceOptOut=True)
    assert sm.basic("ada@example.org")[0]["optedOut"] is True
    sm.upsert("ada@example.org", forceOptIn=True)
    assert sm.basic("ada@example.org")[0]["optedOut"] is False


def test_reject_rule_refuses_an_email_until_lifted(sm: SmApi) -> None:
    """An operator's reject rule makes an e-mail fail as invalid; lifting it lets the same upsert through."""
    assert sm.control("rules", {"reject_emails": ["Poison@example.org"]}).status_code == 200
    refused = sm.upsert("poison@example.org")
    assert refused == {"success": False, "message": ["Invalid email: poison@example.org"]}
    assert sm.upsert("fine@example.org")["success"] is True
    sm.control("rules", {"reject_emails": []})
    assert sm.upsert("poison@example.org")["success"] is True
    assert sm.state()["writes_per_email"] == {"fine@example.org": 1, "poison@example.org": 1}


# --- contact/batchupsert ----------------------------------------------------------------------------------------


def details(*emails: str, **fields: Any) -> list[dict[str, Any]]:
    return [{"contact": {"email": email}, **fields} for email in emails]


def test_batchupsert_writes_every_item(sm: SmApi) -> None:
    """A valid batch creates each contact and answers its contactId by e-mail."""
    sm.upsert("b@example.org")
    reply = sm.call("contact/batchupsert", upsertDetails=details("a@example.org", "B@example.org", tags=["T"]))
    assert reply["success"] is True
    assert reply["message"] == []
    stored = contacts_by_email(sm)
    assert reply["contactIds"] == {e: stored[e]["contactId"] for e in ("a@example.org", "b@example.org")}
    assert stored["b@example.org"]["tags"] == ["T"]
    assert sm.state()["writes_per_email"] == {"a@example.org": 1, "b@example.org": 2}


def test_batchupsert_reject_all_reading_writes_nothing(sm: SmApi) -> None:
    """By default one invalid item fails the whole call, naming the e-mail, and nothing is written."""
    reply = sm.call("contact/batchupsert", upsertDetails=details("a@example.org", "bad@@example.org", "c@example.org"))
    assert reply["success"] is False
    assert len(reply["message"]) == 1
    assert "bad@@example.org" in reply["message"][0]
    assert sm.state()["contacts"] == 0


def test_batchupsert_reject_all_reading_refuses_a_conflict_inside_the_batch(sm: SmApi) -> None:
    """A rename conflict caused by earlier items of the same batch fails the whole batch before any write."""
    items = [
        *details("one@example.org", "two@example.org"),
        {"contact": {"email": "one@example.org"}, "newEmail": "two@example.org"},
    ]
    reply = sm.call("contact/batchupsert", upsertDetails=items)
    assert reply["success"] is False
    assert sm.state()["contacts"] == 0


def test_batchupsert_partial_reading_writes_the_valid_items(sm: SmApi) -> None:
    """With batch_invalid=partial the valid items are written and the refused one is named in message."""
    assert sm.control("behaviour", {"batch_invalid": "partial"}).json()["batch_invalid"] == "partial"
    items = [*details("a@example.org", "bad@@example.org"), {"contact": {"email": "c@example.org", "state": "LEAD"}}]
    reply = sm.call("contact/batchupsert", upsertDetails=items)
    assert reply["success"] is True
    assert list(reply["contactIds"]) == ["a@example.org"]
    assert len(reply["message"]) == 2
    assert "bad@@example.org" in reply["message"][0]
    assert "c@example.org" in reply["message"][1]
    assert sm.state()["contacts"] == 1


def test_batchupsert_needs_items(sm: SmApi) -> None:
    """An empty or missing upsertDetails is refused."""
    assert sm.call("contact/batchupsert", upsertDetails=[])["success"] is False
    assert sm.call("contact/batchupsert")["success"] is False


# --- contact/delete, basic, hasContact ---------------------------------------------------------------------------


def test_soft_delete_then_upsert_brings_the_contact_back(sm: SmApi, sm_clock: FakeClock) -> None:
    """A soft-deleted contact reads back deleted, hasContact is false, and an upsert revives the same contactId."""
    created = sm.upsert("ada@example.org", tags=["KEEP"])
    sm_clock.now += 60
    assert sm.call("contact/delete", email="ada@example.org")["success"] is True
    [contact] = sm.basic("ada@example.org")
    assert contact["deleted"] is True
    assert contact["modifiedOn"] == int((T0 + 60) * 1000)
    assert contact["createdOn"] == int(T0 * 1000)
    assert sm.call("contact/hasContact", email="ada@example.org")["result"] is False
    assert (sm.state()["contacts"], sm.state()["deleted"]) == (0, 1)
    revived = sm.upsert("ada@example.org")
    assert revived["contactId"] == created["contactId"]
    [contact] = sm.basic("ada@example.org")
    assert contact["deleted"] is False
    assert contacts_by_email(sm)["ada@example.org"]["tags"] == ["KEEP"]


def test_permanent_delete_forgets_the_contact(sm: SmApi) -> None:
    """permanently=true removes the contact: basic omits it and a later upsert makes a new contactId."""
    created = sm.upsert("ada@example.org")
    assert sm.call("contact/delete", email="ada@example.org", permanently=True)["success"] is True
    assert sm.basic("ada@example.org") == []
    assert (sm.state()["contacts"], sm.state()["deleted"]) == (0, 0)
    assert sm.upsert("ada@example.org")["contactId"] != created["contactId"]


def test_delete_of_an_unknown_email_fails(sm: SmApi) -> None:
    """Deleting an e-mail the account does not hold is success false."""
    reply = sm.call("contact/delete", email="nobody@example.org")
    assert reply["success"] is False
    assert "nobody@example.org" in reply["message"][0]


@pytest.mark.parametrize(
    ("knob", "expected"),
    [("null", {"success": True, "message": [], "result": None}), ("absent", {"success": True, "message": []}),
     ("true", {"success": True, "message": [], "result": True}),
     ("string", {"success": True, "message": [], "result": "deleted"})],
)  # fmt: skip
def test_delete_result_shape_follows_the_knob(sm: SmApi, knob: str, expected: dict[str, Any]) -> None:
    """The `result` of contact/delete is null (as live tests show), or absent, true or a string as configured."""
    sm.control("behaviour", {"delete_result": knob})
    sm.upsert("ada@example.org")
    assert sm.call("contact/delete", email="ada@example.org") == expected


def test_basic_reads_back_the_documented_fields(sm: SmApi) -> None:
    """contact/basic answers the contract's fields for known e-mails and skips unknown ones."""
    sm.upsert("ada@example.org", contact={"name": "Ada", "phone": "+44 1", "address": {"city": "London"}})
    [contact] = sm.basic("ada@example.org", "unknown@example.org")
    assert set(contact) == {
        "contactId", "email", "name", "phone", "fax", "company", "state", "externalId", "address", "score",
        "optedOut", "optedOutPhone", "deleted", "invalid", "birthdayYear", "birthdayMonth", "birthdayDay",
        "createdOn", "modifiedOn", "lastVisit",
    }  # fmt: skip
    assert (contact["email"], contact["name"], contact["phone"], contact["fax"]) == (
        "ada@example.org",
        "Ada",
        "+44 1",
        None,
    )
    # Every address part is present, null when unset (as live replies and SALESmanago's own library read them).
    assert contact["address"] == {"streetAddress": None, "zipCode": None, "city": "London", "country": None}
    assert contact["createdOn"] == int(T0 * 1000)


def test_has_contact_answers_for_live_contacts(sm: SmApi) -> None:
    """hasContact is true for a stored contact (any case) and false for an unknown one."""
    sm.upsert("ada@example.org")
    assert sm.call("contact/hasContact", email="Ada@Example.org")["result"] is True
    assert sm.call("contact/hasContact", email="bob@example.org")["result"] is False


# --- external events --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["v2/contact/addContactExtEvent", "contact/addContactExtEvent"])
def test_add_event_on_either_path(sm: SmApi, path: str) -> None:
    """An external event for an existing contact is stored with its fields and an eventId."""
    contact_id = sm.upsert("ada@example.org")["contactId"]
    reply = sm.call(path, email="ada@example.org", contactEvent={**PURCHASE, "products": "SKU-1,SKU-2"})
    assert reply["success"] is True
    assert reply["eventId"]
    [event] = sm.control("events").json()["events"]
    assert event == {
        "eventId": reply["eventId"], "contactId": contact_id, "email": "ada@example.org", "owner": OWNER,
        **PURCHASE, "products": "SKU-1,SKU-2",
    }  # fmt: skip


def test_add_event_by_contact_id(sm: SmApi) -> None:
    """An event may name its contact by contactId instead of e-mail."""
    contact_id = sm.upsert("ada@example.org")["contactId"]
    reply = sm.call("v2/contact/addContactExtEvent", contactId=contact_id, contactEvent=PURCHASE)
    assert reply["success"] is True
    assert sm.control("events").json()["events"][0]["email"] == "ada@example.org"


def test_add_event_needs_a_live_contact(sm: SmApi) -> None:
    """An event for an unknown or deleted contact is refused."""
    unknown = sm.call("v2/contact/addContactExtEvent", email="ada@example.org", contactEvent=PURCHASE)
    assert unknown["success"] is False
    assert "ada@example.org" in unknown["message"][0]
    sm.upsert("ada@example.org")
    sm.call("contact/delete", email="ada@example.org")
    assert sm.call("v2/contact/addContactExtEvent", email="ada@example.org", contactEvent=PURCHASE)["success"] is False
    assert sm.state()["events"] == 0


@pytest.mark.parametrize(
    ("change", "ok"),
    [
        ({"description": "d" * 2048}, True),
        ({"description": "d" * 2049}, False),
        ({"products": "p" * 512}, True),
        ({"products": "p" * 513}, False),
        ({"location": "l" * 256}, False),
        ({"externalId": "e" * 256}, False),
        ({"shopDomain": "s" * 256}, False),
        ({"detail1": "x" * 255, "detail20": "x" * 255}, True),
        ({"detail20": "x" * 256}, False),
        ({"value": "1250.00"}, False),
        ({"value": 0}, True),
        ({"contactExtEventType": "REFUND"}, False),
        ({"contactExtEventType": "REPEATED_LOAN"}, True),
        ({"date": None}, False),
        ({"date": "2024-03-01"}, False),
    ],
    ids=[
        "description-2048", "description-2049", "products-512", "products-513", "location-256", "external-id-256",
        "shop-domain-256", "details-255", "detail20-256", "value-string", "value-zero", "unknown-type",
        "newer-type", "no-date", "text-date",
    ],
)  # fmt: skip
def test_event_limits_and_types(sm: SmApi, change: dict[str, Any], ok: bool) -> None:
    """Event length limits, the type list, a numeric value and a millisecond date are enforced."""
    sm.upsert("ada@example.org")
    event = {k: v for k, v in {**PURCHASE, **change}.items() if v is not None}
    reply = sm.call("v2/contact/addContactExtEvent", email="ada@example.org", contactEvent=event)
    assert reply["success"] is ok, reply
    assert sm.state()["events"] == int(ok)


def test_batch_add_events_counts_created_and_failed(sm: SmApi) -> None:
    """batchAddContactExtEvent creates what it can and lists the contacts it could not."""
    sm.upsert("ada@example.org")
    events = [
        {"email": "ada@example.org", "contactEvent": PURCHASE},
        {"email": "ghost@example.org", "contactEvent": PURCHASE},
        {"email": "ada@example.org", "contactEvent": {**PURCHASE, "contactExtEventType": "NOPE"}},
    ]
    reply = sm.call("contact/batchAddContactExtEvent", events=events)
    assert reply["success"] is True
    assert (reply["createdAmount"], reply["failedAmount"]) == (1, 2)
    assert reply["failedContacts"] == ["ghost@example.org", "ada@example.org"]
    assert sm.state()["events"] == 1


def test_batch_add_events_allows_at_most_1000(sm: SmApi) -> None:
    """A batch of 1001 events is refused whole; 1000 is accepted."""
    sm.upsert("ada@example.org")
    event = {"email": "ada@example.org", "contactEvent": PURCHASE}
    assert sm.call("contact/batchAddContactExtEvent", events=[event] * 1001)["success"] is False
    assert sm.state()["events"] == 0
    assert sm.call("contact/batchAddContactExtEvent", events=[event] * 1000)["createdAmount"] == 1000


def test_update_and_delete_an_event(sm: SmApi) -> None:
    """updateContactExtEvent changes the fields sent; deleteContactExtEvent removes it once."""
    sm.upsert("ada@example.org")
    event_id = sm.call("v2/contact/addContactExtEvent", email="ada@example.org", contactEvent=PURCHASE)["eventId"]
    updated = sm.call("v2/contact/updateContactExtEvent", contactEvent={"eventId": event_id, "value": 99.5})
    assert updated == {"success": True, "message": [], "eventId": event_id}
    [event] = sm.control("events").json()["events"]
    assert (event["value"], event["description"]) == (99.5, PURCHASE["description"])
    assert sm.call("contact/deleteContactExtEvent", eventId=event_id) == {
        "success": True, "message": [], "result": "deleted"
    }  # fmt: skip
    assert sm.call("contact/deleteContactExtEvent", eventId=event_id)["success"] is False
    assert sm.call("v2/contact/updateContactExtEvent", contactEvent={"eventId": event_id})["success"] is False


def test_update_event_validates_like_add(sm: SmApi) -> None:
    """An update with an over-long field or an unknown type is refused and changes nothing."""
    sm.upsert("ada@example.org")
    event_id = sm.call("v2/contact/addContactExtEvent", email="ada@example.org", contactEvent=PURCHASE)["eventId"]
    bad = {"eventId": event_id, "location": "l" * 256, "value": 1}
    assert sm.call("v2/contact/updateContactExtEvent", contactEvent=bad)["success"] is False
    assert sm.control("events").json()["events"][0]["value"] == PURCHASE["value"]


# --- rate limit -------------------------------------------------------------------------------------------------


@pytest.fixture
def sm_limited(sm_server: tuple[ServerThread, AppSwitch], sm_clock: FakeClock) -> Iterator[SmApi]:
    sandbox = SalesmanagoSandbox(
        client_id=CLIENT_ID, api_secret=SECRET, owners=[OWNER], rate=Rate(2, 1), clock=sm_clock
    )
    yield from serve(sandbox, sm_server, sm_clock)


def test_over_the_rate_is_429_until_the_window_rolls(sm_limited: SmApi, sm_clock: FakeClock) -> None:
    """Over the configured rate a call is 429 with Retry-After; once the window has moved on it passes."""
    body = {**sm_limited.auth(), "email": "a@example.org"}
    assert [sm_limited.post("contact/hasContact", body).status_code for _ in range(3)] == [200, 200, 429]
    throttled = sm_limited.post("contact/hasContact", body)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.json()["success"] is False
    sm_clock.now += 1.0
    assert sm_limited.post("contact/hasContact", body).status_code == 200
    state = sm_limited.state()
    assert state["throttled"] == 2
    assert state["requests_by_status"] == {"200": 3, "429": 2}


@pytest.mark.parametrize(("throttle", "status"), [("503", 503), ("message", 200)])
def test_throttling_readings(sm_limited: SmApi, throttle: str, status: int) -> None:
    """The throttle knob answers over-the-limit calls as 503 or as HTTP 200 success false about a limit."""
    sm_limited.control("behaviour", {"throttle": throttle})
    body = {**sm_limited.auth(), "email": "a@example.org"}
    responses = [sm_limited.post("contact/hasContact", body) for _ in range(3)]
    assert responses[2].status_code == status
    assert responses[2].json()["success"] is False
    assert "limit" in responses[2].json()["message"][0]


def test_rate_is_set_and_cleared_through_behaviour(sm: SmApi) -> None:
    """POST /_sandbox/behaviour {"rate": "1/s"} limits calls; {"rate": null} lifts the limit."""
    assert sm.control("behaviour", {"rate": "1/s"}).json()["rate"] == "1/s"
    body = {**sm.auth(), "email": "a@example.org"}
    assert [sm.post("contact/hasContact", body).status_code for _ in range(2)] == [200, 429]
    sm.control("behaviour", {"rate": None})
    assert [sm.post("contact/hasContact", body).status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.parametrize(
    "knobs",
    [
        {"throttle": "418"},
        {"rate": "fast"},
        {"batch_invalid": "sometimes"},
        {"colour": "blue"},
        {"blank_strings": ["clear"]},
        {"delete_result": None},
    ],
)
def test_bad_behaviour_knobs_are_400(sm: SmApi, knobs: dict[str, Any]) -> None:
    """An unknown knob or value is refused and the behaviour stays as it was."""
    before = sm.control("behaviour", {"delete_unknown": "unknown"}).json()
    assert sm.control("behaviour", knobs).status_code == 400
    assert sm.control("behaviour").json() == before


def test_behaviour_defaults(sm: SmApi) -> None:
    """The readings a fresh simulator starts with."""
    assert sm.control("behaviour").json() == {
        "batch_invalid": "reject_all", "item_owner": "refuse", "item_owner_missing": "call", "blank_strings": "clear",
        "delete_result": "null",
        "delete_unknown": "not_found", "location_rule": "length", "value_decimals": "refuse",
        "delete_external_id": "all", "list_event_id": "eventId", "throttle": "429", "rate": None,
    }  # fmt: skip


# --- control endpoints and faults -------------------------------------------------------------------------------


def test_rotated_or_revoked_secret_stops_old_signatures(sm: SmApi) -> None:
    """After the secret is rotated the old signature is "Not authenticated"; after revocation nothing passes."""
    assert sm.control("credentials", {"api_secret": "rotated"}).json() == {"api_secret_set": True, "owners": [OWNER]}
    assert sm.call("contact/hasContact", email="a@example.org")["message"] == ["Not authenticated"]
    sm.secret = "rotated"
    assert sm.call("contact/hasContact", email="a@example.org")["success"] is True
    sm.control("credentials", {"api_secret": None})
    assert sm.call("contact/hasContact", email="a@example.org")["message"] == ["Not authenticated"]


def test_owners_can_be_replaced(sm: SmApi) -> None:
    """Replacing the account's owners makes the old owner invalid and the new one valid."""
    sm.control("credentials", {"owners": ["marketing@example.com"]})
    assert sm.call("contact/hasContact", email="a@example.org")["message"] == ["Not authenticated, invalid owner"]
    assert sm.call("contact/hasContact", email="a@example.org", owner="marketing@example.com")["success"] is True


@pytest.mark.parametrize(
    ("path", "body"),
    [("credentials", {"api_secret": 5}), ("credentials", {"client_id": "x"}), ("rules", {"reject_emails": "a@b.c"})],
)
def test_bad_control_bodies_are_400(sm: SmApi, path: str, body: dict[str, Any]) -> None:
    """Control routes refuse bodies they cannot apply."""
    assert sm.control(path, body).status_code == 400


def test_state_counts_requests_by_method_and_status(sm: SmApi, sm_sandbox: SalesmanagoSandbox) -> None:
    """state() and GET /_sandbox/state count calls per method and per HTTP status, and success false replies."""
    sm.upsert("ada@example.org")
    sm.upsert("bad@@example.org")
    sm.call("contact/hasContact", email="ada@example.org")
    sm.http.post("/api/contact/upsert", content=b"{", headers={"Content-Type": "application/json"})
    state = sm.state()
    assert state == sm_sandbox.state()
    assert state["requests_by_method"] == {"contact/upsert": 3, "contact/hasContact": 1}
    assert state["requests_by_status"] == {"200": 3, "400": 1}
    assert state["failed"] == 2
    assert (state["contacts"], state["deleted"], state["events"], state["throttled"]) == (1, 0, 0, 0)
    assert state["writes_per_email"] == {"ada@example.org": 1}


def test_injected_faults_apply_to_api_calls(sm: SmApi) -> None:
    """A fault posted to /_sandbox/faults answers the next call with 503 without reaching the account."""
    fault = {"path": "/api/contact/upsert", "status": 503, "times": 1}
    assert sm.control("faults", fault).status_code == 200
    assert (
        sm.http.post("/api/contact/upsert", json={**sm.auth(), "contact": {"email": "a@example.org"}}).status_code
        == 503
    )
    assert sm.upsert("a@example.org")["success"] is True
    assert sm.state()["writes_per_email"] == {"a@example.org": 1}
    assert sm.control("faults").json()["faults"] == []


def test_latency_after_fault_writes_although_the_client_times_out(sm: SmApi) -> None:
    """With latency_after the upsert happens but the answer is held past the client's timeout."""
    sm.control("faults", {"path": "/api/contact/upsert", "latency_after": 1.0, "times": 1})
    with pytest.raises(httpx.ReadTimeout):
        sm.http.post("/api/contact/upsert", json={**sm.auth(), "contact": {"email": "a@example.org"}}, timeout=0.2)
    wait_until(lambda: sm.state()["writes_per_email"] == {"a@example.org": 1}, what="the held upsert's write")


def test_state_is_readable_from_another_thread_under_load(sm: SmApi, sm_sandbox: SalesmanagoSandbox) -> None:
    """Concurrent clients and a concurrent state reader see consistent counts: every upsert lands exactly once."""
    errors: list[BaseException] = []
    stop = threading.Event()
    snapshots: list[dict[str, Any]] = []

    def writer(worker: int) -> None:
        api = SmApi(str(sm.http.base_url), sm.clock)
        try:
            for n in range(20):
                assert api.upsert(f"w{worker}-{n}@example.org")["success"]
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            api.http.close()

    def reader() -> None:
        while not stop.wait(0.002):  # pacing, not synchronisation: the writers are joined below
            snapshots.append(sm_sandbox.state())

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    watcher.join()
    assert errors == []
    assert snapshots, "the reader never ran"
    assert all(s["contacts"] == sum(s["writes_per_email"].values()) for s in snapshots)
    final = sm_sandbox.state()
    assert final["contacts"] == 120
    assert set(final["writes_per_email"].values()) == {1}

"""The SALESmanago simulator's external events over real loopback HTTP: add, batch add, update, delete, read back."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest

from tests.sandbox import salesmanago_client
from tests.sandbox.salesmanago_client import OWNER, PURCHASE, SmApi

sm_clock = salesmanago_client.sm_clock
sm_sandbox = salesmanago_client.sm_sandbox
sm_server = salesmanago_client.sm_server
sm = salesmanago_client.sm

ADA = "ada@example.org"
ADD_PATHS = ["v2/contact/addContactExtEvent", "contact/addContactExtEvent"]
UPDATE_PATHS = ["v2/contact/updateContactExtEvent", "contact/updateContactExtEvent"]
DELETE_PATHS = ["v2/contact/deleteContactExtEvent", "contact/deleteContactExtEvent"]
# contracts/salesmanago.md: the older 13 and the newer 12.
EVENT_TYPES = [
    "PURCHASE", "CART", "VISIT", "PHONE_CALL", "OTHER", "RESERVATION", "CANCELLED", "ACTIVATION", "MEETING", "OFFER",
    "DOWNLOAD", "LOGIN", "TRANSACTION", "CANCELLATION", "RETURN", "SURVEY", "APP_STATUS", "APP_TYPE_WEB",
    "APP_TYPE_MANUAL", "APP_TYPE_RETENTION", "APP_TYPE_UPSALE", "LOAN_STATUS", "LOAN_ORDER", "FIRST_LOAN",
    "REPEATED_LOAN",
]  # fmt: skip
# How SALESmanago's own e-commerce plugin fills a PURCHASE (contracts/salesmanago.md, corrections).
PLUGIN_PURCHASE = {
    "date": 1709288100000, "contactExtEventType": "PURCHASE", "value": 1250.0, "products": "101,102",
    "detail1": "Mug,Teapot", "detail3": "2/1", "externalId": "order-77", "shopDomain": "https://shop.example.org",
    "location": "sm_" + hashlib.md5(b"https://shop.example.org").hexdigest(),
}  # fmt: skip


def add(api: SmApi, event: dict[str, Any] | None = None, path: str = ADD_PATHS[0], **who: Any) -> dict[str, Any]:
    """Add an event for ADA (or whoever `who` names); the reply."""
    return api.call(path, **(who or {"email": ADA}), contactEvent=event if event is not None else PURCHASE)


def event_id(api: SmApi, event: dict[str, Any] | None = None, **who: Any) -> str:
    reply = add(api, event, **who)
    assert reply["success"] is True, reply
    return str(reply["eventId"])


def stored(api: SmApi, **query: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = api.control("events" if not query else f"events?{_query(query)}").json()["events"]
    return events


def _query(query: dict[str, str]) -> str:
    return "&".join(f"{key}={value}" for key, value in query.items())


def post_raw(api: SmApi, body: str) -> httpx.Response:
    """POST a hand-written JSON text to addContactExtEvent."""
    headers = {"Content-Type": "application/json"}
    return api.http.post("/api/v2/contact/addContactExtEvent", content=body, headers=headers)


def listed(api: SmApi, *emails: str) -> list[dict[str, Any]]:
    reply = api.call("contact/list", email=list(emails))
    assert reply["success"] is True, reply
    contacts: list[dict[str, Any]] = reply["contacts"]
    return contacts


# --- adding -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ADD_PATHS)
def test_add_stores_the_plugin_shaped_purchase_on_either_path(sm: SmApi, path: str) -> None:
    """A PURCHASE filled the way SALESmanago's plugin fills it is stored as sent, under a new eventId."""
    contact_id = sm.upsert(ADA)["contactId"]
    reply = add(sm, PLUGIN_PURCHASE, path)
    assert set(reply) == {"success", "message", "eventId"}
    assert (reply["success"], reply["message"]) == (True, [])
    assert stored(sm) == [{"eventId": reply["eventId"], "contactId": contact_id, "email": ADA, "owner": OWNER,
                           **PLUGIN_PURCHASE}]  # fmt: skip


def test_adding_the_same_external_id_twice_makes_two_events(sm: SmApi) -> None:
    """No deduplication by externalId: each add is a new event with its own eventId."""
    sm.upsert(ADA)
    first, second = event_id(sm, PLUGIN_PURCHASE), event_id(sm, PLUGIN_PURCHASE)
    assert first != second
    assert [e["eventId"] for e in stored(sm)] == [first, second]
    assert sm.state()["events"] == 2


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_every_contract_event_type_is_accepted(sm: SmApi, kind: str) -> None:
    """Each of the 25 event types of the contract is accepted."""
    sm.upsert(ADA)
    assert add(sm, {**PURCHASE, "contactExtEventType": kind})["success"] is True


@pytest.mark.parametrize("kind", ["purchase", "REFUND", "", 7])
def test_other_event_types_are_refused(sm: SmApi, kind: object) -> None:
    """A type outside the list (lower case included) is refused and nothing is stored."""
    sm.upsert(ADA)
    reply = add(sm, {**PURCHASE, "contactExtEventType": kind})
    assert reply["success"] is False
    assert "contactExtEventType" in reply["message"][0]
    assert sm.state()["events"] == 0


@pytest.mark.parametrize(
    ("date", "millis"),
    [
        (1709288100000, 1709288100000),
        ("2024-03-01T10:15:00Z", 1709288100000),
        ("2024-03-01T11:15:00+01:00", 1709288100000),
        ("2024-03-01T10:15:00.250+00:00", 1709288100250),
    ],
    ids=["millis", "iso-z", "iso-offset", "iso-fraction"],
)
def test_date_as_millis_or_iso_8601_is_stored_in_millis(sm: SmApi, date: object, millis: int) -> None:
    """contactEvent.date may be epoch milliseconds or an ISO-8601 date-time with an offset."""
    sm.upsert(ADA)
    assert add(sm, {**PURCHASE, "date": date})["success"] is True
    assert stored(sm)[0]["date"] == millis


@pytest.mark.parametrize(
    "date",
    ["2024-03-01", "2024-03-01T10:15:00", "2024-03-01 10:15:00Z", "yesterday", "1709288100000", -1, 2**63, True,
     None],
    ids=["date-only", "no-offset", "no-T", "text", "numeric-string", "negative", "beyond-long", "bool", "missing"],
)  # fmt: skip
def test_unusable_dates_are_refused(sm: SmApi, date: object) -> None:
    """A date that is neither epoch milliseconds nor an ISO-8601 date-time with an offset is refused."""
    sm.upsert(ADA)
    event = {k: v for k, v in {**PURCHASE, "date": date}.items() if v is not None}
    reply = add(sm, event)
    assert reply["success"] is False
    assert "date" in reply["message"][0]


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({"description": "d" * 2048}, True), ({"description": "d" * 2049}, False),
        ({"description": "😀" * 1024}, True), ({"description": "😀" * 1025}, False),
        ({"products": "p" * 512}, True), ({"products": "p" * 513}, False),
        ({"location": "l" * 255}, True), ({"location": "l" * 256}, False),
        ({"externalId": "e" * 255}, True), ({"externalId": "e" * 256}, False),
        ({"shopDomain": "s" * 255}, True), ({"shopDomain": "s" * 256}, False),
        ({f"detail{n}": "x" * 255 for n in range(1, 21)}, True), ({"detail20": "x" * 256}, False),
        ({"detail7": 7}, False), ({"externalId": 77}, False),
    ],
    ids=[
        "description-2048", "description-2049", "description-1024-emoji", "description-1025-emoji", "products-512",
        "products-513", "location-255", "location-256", "external-id-255", "external-id-256", "shop-domain-255",
        "shop-domain-256", "all-details-255", "detail20-256", "detail-number", "external-id-number",
    ],
)  # fmt: skip
def test_text_limits_count_utf16_units(sm: SmApi, change: dict[str, Any], accepted: bool) -> None:
    """Text fields are strings within their limits, counted in UTF-16 code units (an emoji counts two)."""
    sm.upsert(ADA)
    assert add(sm, {**PURCHASE, **change})["success"] is accepted
    assert sm.state()["events"] == int(accepted)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [(0, True), (1250.5, True), (12.34, True), (-5, True), (10**19 - 1, True), (10**19, False), (12.345, False),
     ("1250.00", False), (True, False)],
    ids=["zero", "one-decimal", "two-decimals", "negative", "19-digits", "20-digits", "three-decimals", "string",
         "bool"],
)  # fmt: skip
def test_value_is_a_number_of_19_digits_and_2_decimals(sm: SmApi, value: object, accepted: bool) -> None:
    """value is a JSON number of at most 19 integer digits and (by default) 2 decimals."""
    sm.upsert(ADA)
    reply = add(sm, {**PURCHASE, "value": value})
    assert reply["success"] is accepted, reply
    if accepted:
        assert stored(sm)[0]["value"] == value


def test_value_of_infinity_is_refused(sm: SmApi) -> None:
    """A number too large for a double (1e400) is refused, not stored as infinity."""
    sm.upsert(ADA)
    body = json.dumps({**sm.auth(), "email": ADA, "contactEvent": {**PURCHASE, "value": 0}}).replace(
        '"value": 0', '"value": 1e400'
    )
    reply = post_raw(sm, body)
    assert reply.json()["success"] is False
    assert sm.state()["events"] == 0


@pytest.mark.parametrize(("value", "kept"), [(12.345, 12.35), (1.005, 1.01), (0.125, 0.13), (99.999, 100.0)])
def test_value_decimals_round_reading(sm: SmApi, value: float, kept: float) -> None:
    """With value_decimals = round, more than 2 decimals are stored rounded half-up to 2."""
    sm.control("behaviour", {"value_decimals": "round"})
    sm.upsert(ADA)
    assert add(sm, {**PURCHASE, "value": value})["success"] is True
    assert stored(sm)[0]["value"] == kept


@pytest.mark.parametrize(
    ("rule", "location", "accepted"),
    [
        ("length", "any text, even with spaces ✓", True),
        ("feed36", PLUGIN_PURCHASE["location"], True), ("feed36", "Shop-1.eu/main_store", True),
        ("feed36", "x" * 36, True), ("feed36", "x" * 37, False), ("feed36", "shop one", False),
        ("feed36", "sklep-łódź", False),
        ("wordpress", PLUGIN_PURCHASE["location"], True), ("wordpress", "_ab", True), ("wordpress", "ab", False),
        ("wordpress", "1shop", False), ("wordpress", "shop-1", False), ("wordpress", "s" * 37, False),
    ],
    ids=[
        "length-free-text", "feed36-plugin", "feed36-punctuation", "feed36-36", "feed36-37", "feed36-space",
        "feed36-non-ascii", "wordpress-plugin", "wordpress-3", "wordpress-2", "wordpress-digit-first",
        "wordpress-hyphen", "wordpress-37",
    ],
)  # fmt: skip
def test_location_rules(sm: SmApi, rule: str, location: str, accepted: bool) -> None:
    """location_rule: 255 characters of anything, the documented 36-character feed rule, or the WordPress check."""
    sm.control("behaviour", {"location_rule": rule})
    sm.upsert(ADA)
    reply = add(sm, {**PURCHASE, "location": location})
    assert reply["success"] is accepted, reply
    if not accepted:
        assert "location" in reply["message"][0]


def test_add_names_the_contact_by_email_or_contact_id(sm: SmApi) -> None:
    """An event names its live contact by e-mail (any case), by contactId, or by both when they agree."""
    ada = sm.upsert(ADA)["contactId"]
    bob = sm.upsert("bob@example.org")["contactId"]
    event_id(sm, email="ADA@Example.org")
    event_id(sm, contactId=bob)
    event_id(sm, email=ADA, contactId=ada)
    assert [e["contactId"] for e in stored(sm)] == [ada, bob, ada]
    mixed = add(sm, email=ADA, contactId=bob)
    assert mixed["success"] is False
    assert "different contacts" in mixed["message"][0]


@pytest.mark.parametrize(
    "who",
    [{}, {"email": "ghost@example.org"}, {"contactId": "00000000-0000-0000-0000-000000000000"}, {"contactId": 7},
     {"email": "not-an-email"}],
    ids=["nobody", "unknown-email", "unknown-id", "id-number", "invalid-email"],
)  # fmt: skip
def test_add_needs_an_existing_contact(sm: SmApi, who: dict[str, Any]) -> None:
    """Without a contact the account holds (by e-mail or contactId) the event is refused."""
    sm.upsert(ADA)
    reply = sm.call(ADD_PATHS[0], contactEvent=PURCHASE, **who)
    assert reply["success"] is False
    assert sm.state()["events"] == 0


def test_add_for_a_soft_deleted_contact_is_refused_until_it_returns(sm: SmApi) -> None:
    """A soft-deleted contact takes no events; once an upsert brings it back it does again."""
    sm.upsert(ADA)
    sm.call("contact/delete", email=ADA)
    assert add(sm)["success"] is False
    sm.upsert(ADA)
    assert add(sm)["success"] is True


def test_force_opt_in_with_an_event_opts_the_contact_in(sm: SmApi) -> None:
    """forceOptIn: true beside an event clears the contact's opt-out; a non-boolean is refused."""
    sm.upsert(ADA, forceOptOut=True)
    assert sm.call(ADD_PATHS[0], email=ADA, contactEvent=PURCHASE, forceOptIn="yes")["success"] is False
    assert sm.call(ADD_PATHS[0], email=ADA, contactEvent=PURCHASE, forceOptIn=True)["success"] is True
    assert sm.basic(ADA)[0]["optedOut"] is False


# --- batch add --------------------------------------------------------------------------------------------------


def test_batch_add_reports_created_and_failed(sm: SmApi) -> None:
    """batchAddContactExtEvent adds the valid events and counts and names the contacts of the others."""
    bob = sm.upsert("bob@example.org")["contactId"]
    sm.upsert(ADA)
    events = [
        {"email": ADA, "contactEvent": PLUGIN_PURCHASE},
        {"contactId": bob, "contactEvent": {**PURCHASE, "date": "2024-03-01T10:15:00Z"}},
        {"email": "ghost@example.org", "contactEvent": PURCHASE},
        {"email": ADA, "contactEvent": {**PURCHASE, "value": "12"}},
    ]
    reply = sm.call("contact/batchAddContactExtEvent", events=events)
    assert reply["success"] is True
    assert (reply["createdAmount"], reply["failedAmount"]) == (2, 2)
    assert reply["failedContacts"] == ["ghost@example.org", ADA]
    assert [(e["email"], e["date"]) for e in stored(sm)] == [(ADA, 1709288100000), ("bob@example.org", 1709288100000)]


def test_batch_add_takes_1000_and_refuses_1001_whole(sm: SmApi) -> None:
    """Up to 1000 events per call; 1001 is refused and adds nothing."""
    sm.upsert(ADA)
    event = {"email": ADA, "contactEvent": PURCHASE}
    refused = sm.call("contact/batchAddContactExtEvent", events=[event] * 1001)
    assert refused["success"] is False
    assert "1000" in refused["message"][0]
    assert sm.state()["events"] == 0
    assert sm.call("contact/batchAddContactExtEvent", events=[event] * 1000)["createdAmount"] == 1000
    assert sm.state()["events"] == 1000


# --- update -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", UPDATE_PATHS)
def test_update_changes_only_the_fields_sent(sm: SmApi, path: str) -> None:
    """updateContactExtEvent (v1 or v2) by eventId inside contactEvent changes what it sends and keeps the rest."""
    sm.upsert(ADA)
    eid = event_id(sm, PLUGIN_PURCHASE)
    change = {"eventId": eid, "value": 99.5, "contactExtEventType": "CANCELLATION", "date": "2024-03-02T00:00:00Z"}
    assert sm.call(path, contactEvent=change) == {"success": True, "message": [], "eventId": eid}
    [event] = stored(sm)
    assert (event["value"], event["contactExtEventType"], event["date"]) == (99.5, "CANCELLATION", 1709337600000)
    assert (event["products"], event["externalId"]) == (PLUGIN_PURCHASE["products"], "order-77")


@pytest.mark.parametrize(
    "change",
    [{"location": "l" * 256}, {"contactExtEventType": "NOPE"}, {"value": "1"}, {"date": "soon"}],
    ids=["too-long", "bad-type", "string-value", "bad-date"],
)
def test_update_validates_like_add(sm: SmApi, change: dict[str, Any]) -> None:
    """An invalid update is refused and changes nothing."""
    sm.upsert(ADA)
    eid = event_id(sm)
    assert sm.call(UPDATE_PATHS[0], contactEvent={"eventId": eid, "description": "new", **change})["success"] is False
    assert stored(sm)[0]["description"] == PURCHASE["description"]


@pytest.mark.parametrize(
    "event", [None, {}, {"eventId": ""}, {"eventId": "00000000-0000-0000-0000-000000000000"}],
    ids=["no-event", "no-id", "empty-id", "unknown-id"],
)  # fmt: skip
def test_update_needs_a_known_event(sm: SmApi, event: dict[str, Any] | None) -> None:
    """Without the eventId of a stored event an update is refused."""
    reply = sm.call(UPDATE_PATHS[0], **({} if event is None else {"contactEvent": event}))
    assert reply["success"] is False


# --- delete -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", DELETE_PATHS)
def test_delete_by_event_id_on_either_path(sm: SmApi, path: str) -> None:
    """deleteContactExtEvent by eventId answers result "deleted" once; the next try is refused."""
    sm.upsert(ADA)
    eid, other = event_id(sm), event_id(sm)
    assert sm.call(path, eventId=eid) == {"success": True, "message": [], "result": "deleted"}
    assert [e["eventId"] for e in stored(sm)] == [other]
    assert sm.call(path, eventId=eid)["success"] is False
    assert (sm.state()["events"], sm.state()["events_deleted"]) == (1, 1)


@pytest.mark.parametrize(
    ("reading", "left", "success"),
    [("all", ["other"], True), ("newest", ["first", "other"], True), ("refuse", ["first", "second", "other"], False)],
)
def test_delete_by_external_id_readings(sm: SmApi, reading: str, left: list[str], success: bool) -> None:
    """By externalId every event carrying it goes (all), only the newest (newest), or none when several (refuse)."""
    sm.control("behaviour", {"delete_external_id": reading})
    sm.upsert(ADA)
    ids = {
        "first": event_id(sm, {**PURCHASE, "externalId": "order-77"}),
        "second": event_id(sm, {**PURCHASE, "externalId": "order-77"}),
        "other": event_id(sm, {**PURCHASE, "externalId": "order-78"}),
    }
    reply = sm.call(DELETE_PATHS[0], externalId="order-77")
    assert reply["success"] is success
    assert [e["eventId"] for e in stored(sm)] == [ids[name] for name in left]


def test_delete_by_external_id_of_one_event_under_every_reading(sm: SmApi) -> None:
    """An externalId only one event carries deletes that event whatever the reading."""
    sm.upsert(ADA)
    for reading in ("all", "newest", "refuse"):
        sm.control("behaviour", {"delete_external_id": reading})
        event_id(sm, {**PURCHASE, "externalId": f"order-{reading}"})
        assert sm.call(DELETE_PATHS[1], externalId=f"order-{reading}")["result"] == "deleted"
    assert stored(sm) == []


def test_delete_by_an_external_id_an_update_gave(sm: SmApi) -> None:
    """An update that changes an event's externalId moves it: it is deleted by the new one, not by the old."""
    sm.upsert(ADA)
    first = event_id(sm, {**PURCHASE, "externalId": "order-77"})
    event_id(sm, {**PURCHASE, "externalId": "order-77"})
    sm.call(UPDATE_PATHS[0], contactEvent={"eventId": first, "externalId": "order-77-won"})
    assert sm.call(DELETE_PATHS[0], externalId="order-77")["result"] == "deleted"
    assert [e["eventId"] for e in stored(sm)] == [first]
    assert sm.call(DELETE_PATHS[0], externalId="order-77-won")["result"] == "deleted"
    assert stored(sm) == []


def test_newest_reading_follows_the_order_events_were_added(sm: SmApi) -> None:
    """delete_external_id = newest removes the event added last, even after an older one was updated."""
    sm.control("behaviour", {"delete_external_id": "newest"})
    sm.upsert(ADA)
    first = event_id(sm, {**PURCHASE, "externalId": "order-77"})
    event_id(sm, {**PURCHASE, "externalId": "order-77"})
    sm.call(UPDATE_PATHS[0], contactEvent={"eventId": first, "externalId": "order-77", "value": 1})
    sm.call(DELETE_PATHS[0], externalId="order-77")
    assert [e["eventId"] for e in stored(sm)] == [first]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [({}, "eventId or externalId"), ({"externalId": "order-99"}, "order-99"), ({"externalId": ""}, "externalId"),
     ({"eventId": 5}, "eventId"), ({"externalId": "order-78", "use_event_id": True}, "order-78")],
    ids=["neither", "unknown-external-id", "empty-external-id", "id-number", "ids-disagree"],
)  # fmt: skip
def test_delete_refusals(sm: SmApi, body: dict[str, Any], fragment: str) -> None:
    """A delete naming no event, an unknown one, or an eventId and an externalId of different events is refused."""
    sm.upsert(ADA)
    eid = event_id(sm, {**PURCHASE, "externalId": "order-77"})
    if body.pop("use_event_id", False):
        body["eventId"] = eid
    reply = sm.call(DELETE_PATHS[0], **body)
    assert reply["success"] is False
    assert fragment in reply["message"][0]
    assert len(stored(sm)) == 1


def test_delete_by_both_ids_of_the_same_event(sm: SmApi) -> None:
    """eventId and externalId together delete the event they both name."""
    sm.upsert(ADA)
    eid = event_id(sm, {**PURCHASE, "externalId": "order-77"})
    assert sm.call(DELETE_PATHS[0], eventId=eid, externalId="order-77")["result"] == "deleted"
    assert stored(sm) == []


# --- reading back -----------------------------------------------------------------------------------------------


def test_control_route_lists_one_contacts_events(sm: SmApi) -> None:
    """GET /_sandbox/events?email=… or ?contactId=… lists that contact's events in the order they were added."""
    bob = sm.upsert("bob@example.org")["contactId"]
    sm.upsert(ADA)
    first = event_id(sm)
    event_id(sm, contactId=bob)
    second = event_id(sm, PLUGIN_PURCHASE)
    assert [e["eventId"] for e in stored(sm, email="Ada@Example.org")] == [first, second]
    assert [e["email"] for e in stored(sm, contactId=bob)] == ["bob@example.org"]
    assert stored(sm, email="ghost@example.org") == []
    assert len(stored(sm)) == 3
    assert sm.control("events?email=a@b.co&contactId=x").status_code == 400
    assert sm.control("events?stream=leads").status_code == 400


def test_events_follow_their_contact_through_a_rename(sm: SmApi) -> None:
    """After a rename the contact's events show, and are found under, its new e-mail."""
    sm.upsert(ADA)
    eid = event_id(sm)
    sm.upsert(ADA, newEmail="ada@new.example.org")
    assert [e["eventId"] for e in stored(sm, email="ada@new.example.org")] == [eid]
    assert stored(sm)[0]["email"] == "ada@new.example.org"


@pytest.mark.parametrize("key", ["eventId", "id"])
def test_contact_list_carries_the_contacts_events(sm: SmApi, key: str) -> None:
    """contact/list answers each contact keyed `id`, with its external events (their id keyed per list_event_id)."""
    sm.control("behaviour", {"list_event_id": key})
    contact_id = sm.upsert(ADA, tags=["VIP"], properties={"size": "10"})["contactId"]
    eid = event_id(sm, PLUGIN_PURCHASE)
    [contact] = listed(sm, ADA, "ghost@example.org")
    assert contact["id"] == contact_id
    assert "contactId" not in contact
    assert contact["contactExtEvents"] == [{key: eid, **PLUGIN_PURCHASE}]
    assert [t["tag"] for t in contact["contactTags"]] == ["VIP"]
    assert contact["properties"] == [{"name": "size", "value": "10"}]
    assert (contact["email"], contact["deleted"], contact["mainContactOwner"]) == (ADA, False, OWNER)


def test_contact_list_by_id_and_the_shape_of_a_listed_contact(sm: SmApi) -> None:
    """contact/listById answers the same contacts by contactId, with the keys a live contact/list reply has."""
    contact_id = sm.upsert(ADA, contact={"address": {"city": "London"}})["contactId"]
    reply = sm.call("contact/listById", contactId=[contact_id, "00000000-0000-0000-0000-000000000000"])
    [contact] = reply["contacts"]
    assert contact == listed(sm, ADA)[0]
    assert set(contact) == {
        "id", "name", "email", "phone", "fax", "score", "state", "optedOut", "optedOutPhone", "deleted", "invalid",
        "company", "externalId", "address", "birthdayYear", "birthdayMonth", "birthdayDay", "province",
        "mainContactOwner", "contactVisits", "contactTags", "contactEvents", "emailMessages", "properties",
        "contactFunnels", "contactNotes", "contactTasks", "incomingEmailMessages", "contactExtEvents", "coupons",
        "smsMessages", "modifiedOn", "createdOn",
    }  # fmt: skip
    assert contact["address"] == {"streetAddress": None, "zipCode": None, "city": "London", "country": None}
    assert sm.call("contact/listById", contactId=contact_id)["success"] is False
    assert sm.call("contact/list", email=ADA)["success"] is False


def test_deleted_contacts_and_their_events(sm: SmApi) -> None:
    """A soft-deleted contact lists as deleted with its events; a permanent delete takes its events with it."""
    sm.upsert(ADA)
    sm.upsert("bob@example.org")
    event_id(sm)
    bob_event = event_id(sm, email="bob@example.org")
    sm.call("contact/delete", email=ADA)
    [contact] = listed(sm, ADA)
    assert contact["deleted"] is True
    assert len(contact["contactExtEvents"]) == 1
    sm.call("contact/delete", email=ADA, permanently=True)
    assert listed(sm, ADA) == []
    assert [e["eventId"] for e in stored(sm)] == [bob_event]
    assert sm.state()["events_deleted"] == 0


# --- JSON the real parser refuses -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ['"value": NaN', '"value": Infinity', '"description": "\\ud800 lone"', '"description": "\\udfff"'],
    ids=["nan", "infinity", "lone-high-surrogate", "lone-low-surrogate"],
)
def test_non_json_numbers_and_lone_surrogates_are_http_400(sm: SmApi, raw: str) -> None:
    """NaN/Infinity and lone UTF-16 surrogates are not JSON a strict parser takes: HTTP 400, nothing stored."""
    sm.upsert(ADA)
    body = json.dumps({**sm.auth(), "email": ADA, "contactEvent": {**PURCHASE, "value": 0, "description": ""}})
    body = body.replace('"value": 0', raw) if "value" in raw else body.replace('"description": ""', raw)
    reply = post_raw(sm, body)
    assert reply.status_code == 400
    assert reply.json()["success"] is False
    assert sm.state()["events"] == 0


def test_a_surrogate_pair_is_one_character(sm: SmApi) -> None:
    """An escaped surrogate pair is a valid character: accepted and read back intact."""
    sm.upsert(ADA)
    body = json.dumps({**sm.auth(), "email": ADA, "contactEvent": {**PURCHASE, "description": "😀"}})
    assert "\\ud83d\\ude00" in body
    reply = post_raw(sm, body)
    assert reply.json()["success"] is True
    assert stored(sm)[0]["description"] == "😀"

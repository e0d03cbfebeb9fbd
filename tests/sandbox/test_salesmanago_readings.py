"""The SALESmanago simulator's readings of what no public source settles, and live-tested reply shapes, over HTTP:
blank strings in upserts, `contact/delete` and `hasContact` replies, and the owner inside batch upsert items."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox import salesmanago_client
from tests.sandbox.salesmanago_client import OWNER, SmApi, contacts_by_email

sm_clock = salesmanago_client.sm_clock
sm_sandbox = salesmanago_client.sm_sandbox
sm_server = salesmanago_client.sm_server
sm = salesmanago_client.sm

ADA = "ada@example.org"
MARKETING = "marketing@example.com"  # a second user of the account
FULL = {
    "contact": {
        "name": "Ada", "phone": "+44 1", "fax": "+44 2", "company": "AE", "externalId": "sell-1",
        "address": {"streetAddress": "12 Byron St", "zipCode": "N1", "city": "London", "country": "GB"},
    },
    "properties": {"size": "10", "industry": "Computing"},
    "province": "London",
    "birthday": "19901210",
}  # fmt: skip


def stored(api: SmApi) -> dict[str, Any]:
    return contacts_by_email(api)[ADA]


# --- blank strings ----------------------------------------------------------------------------------------------

BLANKS = [
    # (what is sent blank, how to read the field back, its value before)
    ({"contact": {"name": ""}}, lambda c: c["name"], "Ada"),
    ({"contact": {"phone": ""}}, lambda c: c["phone"], "+44 1"),
    ({"contact": {"fax": ""}}, lambda c: c["fax"], "+44 2"),
    ({"contact": {"company": ""}}, lambda c: c["company"], "AE"),
    ({"contact": {"externalId": ""}}, lambda c: c["externalId"], "sell-1"),
    ({"contact": {"address": {"streetAddress": ""}}}, lambda c: c["address"]["streetAddress"], "12 Byron St"),
    ({"contact": {"address": {"zipCode": ""}}}, lambda c: c["address"]["zipCode"], "N1"),
    ({"contact": {"address": {"city": ""}}}, lambda c: c["address"]["city"], "London"),
    ({"contact": {"address": {"country": ""}}}, lambda c: c["address"]["country"], "GB"),
    ({"properties": {"size": ""}}, lambda c: c["properties"].get("size"), "10"),
    ({"province": ""}, lambda c: c["province"], "London"),
    ({"birthday": ""}, lambda c: (c["birthdayYear"], c["birthdayMonth"], c["birthdayDay"]), (1990, 12, 10)),
]
BLANK_IDS = [
    "contact.name", "contact.phone", "contact.fax", "contact.company", "contact.externalId",
    "contact.address.streetAddress", "contact.address.zipCode", "contact.address.city", "contact.address.country",
    "properties.size", "province", "birthday",
]  # fmt: skip
CLEARED = {"properties.size": "", "birthday": (None, None, None)}  # what `clear` leaves where it is not ""


def upsert_blank(api: SmApi, blank: dict[str, Any]) -> dict[str, Any]:
    contact = {"email": ADA, **blank.get("contact", {})}
    return api.call("contact/upsert", **{**blank, "contact": contact})


@pytest.mark.parametrize(("blank", "read", "before"), BLANKS, ids=BLANK_IDS)
def test_blank_clear_reading_empties_the_field(sm: SmApi, blank: dict[str, Any], read: Any, before: Any) -> None:
    """blank_strings = clear (the default): "" empties the field (a blank birthday removes it); the rest stays."""
    assert sm.upsert(ADA, **FULL)["success"] is True
    assert read(stored(sm)) == before
    assert upsert_blank(sm, blank)["success"] is True
    name = BLANK_IDS[[b[0] for b in BLANKS].index(blank)]
    assert read(stored(sm)) == CLEARED.get(name, "")
    assert stored(sm)["properties"]["industry"] == "Computing"


@pytest.mark.parametrize(("blank", "read", "before"), BLANKS, ids=BLANK_IDS)
def test_blank_ignore_reading_keeps_the_field(sm: SmApi, blank: dict[str, Any], read: Any, before: Any) -> None:
    """blank_strings = ignore: "" leaves the field as it was, and the upsert succeeds."""
    sm.control("behaviour", {"blank_strings": "ignore"})
    sm.upsert(ADA, **FULL)
    assert upsert_blank(sm, blank)["success"] is True
    assert read(stored(sm)) == before


@pytest.mark.parametrize(("blank", "read", "before"), BLANKS, ids=BLANK_IDS)
def test_blank_refuse_reading_names_the_field(sm: SmApi, blank: dict[str, Any], read: Any, before: Any) -> None:
    """blank_strings = refuse: "" fails the upsert with a message naming the field, and nothing changes."""
    sm.control("behaviour", {"blank_strings": "refuse"})
    sm.upsert(ADA, **FULL)
    reply = upsert_blank(sm, {**blank, "tags": ["NEW"]})
    assert reply["success"] is False
    assert BLANK_IDS[[b[0] for b in BLANKS].index(blank)] in reply["message"][0]
    assert read(stored(sm)) == before
    assert stored(sm)["tags"] == []


def test_blank_refuse_reading_in_a_batch_names_item_and_field(sm: SmApi) -> None:
    """In a batch the refused blank is reported against its item (and the whole call fails by default)."""
    sm.control("behaviour", {"blank_strings": "refuse"})
    items = [{"contact": {"email": "a@example.org"}}, {"contact": {"email": "b@example.org", "name": ""}}]
    reply = sm.call("contact/batchupsert", upsertDetails=items)
    assert reply["success"] is False
    assert reply["message"] == ["upsertDetails[1] b@example.org: contact.name must not be blank"]
    assert sm.state()["contacts"] == 0


@pytest.mark.parametrize("reading", ["clear", "ignore", "refuse"])
def test_blank_new_email_is_no_rename_and_blank_state_is_invalid(sm: SmApi, reading: str) -> None:
    """Under every reading "newEmail": "" (as in SALESmanago's documented example) renames nothing, and a blank
    contact.state is refused as an invalid state."""
    sm.control("behaviour", {"blank_strings": reading})
    created = sm.upsert(ADA, newEmail="")
    assert created["success"] is True
    assert list(contacts_by_email(sm)) == [ADA]
    state = sm.upsert(ADA, contact={"state": ""})
    assert state["success"] is False
    assert "Invalid contact state" in state["message"][0]


def test_whitespace_is_not_blank(sm: SmApi) -> None:
    """Only the empty string is blank: a space is a value, stored as sent, under the refuse reading too."""
    sm.control("behaviour", {"blank_strings": "refuse"})
    assert sm.upsert(ADA, contact={"name": " "})["success"] is True
    assert stored(sm)["name"] == " "


# --- reply shapes seen in live tests ------------------------------------------------------------------------------


def test_has_contact_answers_result_and_contact_id(sm: SmApi) -> None:
    """hasContact answers `result` and `contactId`: the uuid for a live contact, null for an unknown or deleted one."""
    contact_id = sm.upsert(ADA)["contactId"]
    assert sm.call("contact/hasContact", email="ADA@example.org") == {
        "success": True, "message": [], "result": True, "contactId": contact_id,
    }  # fmt: skip
    assert sm.call("contact/hasContact", email="bob@example.org")["contactId"] is None
    sm.call("contact/delete", email=ADA)
    assert sm.call("contact/hasContact", email=ADA) == {
        "success": True, "message": [], "result": False, "contactId": None,
    }  # fmt: skip


def test_delete_answers_result_null(sm: SmApi) -> None:
    """contact/delete answers `result: null` by default, as live tests show."""
    sm.upsert(ADA)
    assert sm.call("contact/delete", email=ADA) == {"success": True, "message": [], "result": None}


@pytest.mark.parametrize(
    ("reading", "message"),
    [
        ("not_found", "Contact not found: Nobody@example.org"),
        ("not_exist", "Contact does not exist: Nobody@example.org"),
        ("unknown", "Unknown contact: Nobody@example.org"),
    ],
)
def test_delete_of_an_unknown_email_texts(sm: SmApi, reading: str, message: str) -> None:
    """delete_unknown picks the text of the refusal of a delete of an e-mail the account does not hold."""
    sm.control("behaviour", {"delete_unknown": reading})
    assert sm.call("contact/delete", email="Nobody@example.org") == {"success": False, "message": [message]}


def test_delete_of_an_unknown_email_success_reading(sm: SmApi) -> None:
    """delete_unknown = success: deleting an unknown e-mail succeeds, deletes nothing and creates nothing."""
    sm.control("behaviour", {"delete_unknown": "success"})
    sm.upsert(ADA)
    assert sm.call("contact/delete", email="nobody@example.org") == {"success": True, "message": [], "result": None}
    assert (sm.state()["contacts"], sm.state()["deleted"]) == (1, 0)


# --- the owner inside batch upsert items ----------------------------------------------------------------------------


def owner_items(*owners: str | None) -> list[dict[str, Any]]:
    """One item per owner (None: no owner in the item), e-mails n0@…, n1@…"""
    items = []
    for n, owner in enumerate(owners):
        item: dict[str, Any] = {"contact": {"email": f"n{n}@example.org"}}
        if owner is not None:
            item["owner"] = owner
        items.append(item)
    return items


def owners_of(api: SmApi) -> dict[str, str]:
    return {email: contact["owner"] for email, contact in contacts_by_email(api).items()}


@pytest.mark.parametrize("reading", ["refuse", "item", "top"])
def test_item_owner_equal_to_the_calls_is_accepted(sm: SmApi, reading: str) -> None:
    """Every upsertDetails item may repeat the call's owner (as SALESmanago's library sends it), in any case."""
    sm.control("behaviour", {"item_owner": reading})
    reply = sm.call("contact/batchupsert", upsertDetails=owner_items(OWNER, OWNER.upper(), None))
    assert reply["success"] is True
    assert owners_of(sm) == dict.fromkeys(("n0@example.org", "n1@example.org", "n2@example.org"), OWNER)


@pytest.mark.parametrize("reading", ["refuse", "item", "top"])
@pytest.mark.parametrize("bad", ["intruder@example.com", "", 7])
def test_item_owner_that_is_no_user_is_refused(sm: SmApi, reading: str, bad: object) -> None:
    """An item owner that is no user of the account fails that item under every reading (the call, by default)."""
    sm.control("behaviour", {"item_owner": reading})
    items = owner_items(OWNER, None)
    items[1]["owner"] = bad
    reply = sm.call("contact/batchupsert", upsertDetails=items)
    assert reply["success"] is False
    assert reply["message"] == [f"upsertDetails[1] n1@example.org: invalid owner: {bad}"]
    assert sm.state()["contacts"] == 0


@pytest.mark.parametrize(
    ("reading", "success", "owners"),
    [
        ("refuse", False, {}),
        ("item", True, {"n0@example.org": OWNER, "n1@example.org": MARKETING}),
        ("top", True, {"n0@example.org": OWNER, "n1@example.org": OWNER}),
    ],
)
def test_item_owner_of_another_user(sm: SmApi, reading: str, success: bool, owners: dict[str, str]) -> None:
    """An item owned by another user of the account is refused (default), owned by that user, or the call's."""
    sm.control("credentials", {"owners": [OWNER, MARKETING]})
    sm.control("behaviour", {"item_owner": reading})
    reply = sm.call("contact/batchupsert", upsertDetails=owner_items(OWNER, MARKETING.upper()))
    assert reply["success"] is success
    if not success:
        assert "differs" in reply["message"][0]
        assert reply["message"][0].startswith("upsertDetails[1] n1@example.org:")
    assert owners_of(sm) == owners


def test_item_owner_refusal_under_the_partial_reading_spares_the_others(sm: SmApi) -> None:
    """With batch_invalid = partial only the item with a mismatching owner is refused."""
    sm.control("credentials", {"owners": [OWNER, MARKETING]})
    sm.control("behaviour", {"batch_invalid": "partial"})
    reply = sm.call("contact/batchupsert", upsertDetails=owner_items(OWNER, MARKETING, None))
    assert reply["success"] is True
    assert list(reply["contactIds"]) == ["n0@example.org", "n2@example.org"]
    assert len(reply["message"]) == 1
    assert reply["message"][0].startswith("upsertDetails[1] n1@example.org:")


@pytest.mark.parametrize(("reading", "success"), [("call", True), ("refuse", False)])
def test_item_without_an_owner_of_its_own(sm: SmApi, reading: str, success: bool) -> None:
    """item_owner_missing: an item without its own owner is the call's (default), or refused naming the owner."""
    sm.control("behaviour", {"item_owner_missing": reading})
    reply = sm.call("contact/batchupsert", upsertDetails=owner_items(OWNER, None))
    assert reply["success"] is success
    if success:
        assert owners_of(sm) == dict.fromkeys(("n0@example.org", "n1@example.org"), OWNER)
    else:
        assert reply["message"] == ["upsertDetails[1] n1@example.org: owner is required in every upsertDetails item"]
        assert sm.state()["contacts"] == 0

"""Notes (object 12) in the Ontraport simulator over real loopback HTTP: create, read, search, update, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.sandbox.conftest import FORM, OP_START, OpAccount

WRITTEN = 1_600_000_000  # when the note was written in the source system


def note(op: OpAccount, path: str = "/1/Notes", **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = op.data(op.api.post(path, json=fields))
    return record


@pytest.mark.parametrize(
    ("path", "extra"), [("/1/Notes", {}), ("/1/objects", {"objectID": 12})], ids=["Notes", "objects"]
)
def test_a_note_answers_the_created_record_with_its_time(op: OpAccount, path: str, extra: dict[str, Any]) -> None:
    """POST /1/Notes (or /1/objects with objectID 12) answers the whole record: strings, `time` and `date` as
    written, `dlm` now."""
    contact = op.contact(firstname="Ada")
    op.clock.advance(7)
    body = {**extra, "contact_id": int(contact), "object_type_id": 0, "data": "Called", "author": 2, "time": WRITTEN}
    record = note(op, path, **body)
    assert record == {
        "id": "1",
        "owner": "1",
        "author": "2",
        "date": str(WRITTEN),
        "time": str(WRITTEN),
        "dlm": str(int(OP_START + 7)),
        "data": "Called",
        "contact_id": contact,
        "object_type_id": "0",
    }
    assert op.data(op.api.get("/1/Note", params={"id": record["id"]})) == record


def test_a_note_without_time_is_dated_now_and_a_form_body_works(op: OpAccount) -> None:
    """Without `time` the note is dated now; a form body (PHP's http_build_query) is read like JSON."""
    contact = op.contact(firstname="Ada")
    body = f"contact_id={contact}&object_type_id=0&data=Line+one%0ALine+two&author=1"
    record = op.data(op.api.post("/1/Notes", content=body, headers=FORM))
    assert (record["time"], record["date"], record["data"]) == (
        str(int(OP_START)),
        str(int(OP_START)),
        "Line one\nLine two",
    )


def test_notes_are_not_deduplicated(op: OpAccount) -> None:
    """The same note posted twice makes two notes (a retried create is a duplicate)."""
    contact = op.contact(firstname="Ada")
    first = note(op, contact_id=contact, data="Same", time=WRITTEN)
    second = note(op, contact_id=contact, data="Same", time=WRITTEN)
    assert first["id"] != second["id"]
    assert op.control.get("/_sandbox/state").json()["notes"] == 2


def test_notes_are_found_by_condition(op: OpAccount) -> None:
    """GET /1/Notes?condition= finds a contact's notes; an unknown field is 400 `Invalid query`."""
    ada, alan = op.contact(firstname="Ada"), op.contact(firstname="Alan")
    mine = [note(op, contact_id=ada, data=f"n{i}")["id"] for i in range(3)]
    note(op, contact_id=alan, data="other")
    assert [n["id"] for n in op.find("Notes", "contact_id", int(ada))] == mine
    listed = op.data(op.api.get("/1/objects", params={"objectID": 12, "condition": f"contact_id={alan}"}))
    assert [n["data"] for n in listed] == ["other"]
    refused = op.api.get("/1/Notes", params={"condition": "subject='x'"})
    assert (refused.status_code, refused.text) == (400, "Invalid query")


@pytest.mark.parametrize(
    ("path", "extra"), [("/1/Notes", {}), ("/1/objects", {"objectID": 12})], ids=["Notes", "objects"]
)
def test_a_note_is_updated_by_id(op: OpAccount, path: str, extra: dict[str, Any]) -> None:
    """PUT /1/Notes with `id` answers attrs = changed fields + dlm + id; writing the same again changes nothing."""
    contact = op.contact(firstname="Ada")
    created = note(op, contact_id=contact, data="Draft", time=WRITTEN)
    op.clock.advance(60)
    body = {**extra, "id": int(created["id"]), "data": "Final", "time": WRITTEN + 5, "author": 3, "colour": "red"}
    attrs = op.data(op.api.put(path, json=body))["attrs"]
    assert attrs == {
        "data": "Final",
        "author": "3",
        "time": str(WRITTEN + 5),
        "date": str(WRITTEN + 5),
        "dlm": str(int(OP_START + 60)),
        "id": created["id"],
    }
    op.clock.advance(60)
    again = op.data(op.api.put(path, json=body))["attrs"]
    assert again == {"dlm": str(int(OP_START + 60)), "id": created["id"]}
    stored = op.data(op.api.get("/1/Note", params={"id": created["id"]}))
    assert (stored["data"], stored["contact_id"], "colour" in stored) == ("Final", contact, False)


def test_a_note_cannot_move_to_an_unknown_contact(op: OpAccount) -> None:
    """An update naming a contact that does not exist is 400 `Invalid Contact ID` and changes nothing."""
    contact = op.contact(firstname="Ada")
    created = note(op, contact_id=contact, data="Stay")
    refused = op.api.put("/1/Notes", json={"id": created["id"], "contact_id": 4040, "data": "Moved"})
    assert (refused.status_code, refused.text) == (400, "Invalid Contact ID")
    assert op.data(op.api.get("/1/Note", params={"id": created["id"]}))["data"] == "Stay"


DELETES: dict[str, Callable[[httpx.Client, str], httpx.Response]] = {
    "Note": lambda api, i: api.delete("/1/Note", params={"id": i}),
    "object": lambda api, i: api.delete("/1/object", params={"objectID": 12, "id": i}),
    "form-body": lambda api, i: api.request("DELETE", "/1/Note", content=f"id={i}", headers=FORM),
}


@pytest.mark.parametrize("how", list(DELETES))
def test_a_note_is_deleted(op: OpAccount, how: str) -> None:
    """DELETE /1/Note (or /1/object with objectID 12) answers code 0 without data; the note is gone after."""
    contact = op.contact(firstname="Ada")
    note_id = note(op, contact_id=contact, data="Bye")["id"]
    assert DELETES[how](op.api, note_id).json() == {"code": 0, "account_id": 50}
    gone = op.api.get("/1/Note", params={"id": note_id})
    assert (gone.status_code, gone.text) == (404, "Object not found")


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"contact_id": 4040, "data": "x"}, "Invalid Contact ID"),
        ({"contact_id": "ada", "data": "x"}, "Invalid Contact ID"),
        ({"data": "x"}, "Invalid Contact ID"),
        ({"contact_id": "{contact}", "data": "x", "time": "yesterday"}, "Invalid time"),
        ({"contact_id": "{contact}", "data": "x", "time": -5}, "Invalid time"),
        ({"contact_id": "{contact}", "data": "x", "author": "Ada"}, "Invalid author"),
        ({"contact_id": "{contact}", "data": {"text": "x"}}, "Invalid data"),
    ],
)
def test_unusable_notes_are_refused(op: OpAccount, body: dict[str, Any], text: str) -> None:
    """A note for an unknown contact, with a time or author that is not a whole number, or data that is not text,
    is a plain-text 400 and nothing is created."""
    contact = op.contact(firstname="Ada")
    sent = {k: (contact if v == "{contact}" else v) for k, v in body.items()}
    refused = op.api.post("/1/Notes", json=sent)
    assert (refused.status_code, refused.text) == (400, text)
    assert op.control.get("/_sandbox/notes").json()["notes"] == []


def test_any_author_is_kept_by_default(op: OpAccount) -> None:
    """By default the author may be any whole number (production code posts a contact id) or absent."""
    contact = op.contact(firstname="Ada")
    assert note(op, contact_id=contact, data="x", author=int(contact) + 500)["author"] == str(int(contact) + 500)
    assert note(op, contact_id=contact, data="x")["author"] == ""


def test_staff_authors_switch_refuses_other_authors(op: OpAccount) -> None:
    """With note_authors "staff" only staff user ids are kept; another id or none is 400 `Invalid author`."""
    contact = op.contact(firstname="Ada")
    op.behave(note_authors="staff")
    assert note(op, contact_id=contact, data="x", author=2)["author"] == "2"
    for body in ({"author": 99}, {}):
        refused = op.api.post("/1/Notes", json={"contact_id": contact, "data": "x", **body})
        assert (refused.status_code, refused.text) == (400, "Invalid author")
    created = note(op, contact_id=contact, data="y", author=1)
    refused = op.api.put("/1/Notes", json={"id": created["id"], "author": 42})
    assert (refused.status_code, refused.text) == (400, "Invalid author")


def test_note_shape_id_answers_only_the_id(op: OpAccount) -> None:
    """With note_shape "id" a create answers data = {"id": ...}; the note is stored whole all the same."""
    contact = op.contact(firstname="Ada")
    op.behave(note_shape="id")
    assert note(op, contact_id=contact, data="x", time=WRITTEN) == {"id": "1"}
    assert op.data(op.api.get("/1/Note", params={"id": 1}))["time"] == str(WRITTEN)


def test_a_note_with_a_lone_surrogate_is_refused(op: OpAccount) -> None:
    """A JSON body whose text holds an unpaired surrogate is a 400 (the server keeps answering) and stores nothing."""
    contact = op.contact(firstname="Ada")
    body = b'{"contact_id": %s, "data": "half \\ud83d a smile"}' % contact.encode()
    refused = op.api.post("/1/Notes", content=body, headers={"Content-Type": "application/json"})
    assert (refused.status_code, refused.text) == (400, "Invalid request body")
    assert op.control.get("/_sandbox/notes").json()["notes"] == []
    assert note(op, contact_id=contact, data="whole \U0001f600 smile")["data"] == "whole \U0001f600 smile"

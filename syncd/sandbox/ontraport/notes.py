"""Notes (object type 12) in the Ontraport simulator: the fields a create or an update writes (pure rules).

`POST /1/Notes` (or `POST /1/objects` with `objectID=12`) takes `contact_id` (the record the note is on),
`object_type_id` (0, a contact), `data` (the note text), `author` (a staff user id) and `time` (when the note was
written, epoch seconds; now when absent). The record keeps `time`, and `date` with the same value, plus `dlm`.
`PUT /1/Notes` with `id` changes `data`, `author`, `time` or `contact_id`.

Which authors the API accepts is unconfirmed: production code posts a contact id as the author and reads the new
note's id back, so by default any whole number (or nothing) is kept; with `note_authors = "staff"` only the
account's staff user ids (`STAFF_USERS`) are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncd.sandbox.ontraport.errors import ApiError
from syncd.sandbox.ontraport.fields import Value, to_text
from syncd.sandbox.ontraport.ids import parse_id

FIELDS = ("id", "owner", "author", "date", "time", "dlm", "data", "contact_id", "object_type_id")
STAFF_USERS: dict[int, str] = {1: "Account Owner", 2: "Sales Manager", 3: "Support Agent"}
EDITABLE = ("data", "author", "time", "contact_id")


def contact_of(params: Mapping[str, Any]) -> tuple[int, int]:
    """(contact_id, object_type_id) a create names (400 `Invalid Contact ID` when unusable)."""
    contact_id = parse_id(params.get("contact_id"), what="Contact ID")
    object_type_id = parse_id(params.get("object_type_id", 0), what="object_type_id")
    return contact_id, object_type_id


def new_note(params: Mapping[str, Any], now: str, *, authors: str) -> dict[str, Value]:
    """The fields of a new note (the caller has checked that the contact exists)."""
    contact_id, object_type_id = contact_of(params)
    when = _time(params.get("time"), now)
    return {
        "owner": "1",
        "author": _author(params.get("author"), authors),
        "date": when,
        "time": when,
        "dlm": now,
        "data": _text(params.get("data"), "data"),
        "contact_id": str(contact_id),
        "object_type_id": str(object_type_id),
    }


def note_changes(params: Mapping[str, Any], current: Mapping[str, Value], *, authors: str) -> dict[str, Value]:
    """The editable fields an update changes (unknown keys are ignored, as on every write)."""
    written: dict[str, Value] = {}
    if "data" in params:
        written["data"] = _text(params["data"], "data")
    if "author" in params:
        written["author"] = _author(params["author"], authors)
    if "time" in params:
        written["time"] = written["date"] = _time(params["time"], current.get("time") or "")
    if "contact_id" in params:
        written["contact_id"] = str(parse_id(params["contact_id"], what="Contact ID"))
    return {k: v for k, v in written.items() if v != current.get(k)}


def _text(value: Any, what: str) -> str:
    text = to_text(value)
    if text is None:
        raise ApiError(400, f"Invalid {what}")
    return text


def _time(value: Any, default: str) -> str:
    if value is None or value == "":
        return default
    return str(parse_id(value, what="time"))


def _author(value: Any, authors: str) -> str:
    if value is None or value == "":
        if authors == "staff":
            raise ApiError(400, "Invalid author")
        return ""
    author = parse_id(value, what="author")
    if authors == "staff" and author not in STAFF_USERS:
        raise ApiError(400, "Invalid author")
    return str(author)

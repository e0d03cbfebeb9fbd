"""Tags in the Ontraport simulator: tagging contacts by tag name, as `PUT /1/objects/tagByName` does.

`PUT /1/objects/tagByName` with `objectID` (0: contacts), `ids` (a JSON array of record ids in a JSON body, as the
official SDK's tests send it; `ids=1,2` or `ids[0]=1` in a form) and `add_names` (an array of tag names) adds the
tags to those records, creating a tag the account does not have yet; `DELETE /1/objects/tagByName` with
`remove_names` takes them off again. Ontraport processes both in the background and answers at once with `data` =
"The tag is now being processed." (ids of records that do not exist are passed over, as a background job would).
Tag names match case-insensitively; a new tag keeps the spelling it was first written with.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from syncd.sandbox.ontraport.errors import ApiError
from syncd.sandbox.ontraport.fields import to_text
from syncd.sandbox.ontraport.ids import id_list, parse_id
from syncd.sandbox.ontraport.model import CONTACT, OntraportModel

PROCESSING = "The tag is now being processed."


class TagBook:
    """The account's tags and which contacts carry them (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}  # casefolded name -> tag id
        self._names: dict[int, str] = {}  # tag id -> name as first written
        self._tagged: dict[int, list[int]] = {}  # contact id -> tag ids, in the order added

    def add(self, contact_ids: Iterable[int], names: Iterable[str]) -> None:
        with self._lock:
            tag_ids = [self._tag_id(name) for name in names]
            for contact_id in contact_ids:
                carried = self._tagged.setdefault(contact_id, [])
                carried.extend(t for t in tag_ids if t not in carried)

    def remove(self, contact_ids: Iterable[int], names: Iterable[str]) -> None:
        with self._lock:
            gone = {self._ids[n.casefold()] for n in names if n.casefold() in self._ids}
            for contact_id in contact_ids:
                carried = self._tagged.get(contact_id, [])
                self._tagged[contact_id] = [t for t in carried if t not in gone]

    def names_of(self, contact_id: int) -> list[str]:
        """The names of the tags a contact carries, in the order they were added."""
        with self._lock:
            return [self._names[t] for t in self._tagged.get(contact_id, [])]

    def all(self) -> dict[str, str]:
        """Every tag of the account: id -> name."""
        with self._lock:
            return {str(i): name for i, name in sorted(self._names.items())}

    def _tag_id(self, name: str) -> int:
        key = name.casefold()
        if key not in self._ids:
            tag_id = len(self._names) + 1
            self._ids[key] = tag_id
            self._names[tag_id] = name
        return self._ids[key]


def tag_by_name(
    model: OntraportModel, book: TagBook, params: Mapping[str, Any], *, add: bool, json_strings: str = "refuse"
) -> str:
    """`PUT` (add) or `DELETE` (remove) `/1/objects/tagByName`: the answer's `data`, or an ApiError. `json_strings`
    is how a JSON `ids` that is not an array is read (see `ids.id_list`)."""
    if parse_id(params.get("objectID"), what="objectID") != CONTACT:
        raise ApiError(400, "Invalid objectID")
    ids = id_list(params, json_strings=json_strings)
    names = _names(params.get("add_names" if add else "remove_names"))
    if not ids.given or not names:
        raise ApiError(400, "Invalid request: ids and " + ("add_names" if add else "remove_names") + " are required")
    existing = [i for i in ids.ids if _exists(model, i)]
    if add:
        book.add(existing, names)
    else:
        book.remove(existing, names)
    return PROCESSING


def _exists(model: OntraportModel, contact_id: int) -> bool:
    try:
        model.get(CONTACT, contact_id)
    except ApiError:
        return False
    return True


def _names(value: Any) -> list[str]:
    """An array of names (JSON, or `add_names[0]=...` form fields); a bare string is one name."""
    items = value if isinstance(value, list) else [value]
    names: list[str] = []
    for item in items:
        text = to_text(item) if not isinstance(item, list | dict) else None
        if text is None:
            raise ApiError(400, "Invalid request: tag names must be strings")
        if text.strip():
            names.append(text.strip())
    return names

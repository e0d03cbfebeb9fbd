"""Record ids in request parameters, read the way the Ontraport API reads them.

A single id (`id=5`) must be a whole number. A list of ids (`ids`, on the bulk endpoints such as
`objects/tagByName` and the transaction reversals) is a JSON array of integers in a JSON body, as the official SDK's
tests send it (`{"objectID": 0, "ids": [10], ...}`); a JSON string such as "1,2" is not read as a list (a community
client fixed exactly that in 2023), so it is refused or, with `json_string_ids = "ignore"`, acts on nothing. A form
body keeps PHP's readings: `ids=1,2`, `ids[]=1&ids[]=2` or `ids[0]=1`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syncd.sandbox.ontraport.errors import ApiError
from syncd.sandbox.ontraport.fields import to_text
from syncd.sandbox.ontraport.forms import Params


def parse_id(value: Any, *, what: str = "ID") -> int:
    """A whole, non-negative number (a JSON integer or its digits); else 400 `Invalid <what>`."""
    text = to_text(value) if not isinstance(value, bool) else None
    if text is None or not text.strip().isdigit():
        raise ApiError(400, f"Invalid {what}")
    return int(text)


@dataclass(frozen=True, slots=True)
class IdList:
    """The ids a bulk call names: `given` is False when the request names none (a 400 for the caller)."""

    ids: tuple[int, ...]
    given: bool


def id_list(params: Mapping[str, Any], key: str = "ids", *, json_strings: str = "refuse") -> IdList:
    """The ids under `key`. `json_strings` is "refuse" (400 `Invalid ids`) or "ignore" (act on nothing) for a JSON
    body whose `key` is not an array."""
    value = params.get(key)
    if value is None or value in ("", []):
        return IdList((), False)
    from_json = isinstance(params, Params) and params.from_json(key)
    if from_json and not isinstance(value, list):
        if json_strings == "ignore":
            return IdList((), True)
        raise ApiError(400, f"Invalid {key}")
    if isinstance(value, list):
        items: list[Any] = value
    elif isinstance(value, dict):  # a form's ids[3]=7: PHP reads the values
        items = list(value.values())
    else:
        text = to_text(value)
        if text is None:
            raise ApiError(400, f"Invalid {key}")
        items = [part for part in text.split(",") if part.strip()]
    return IdList(tuple(parse_id(item) for item in items), True)

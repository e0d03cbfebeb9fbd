"""The Ontraport simulator's behaviour switches: one per reading of the API that no public source settles.

`POST /_sandbox/behaviour` changes them at run time (with `rate`, which the app keeps); each is validated here,
and a bad value changes nothing. Defaults follow the best evidence (the official SDK and its tests, Ontraport's
WooCommerce plugin, community clients with live tests); the other reading is one switch away.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PRODUCT_LIMIT = 50_000  # products one account may hold


@dataclass(frozen=True, slots=True)
class Behaviour:
    """The switches (see `describe` for what each one does)."""

    json_errors: bool = False
    note_shape: str = "record"
    not_found_status: int = 404
    product_limit: int = PRODUCT_LIMIT
    trans_date_default: str = "now"
    logged_status: str = "paid"
    reversal_refusal: str = "ignore"
    mark_paid_ids: bool = False
    json_string_ids: str = "refuse"
    oprid_referrers: bool = False
    note_authors: str = "any"
    external_order_ids: str = "text"

    def changed(self, changes: Mapping[str, Any]) -> Behaviour:
        """A copy with `changes` applied; ValueError (naming the key) when one is unknown or unusable."""
        values: dict[str, Any] = {}
        for key, value in changes.items():
            rule = _RULES.get(key)
            if rule is None:
                raise ValueError(f"unknown behaviour key {key!r}")
            allowed, text = rule
            if not _allowed(value, allowed):
                raise ValueError(f"{key} must be {text}")
            values[key] = value
        return dataclasses.replace(self, **values)

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _allowed(value: Any, allowed: tuple[Any, ...] | type) -> bool:
    if isinstance(allowed, tuple):
        return any(type(value) is type(a) and value == a for a in allowed)
    if allowed is int:
        return type(value) is int and 0 <= value <= 10**9
    return type(value) is allowed


_RULES: dict[str, tuple[tuple[Any, ...] | type, str]] = {
    "json_errors": (bool, "true or false"),
    "note_shape": (("record", "id"), '"record" or "id"'),
    "not_found_status": ((404, 400), "404 or 400"),
    "product_limit": (int, "a whole number of products (0 or more)"),
    "trans_date_default": (("now", "epoch"), '"now" or "epoch"'),
    "logged_status": (("paid", "unpaid"), '"paid" or "unpaid"'),
    "reversal_refusal": (("ignore", "error"), '"ignore" or "error"'),
    "mark_paid_ids": (bool, "true or false"),
    "json_string_ids": (("refuse", "ignore"), '"refuse" or "ignore"'),
    "oprid_referrers": (bool, "true or false"),
    "note_authors": (("any", "staff"), '"any" or "staff"'),
    "external_order_ids": (("text", "number"), '"text" or "number"'),
}
KEYS = frozenset(_RULES)

# What each switch does, for the control route's documentation and the tests.
DESCRIPTIONS: dict[str, str] = {
    "json_errors": "errors as the reference's JSON envelope instead of the plain text seen in real traffic",
    "note_shape": 'a created note answers the whole record ("record") or only {"id": ...} ("id")',
    "not_found_status": "the status of `Object not found` (404 since 2022-04-13, 400 before)",
    "product_limit": "products the account may hold; creating one more is refused",
    "trans_date_default": 'processManual without trans_date (or 0) is dated now ("now") or at the epoch ("epoch")',
    "logged_status": "a chargeLog transaction starts Paid (1) or Unpaid/collections (0)",
    "reversal_refusal": 'a reversal its status does not allow leaves it unchanged silently ("ignore") or is a 400',
    "mark_paid_ids": "transaction/markPaid also reads objectID + ids (the SDK and .NET client send only id)",
    "json_string_ids": 'a JSON `ids` that is not an array is refused ("refuse") or acts on nothing ("ignore")',
    "oprid_referrers": "processManual's oprid also sets the contact's freferrer (when unset) and lreferrer",
    "note_authors": 'a note\'s author may be any id ("any") or must be a staff user ("staff")',
    "external_order_ids": 'a transaction keeps external_order_id as sent ("text") or as a number column would'
    ' ("number": text that is not digits becomes "0")',
}

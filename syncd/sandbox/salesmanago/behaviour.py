"""The SALESmanago simulator's knobs: one per behaviour no public source settles, each with its readings.

Defaults are the reading the evidence favours (a live-tested reply shape, a documented limit) or, where there is
none, the simulator's long-standing answer. `POST /_sandbox/behaviour` changes them at run time.

- `batch_invalid` — `contact/batchupsert` with an invalid item: `reject_all` (default: `success: false`, nothing
  written, `message` names each bad item and its e-mail) or `partial` (the valid items are written, `success: true`,
  `contactIds` lists only them, `message` names each refused item as `upsertDetails[n] <e-mail>: <reason>`).
- `item_owner` — a `contact/batchupsert` item whose own `owner` is another user of the account than the call's:
  `refuse` (default: the item is refused like an invalid one), `item` (its contact is owned by the item's owner) or
  `top` (the item's owner is disregarded). An item owner that is no user of the account is refused under every
  reading.
- `item_owner_missing` — a `contact/batchupsert` item without an `owner` of its own (SALESmanago's own library puts
  the owner in every item as well as at the top): `call` (default: the call's owner) or `refuse` (the item is
  refused like an invalid one, naming `owner`).
- `blank_strings` — `""` in a contact upsert (contact text fields, address parts, properties, `province`,
  `birthday`): `clear` (default: the field becomes empty, `birthday` is removed), `ignore` (the field keeps its
  value) or `refuse` (`success: false`, the message names the field).
- `delete_result` — the `result` of `contact/delete`: `null` (default, seen in live tests), `absent`, `true`, or
  `string` (the text "deleted").
- `delete_unknown` — `contact/delete` of an e-mail the account does not hold: `not_found` (default:
  "Contact not found: <e-mail>"), `not_exist` ("Contact does not exist: <e-mail>"), `unknown`
  ("Unknown contact: <e-mail>"), each `success: false`; or `success` (`success: true`, nothing deleted).
- `location_rule` — what an external event's `location` may hold: `length` (default: up to 255 characters, the
  limit every other text field of an event has), `feed36` (the documented product-feed rule: at most 36 characters
  of letters, digits and / _ - .) or `wordpress` (the WordPress plugin's own check: 3 to 36 letters, digits or _,
  not starting with a digit).
- `value_decimals` — an event `value` with more than 2 decimal places (the documentation allows 19 digits and 2
  after the point): `refuse` (default) or `round` (stored rounded half-up to 2 places). More than 19 integer
  digits are refused under both readings.
- `delete_external_id` — `deleteContactExtEvent` by an `externalId` several events share (adding never
  deduplicates): `all` (default: every one of them goes), `newest` (only the one added last) or `refuse`
  (`success: false`, nothing deleted).
- `list_event_id` — the key of an event's id in `contactExtEvents` of `contact/list`: `eventId` (default) or `id`.
- `throttle` and `rate` — how an over-the-limit call is answered (`429` default, `503`, or `message`: HTTP 200
  `success: false` about a limit) and the limit itself ("10/s", or null for none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from syncd.units import Rate, parse_rate

CHOICES = {
    "batch_invalid": ("reject_all", "partial"),
    "item_owner": ("refuse", "item", "top"),
    "item_owner_missing": ("call", "refuse"),
    "blank_strings": ("clear", "ignore", "refuse"),
    "delete_result": ("null", "absent", "true", "string"),
    "delete_unknown": ("not_found", "not_exist", "unknown", "success"),
    "location_rule": ("length", "feed36", "wordpress"),
    "value_decimals": ("refuse", "round"),
    "delete_external_id": ("all", "newest", "refuse"),
    "list_event_id": ("eventId", "id"),
    "throttle": ("429", "503", "message"),
}

# `contact/delete` of an unknown e-mail, per `delete_unknown` (formatted with the e-mail as sent).
UNKNOWN_CONTACT = {
    "not_found": "Contact not found: {email}",
    "not_exist": "Contact does not exist: {email}",
    "unknown": "Unknown contact: {email}",
}


@dataclass(frozen=True, slots=True)
class Behaviour:
    """The knobs for what no public source settles (see the module docstring)."""

    batch_invalid: str = "reject_all"
    item_owner: str = "refuse"
    item_owner_missing: str = "call"
    blank_strings: str = "clear"
    delete_result: str = "null"
    delete_unknown: str = "not_found"
    location_rule: str = "length"
    value_decimals: str = "refuse"
    delete_external_id: str = "all"
    list_event_id: str = "eventId"
    throttle: str = "429"
    rate: Rate | None = None

    def updated(self, data: Mapping[str, Any]) -> Behaviour:
        """A copy with the knobs in `data` changed (`rate` as "10/s" or null); ValueError on a bad knob."""
        known = {f.name for f in fields(self)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown behaviour keys: {', '.join(sorted(unknown))}")
        changes: dict[str, Any] = {}
        for key, value in data.items():
            if key == "rate":
                changes[key] = None if value is None else parse_rate(str(value))
            elif isinstance(value, str) and value in CHOICES[key]:
                changes[key] = value
            else:
                raise ValueError(f"{key} must be one of {', '.join(CHOICES[key])}")
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rate": None if self.rate is None else str(self.rate)}

"""The simulated SALESmanago account's external events (purchases, offers, …) and their validation.

`parse_event` checks one `contactEvent` the way the simulator enforces it (pure); `EventLog` keeps the events, in
memory and not thread-safe on its own (the simulator holds its lock around every call).

What is enforced: `date` as Unix time in milliseconds (a JSON number, within a Java long) or an ISO-8601 date-time
with a UTC offset (stored as milliseconds); one of the 25 event types (case-sensitive); `value` a finite JSON
number of at most 19 integer digits, with at most 2 decimals unless `value_decimals` is `round`; the text fields as
strings within their lengths, counted in UTF-16 code units as SALESmanago's Java backend counts them; `location`
further by `location_rule`. Adding never deduplicates: the same `externalId` twice makes two events.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from syncd.sandbox.salesmanago.fields import Refused, utf16_length

EVENT_TYPES = (
    # the older 13
    "PURCHASE", "CART", "VISIT", "PHONE_CALL", "OTHER", "RESERVATION", "CANCELLED", "ACTIVATION", "MEETING",
    "OFFER", "DOWNLOAD", "LOGIN", "TRANSACTION",
    # and the newer ones
    "CANCELLATION", "RETURN", "SURVEY", "APP_STATUS", "APP_TYPE_WEB", "APP_TYPE_MANUAL", "APP_TYPE_RETENTION",
    "APP_TYPE_UPSALE", "LOAN_STATUS", "LOAN_ORDER", "FIRST_LOAN", "REPEATED_LOAN",
)  # fmt: skip
DETAIL_KEYS = tuple(f"detail{n}" for n in range(1, 21))
TEXT_LIMITS = {
    "description": 2048,
    "products": 512,
    "location": 255,
    "externalId": 255,
    "shopDomain": 255,
    **dict.fromkeys(DETAIL_KEYS, 255),
}
BATCH_LIMIT = 1000
MAX_DATE_MS = 2**63 - 1  # a Java long
VALUE_DIGITS = 19  # integer digits a value may not reach
LOCATION_RULES = {
    "feed36": (re.compile(r"^[A-Za-z0-9/_.-]{1,36}$"), "at most 36 letters, digits or / _ - ."),
    "wordpress": (re.compile(r"^[A-Za-z_][A-Za-z0-9_]{2,35}$"), "3 to 36 letters, digits or _, not a leading digit"),
}


def parse_event(value: object, *, creating: bool, location_rule: str, value_decimals: str) -> dict[str, Any]:
    """The fields of a `contactEvent` after validation (dates as epoch ms); on an update every field is optional."""
    if not isinstance(value, dict):
        raise Refused("contactEvent is required")
    fields: dict[str, Any] = {}
    if value.get("date") is not None:
        fields["date"] = event_date(value["date"])
    elif creating:
        raise Refused("contactEvent.date is required")
    kind = value.get("contactExtEventType")
    if kind is not None:
        if kind not in EVENT_TYPES:
            raise Refused(f"Invalid contactExtEventType: {kind}")
        fields["contactExtEventType"] = kind
    elif creating:
        raise Refused("contactEvent.contactExtEventType is required")
    if value.get("value") is not None:
        fields["value"] = event_value(value["value"], value_decimals)
    for key, limit in TEXT_LIMITS.items():
        text = value.get(key)
        if text is None:
            continue
        if not isinstance(text, str):
            raise Refused(f"contactEvent.{key} must be a string")
        if utf16_length(text) > limit:
            raise Refused(f"contactEvent.{key} is longer than {limit} characters")
        fields[key] = text
    location = fields.get("location")
    if location is not None and location_rule in LOCATION_RULES:
        pattern, rule = LOCATION_RULES[location_rule]
        if not pattern.match(location):
            raise Refused(f"contactEvent.location must be {rule}")
    return fields


def event_date(value: object) -> int:
    """Epoch milliseconds from a JSON integer of milliseconds or an ISO-8601 date-time with an offset."""
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            when = None
        if when is None or when.tzinfo is None or "T" not in value.upper():
            raise Refused(f"contactEvent.date must be epoch milliseconds or an ISO-8601 date-time, got {value!r}")
        value = int(when.timestamp() * 1000)
    elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Refused("contactEvent.date must be epoch milliseconds or an ISO-8601 date-time")
    if not 0 <= value <= MAX_DATE_MS:
        raise Refused(f"contactEvent.date is out of range: {value}")
    return int(value)


def event_value(value: object, decimals: str) -> int | float:
    """A validated event value: a finite number below 10^19 with at most 2 decimals (or rounded to 2)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Refused("contactEvent.value must be a number")
    exact = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    if abs(exact) >= 10**VALUE_DIGITS:
        raise Refused(f"contactEvent.value has more than {VALUE_DIGITS} digits before the decimal point")
    exponent = exact.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        if decimals != "round":
            raise Refused("contactEvent.value has more than 2 digits after the decimal point")
        return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    return value


@dataclass(slots=True)
class ExtEvent:
    event_id: str
    contact_id: str
    owner: str
    seq: int  # the order events were added in
    fields: dict[str, Any]

    def dump(self, email: str | None) -> dict[str, Any]:
        """The event as the control route shows it (`email`: its contact's current e-mail)."""
        return {
            "eventId": self.event_id,
            "contactId": self.contact_id,
            "email": email,
            "owner": self.owner,
            **self.fields,
        }


class EventLog:
    """The account's events, in the order they were added, indexed by contact and by externalId."""

    def __init__(self) -> None:
        self._events: dict[str, ExtEvent] = {}
        self._by_contact: dict[str, dict[str, None]] = {}  # contactId -> its event ids (an ordered set)
        self._by_external: dict[str, dict[str, None]] = {}  # externalId -> event ids carrying it
        self._seq = 0
        self.deleted = 0  # events removed by deleteContactExtEvent (for the state counts)

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[ExtEvent]:
        return iter(self._events.values())

    def of_contact(self, contact_id: str) -> list[ExtEvent]:
        """The contact's events in the order they were added."""
        return [self._events[event_id] for event_id in self._by_contact.get(contact_id, ())]

    def with_external_id(self, external_id: str) -> list[ExtEvent]:
        """The events carrying this externalId, in the order they were added."""
        found = (self._events[event_id] for event_id in self._by_external.get(external_id, ()))
        return sorted(found, key=lambda event: event.seq)

    def add(self, *, contact_id: str, owner: str, fields: dict[str, Any]) -> ExtEvent:
        self._seq += 1
        event = ExtEvent(str(uuid.uuid4()), contact_id, owner, self._seq, fields)
        self._events[event.event_id] = event
        self._by_contact.setdefault(contact_id, {})[event.event_id] = None
        self._index_external(event)
        return event

    def update(self, event_id: object, fields: dict[str, Any]) -> ExtEvent:
        event = self.get(event_id)
        self._unindex_external(event)
        event.fields.update(fields)
        self._index_external(event)
        return event

    def get(self, event_id: object) -> ExtEvent:
        if not isinstance(event_id, str) or not event_id:
            raise Refused("eventId is required")
        event = self._events.get(event_id)
        if event is None:
            raise Refused(f"Event not found: {event_id}")
        return event

    def remove(self, events: list[ExtEvent]) -> None:
        """Delete these events (deleteContactExtEvent)."""
        for event in events:
            self._drop(event)
        self.deleted += len(events)

    def forget_contact(self, contact_id: str) -> None:
        """Drop a permanently deleted contact's events (not counted as deleted events)."""
        for event in self.of_contact(contact_id):
            self._drop(event)

    def _drop(self, event: ExtEvent) -> None:
        del self._events[event.event_id]
        siblings = self._by_contact[event.contact_id]
        del siblings[event.event_id]
        if not siblings:
            del self._by_contact[event.contact_id]
        self._unindex_external(event)

    def _index_external(self, event: ExtEvent) -> None:
        external_id = event.fields.get("externalId")
        if external_id is not None:
            self._by_external.setdefault(external_id, {})[event.event_id] = None

    def _unindex_external(self, event: ExtEvent) -> None:
        external_id = event.fields.get("externalId")
        if external_id is None:
            return
        ids = self._by_external[external_id]
        del ids[event.event_id]
        if not ids:
            del self._by_external[external_id]

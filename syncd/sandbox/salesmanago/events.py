"""The simulated SALESmanago account's external events (purchases, offers, …) and their validation.

In memory and not thread-safe on its own: the simulator holds its lock around every call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from syncd.sandbox.salesmanago.fields import Refused

EVENT_TYPES = frozenset(
    {
        # the older 13
        "PURCHASE", "CART", "VISIT", "PHONE_CALL", "OTHER", "RESERVATION", "CANCELLED", "ACTIVATION", "MEETING",
        "OFFER", "DOWNLOAD", "LOGIN", "TRANSACTION",
        # and the newer ones
        "CANCELLATION", "RETURN", "SURVEY", "APP_STATUS", "APP_TYPE_WEB", "APP_TYPE_MANUAL", "APP_TYPE_RETENTION",
        "APP_TYPE_UPSALE", "LOAN_STATUS", "LOAN_ORDER", "FIRST_LOAN", "REPEATED_LOAN",
    }
)  # fmt: skip
TEXT_LIMITS = {
    "description": 2048,
    "products": 512,
    "location": 255,
    "externalId": 255,
    "shopDomain": 255,
    **{f"detail{n}": 255 for n in range(1, 21)},
}
BATCH_LIMIT = 1000


def parse_event(value: object, *, creating: bool) -> dict[str, Any]:
    """The fields of a `contactEvent` after validation; on an update every field is optional."""
    if not isinstance(value, dict):
        raise Refused("contactEvent is required")
    fields: dict[str, Any] = {}
    when = value.get("date")
    if when is not None:
        if isinstance(when, bool) or not isinstance(when, int | float) or when < 0:
            raise Refused("contactEvent.date must be a Unix time in milliseconds")
        fields["date"] = int(when)
    elif creating:
        raise Refused("contactEvent.date is required")
    kind = value.get("contactExtEventType")
    if kind is not None:
        if kind not in EVENT_TYPES:
            raise Refused(f"Invalid contactExtEventType: {kind}")
        fields["contactExtEventType"] = kind
    elif creating:
        raise Refused("contactEvent.contactExtEventType is required")
    amount = value.get("value")
    if amount is not None:
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise Refused("contactEvent.value must be a number")
        fields["value"] = amount
    for key, limit in TEXT_LIMITS.items():
        text = value.get(key)
        if text is None:
            continue
        if not isinstance(text, str):
            raise Refused(f"contactEvent.{key} must be a string")
        if len(text) > limit:
            raise Refused(f"contactEvent.{key} is longer than {limit} characters")
        fields[key] = text
    return fields


@dataclass(slots=True)
class ExtEvent:
    event_id: str
    contact_id: str
    email: str
    owner: str
    fields: dict[str, Any]

    def dump(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "contactId": self.contact_id,
            "email": self.email,
            "owner": self.owner,
            **self.fields,
        }


class EventLog:
    def __init__(self) -> None:
        self._events: dict[str, ExtEvent] = {}

    def __len__(self) -> int:
        return len(self._events)

    def events(self) -> list[ExtEvent]:
        return list(self._events.values())

    def add(self, *, contact_id: str, email: str, owner: str, fields: dict[str, Any]) -> ExtEvent:
        event = ExtEvent(str(uuid.uuid4()), contact_id, email, owner, fields)
        self._events[event.event_id] = event
        return event

    def update(self, event_id: object, fields: dict[str, Any]) -> ExtEvent:
        event = self._get(event_id)
        event.fields.update(fields)
        return event

    def delete(self, event_id: object) -> None:
        del self._events[self._get(event_id).event_id]

    def _get(self, event_id: object) -> ExtEvent:
        if not isinstance(event_id, str) or not event_id:
            raise Refused("eventId is required")
        event = self._events.get(event_id)
        if event is None:
            raise Refused(f"Event not found: {event_id}")
        return event

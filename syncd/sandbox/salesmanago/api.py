"""The SALESmanago API methods the simulator answers, over an in-memory account (no HTTP, no auth, no lock).

`Account.call(method, body, owner)` returns the reply body of an authenticated call or raises `Refused`, which the
HTTP layer answers as HTTP 200 `success: false`. Where the real API's behaviour is unconfirmed, `Behaviour` picks
the reading:

- `batch_invalid`: what `contact/batchupsert` does when an item is invalid. `"reject_all"` (default): the whole call
  is `success: false`, nothing is written, and `message` names each bad item and its e-mail. `"partial"`: the valid
  items are written, the reply is `success: true`, `contactIds` lists only the written contacts and `message` names
  each refused item (`upsertDetails[n] <e-mail>: <reason>`).
- `delete_result`: the `result` of `contact/delete`: `"absent"`, `"true"` (JSON true, default) or `"string"`
  (the text "deleted").
- `throttle` and `rate` are the HTTP layer's (how an over-the-limit call is answered, and the limit).

Reading choices: `contactIds` is keyed by the contact's e-mail lower-cased, after any rename; `reject_emails` (the
operator's poison list) applies to upserts and to external events named by e-mail; external events need a live
(not deleted) contact; `hasContact` answers false for a soft-deleted contact while `contact/basic` shows it with
`"deleted": true`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from syncd.sandbox.salesmanago.contacts import Contact, ContactBook
from syncd.sandbox.salesmanago.events import BATCH_LIMIT, EventLog, parse_event
from syncd.sandbox.salesmanago.fields import Refused, Upsert, checked_email, parse_upsert
from syncd.units import Rate, parse_rate

CHOICES = {
    "batch_invalid": ("reject_all", "partial"),
    "delete_result": ("absent", "true", "string"),
    "throttle": ("429", "503", "message"),
}


@dataclass(frozen=True, slots=True)
class Behaviour:
    """The knobs for what no public source settles (see the module docstring)."""

    batch_invalid: str = "reject_all"
    delete_result: str = "true"
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
            elif value in CHOICES[key]:
                changes[key] = value
            else:
                raise ValueError(f"{key} must be one of {', '.join(CHOICES[key])}")
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rate": None if self.rate is None else str(self.rate)}


def ok(**method_fields: Any) -> dict[str, Any]:
    return {"success": True, "message": [], **method_fields}


class Account:
    """One simulated SALESmanago account: its contacts, external events and what each e-mail received."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.contacts = ContactBook()
        self.events = EventLog()
        self.behaviour = Behaviour()
        self.reject: frozenset[str] = frozenset()  # lower-case e-mails refused as invalid (an operator's poison list)
        self.writes: Counter[str] = Counter()  # upserts applied, by the contact's resulting e-mail
        self._clock = clock
        self._methods: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
            "contact/upsert": self._upsert,
            "contact/batchupsert": self._batch_upsert,
            "contact/delete": self._delete,
            "contact/basic": self._basic,
            "contact/hasContact": self._has_contact,
            "contact/addContactExtEvent": self._add_event,
            "v2/contact/addContactExtEvent": self._add_event,
            "contact/batchAddContactExtEvent": self._batch_add_events,
            "v2/contact/updateContactExtEvent": self._update_event,
            "contact/deleteContactExtEvent": self._delete_event,
        }

    def knows(self, method: str) -> bool:
        return method in self._methods

    def call(self, method: str, body: dict[str, Any], owner: str) -> dict[str, Any]:
        """The reply to an authenticated call of `method` (a path under /api/) by `owner`; raises Refused."""
        return self._methods[method](body, owner)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _write(self, change: Upsert, owner: str) -> Contact:
        contact = self.contacts.upsert(change, owner, self._now_ms())
        self.writes[contact.email] += 1
        return contact

    def _upsert(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        contact = self._write(parse_upsert(body, self.reject), owner)
        return ok(contactId=contact.contact_id, externalId=contact.text.get("externalId"))

    def _batch_upsert(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        items = body.get("upsertDetails")
        if not isinstance(items, list) or not items:
            raise Refused("upsertDetails must be a non-empty list")
        written: dict[str, str] = {}
        if self.behaviour.batch_invalid == "partial":
            problems = []
            for n, item in enumerate(items):
                try:
                    contact = self._write(parse_upsert(item, self.reject), owner)
                except Refused as exc:
                    problems.append(_item_problem(n, item, exc))
                else:
                    written[contact.email] = contact.contact_id
            return {"success": True, "message": problems, "contactIds": written}
        changes: list[Upsert] = []
        refused: list[str] = []
        for n, item in enumerate(items):
            try:
                changes.append(parse_upsert(item, self.reject))
            except Refused as exc:
                refused.append(_item_problem(n, item, exc))
        if refused:
            raise Refused(*refused)
        self.contacts.check(changes)
        for change in changes:
            contact = self._write(change, owner)
            written[contact.email] = contact.contact_id
        return ok(contactIds=written)

    def _delete(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        email = body.get("email")
        permanently = body.get("permanently", False)
        if not isinstance(email, str) or not email:
            raise Refused("email is required")
        if not isinstance(permanently, bool):
            raise Refused("permanently must be true or false")
        self.contacts.delete(email, permanently=permanently, now_ms=self._now_ms())
        result = self.behaviour.delete_result
        if result == "absent":
            return ok()
        return ok(result=True if result == "true" else "deleted")

    def _basic(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        emails = body.get("email")
        if not isinstance(emails, list) or not all(isinstance(email, str) for email in emails):
            raise Refused("email must be a list of e-mail addresses")
        found = (self.contacts.find(email) for email in emails)
        return ok(contacts=[contact.basic() for contact in found if contact is not None])

    def _has_contact(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        email = body.get("email")
        if not isinstance(email, str) or not email:
            raise Refused("email is required")
        return ok(result=self.contacts.find_live(email=email) is not None)

    def _add_event(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        return ok(eventId=self._add_one(body, owner))

    def _add_one(self, item: object, owner: str) -> str:
        if not isinstance(item, dict):
            raise Refused("an event must be a JSON object")
        fields = parse_event(item.get("contactEvent"), creating=True)
        email, contact_id = item.get("email"), item.get("contactId")
        if email is not None:
            contact = self.contacts.find_live(email=checked_email(email, "email", self.reject))
        elif isinstance(contact_id, str):
            contact = self.contacts.find_live(contact_id=contact_id)
        else:
            raise Refused("email or contactId is required")
        if contact is None:
            raise Refused(f"Contact not found: {email or contact_id}")
        event = self.events.add(contact_id=contact.contact_id, email=contact.email, owner=owner, fields=fields)
        return event.event_id

    def _batch_add_events(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        items = body.get("events")
        if not isinstance(items, list):
            raise Refused("events must be a list")
        if len(items) > BATCH_LIMIT:
            raise Refused(f"At most {BATCH_LIMIT} events per call, got {len(items)}")
        problems: list[str] = []
        failed: list[Any] = []
        for n, item in enumerate(items):
            try:
                self._add_one(item, owner)
            except Refused as exc:
                who = (item.get("email") or item.get("contactId")) if isinstance(item, dict) else None
                failed.append(who)
                problems.append(f"events[{n}] {who}: {exc}")
        return {
            "success": True,
            "message": problems,
            "createdAmount": len(items) - len(failed),
            "failedAmount": len(failed),
            "failedContacts": failed,
        }

    def _update_event(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        event = body.get("contactEvent")
        fields = parse_event(event, creating=False)
        event_id = event.get("eventId") if isinstance(event, dict) else None
        return ok(eventId=self.events.update(event_id, fields).event_id)

    def _delete_event(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        self.events.delete(body.get("eventId"))
        return ok(result="deleted")


def _item_problem(n: int, item: object, exc: Refused) -> str:
    contact = item.get("contact") if isinstance(item, dict) else None
    email = contact.get("email") if isinstance(contact, dict) else None
    return f"upsertDetails[{n}] {email}: {exc}"

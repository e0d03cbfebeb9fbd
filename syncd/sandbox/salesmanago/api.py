"""The SALESmanago API methods the simulator answers, over an in-memory account (no HTTP, no auth, no lock).

`Account.call(method, body, owner)` returns the reply body of an authenticated call or raises `Refused`, which the
HTTP layer answers as HTTP 200 `success: false`. Where the real API's behaviour is unconfirmed, `Behaviour`
(behaviour.py) picks the reading.

Reading choices beyond the knobs: `contactIds` is keyed by the contact's e-mail lower-cased, after any rename;
`reject_emails` (the operator's poison list) applies to upserts and to external events named by e-mail; external
events need a live (not deleted) contact, named by `email` or `contactId` (both may be sent when they name the same
contact); `hasContact` answers false (and a null `contactId`) for a soft-deleted contact while `contact/basic` and
`contact/list` show it with `"deleted": true`; a permanent delete takes the contact's events with it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from syncd.sandbox.salesmanago import events
from syncd.sandbox.salesmanago.behaviour import UNKNOWN_CONTACT, Behaviour
from syncd.sandbox.salesmanago.contacts import Contact, ContactBook
from syncd.sandbox.salesmanago.events import BATCH_LIMIT, EventLog, ExtEvent
from syncd.sandbox.salesmanago.fields import Refused, Upsert, checked_email, parse_upsert


def ok(**method_fields: Any) -> dict[str, Any]:
    return {"success": True, "message": [], **method_fields}


class Account:
    """One simulated SALESmanago account: its users, contacts, external events and what each e-mail received."""

    def __init__(self, owners: frozenset[str], clock: Callable[[], float] = time.time) -> None:
        self.owners = owners  # lower-case e-mails of the account's users
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
            "contact/list": self._list,
            "contact/listById": self._list_by_id,
            "contact/addContactExtEvent": self._add_event,
            "v2/contact/addContactExtEvent": self._add_event,
            "contact/batchAddContactExtEvent": self._batch_add_events,
            "contact/updateContactExtEvent": self._update_event,
            "v2/contact/updateContactExtEvent": self._update_event,
            "contact/deleteContactExtEvent": self._delete_event,
            "v2/contact/deleteContactExtEvent": self._delete_event,
        }

    def knows(self, method: str) -> bool:
        return method in self._methods

    def call(self, method: str, body: dict[str, Any], owner: str) -> dict[str, Any]:
        """The reply to an authenticated call of `method` (a path under /api/) by `owner`; raises Refused."""
        return self._methods[method](body, owner)

    def event_dumps(self, *, email: str | None = None, contact_id: str | None = None) -> list[dict[str, Any]]:
        """Every event as the control route shows it, or only those of the contact with this e-mail or id."""
        if email is None and contact_id is None:
            chosen = list(self.events)
        else:
            contact = self.contacts.find(email) if email is not None else self.contacts.by_id(contact_id or "")
            chosen = [] if contact is None else self.events.of_contact(contact.contact_id)
        return [event.dump(self._email_of(event)) for event in chosen]

    def _email_of(self, event: ExtEvent) -> str | None:
        contact = self.contacts.by_id(event.contact_id)
        return None if contact is None else contact.email

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- contacts -------------------------------------------------------------------------------------------------

    def _parse(self, item: object) -> Upsert:
        return parse_upsert(item, self.reject, self.behaviour.blank_strings)

    def _write(self, change: Upsert, owner: str) -> Contact:
        contact = self.contacts.upsert(change, owner, self._now_ms())
        self.writes[contact.email] += 1
        return contact

    def _upsert(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        contact = self._write(self._parse(body), owner)
        return ok(contactId=contact.contact_id, externalId=contact.text.get("externalId"))

    def _item_owner(self, item: object, owner: str) -> str:
        """The owner a `upsertDetails` item is written for: its own `owner` (checked), else the call's."""
        own = item.get("owner") if isinstance(item, dict) else None
        if own is None:
            if self.behaviour.item_owner_missing == "refuse":
                raise Refused("owner is required in every upsertDetails item")
            return owner
        if not isinstance(own, str) or own.lower() not in self.owners:
            raise Refused(f"invalid owner: {own}")
        if own.lower() == owner or self.behaviour.item_owner == "top":
            return owner
        if self.behaviour.item_owner == "refuse":
            raise Refused(f"owner {own} differs from the call's owner {owner}")
        return own.lower()

    def _batch_upsert(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        items = body.get("upsertDetails")
        if not isinstance(items, list) or not items:
            raise Refused("upsertDetails must be a non-empty list")
        written: dict[str, str] = {}
        if self.behaviour.batch_invalid == "partial":
            problems = []
            for n, item in enumerate(items):
                try:
                    item_owner = self._item_owner(item, owner)
                    contact = self._write(self._parse(item), item_owner)
                except Refused as exc:
                    problems.append(_item_problem(n, item, exc))
                else:
                    written[contact.email] = contact.contact_id
            return {"success": True, "message": problems, "contactIds": written}
        changes: list[tuple[Upsert, str]] = []
        refused: list[str] = []
        for n, item in enumerate(items):
            try:
                changes.append((self._parse(item), self._item_owner(item, owner)))
            except Refused as exc:
                refused.append(_item_problem(n, item, exc))
        if refused:
            raise Refused(*refused)
        self.contacts.check([change for change, _ in changes])
        for change, item_owner in changes:
            contact = self._write(change, item_owner)
            written[contact.email] = contact.contact_id
        return ok(contactIds=written)

    def _delete(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        email = body.get("email")
        permanently = body.get("permanently", False)
        if not isinstance(email, str) or not email:
            raise Refused("email is required")
        if not isinstance(permanently, bool):
            raise Refused("permanently must be true or false")
        deleted = self.contacts.delete(email, permanently=permanently, now_ms=self._now_ms())
        if deleted is None and self.behaviour.delete_unknown != "success":
            raise Refused(UNKNOWN_CONTACT[self.behaviour.delete_unknown].format(email=email))
        if deleted is not None and permanently:
            self.events.forget_contact(deleted.contact_id)
        result = self.behaviour.delete_result
        if result == "absent":
            return ok()
        return ok(result={"null": None, "true": True, "string": "deleted"}[result])

    def _basic(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        found = (self.contacts.find(email) for email in _strings(body, "email", "e-mail addresses"))
        return ok(contacts=[contact.basic() for contact in found if contact is not None])

    def _has_contact(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        email = body.get("email")
        if not isinstance(email, str) or not email:
            raise Refused("email is required")
        contact = self.contacts.find_live(email=email)
        return ok(result=contact is not None, contactId=None if contact is None else contact.contact_id)

    def _list(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        found = (self.contacts.find(email) for email in _strings(body, "email", "e-mail addresses"))
        return ok(contacts=[self._listed(contact) for contact in found if contact is not None])

    def _list_by_id(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        found = (self.contacts.by_id(contact_id) for contact_id in _strings(body, "contactId", "contact ids"))
        return ok(contacts=[self._listed(contact) for contact in found if contact is not None])

    def _listed(self, contact: Contact) -> dict[str, Any]:
        key = self.behaviour.list_event_id
        ext = [{key: event.event_id, **event.fields} for event in self.events.of_contact(contact.contact_id)]
        return contact.listed(ext)

    # --- external events ------------------------------------------------------------------------------------------

    def _parse_event(self, value: object, *, creating: bool) -> dict[str, Any]:
        rules = self.behaviour
        return events.parse_event(
            value, creating=creating, location_rule=rules.location_rule, value_decimals=rules.value_decimals
        )

    def _event_contact(self, item: dict[str, Any]) -> Contact:
        """The live contact an event names by `email` and/or `contactId` (both must then name the same one)."""
        email, contact_id = item.get("email"), item.get("contactId")
        if email is None and contact_id is None:
            raise Refused("email or contactId is required")
        by_email = by_id = None
        if email is not None:
            by_email = self.contacts.find_live(email=checked_email(email, "email", self.reject))
            if by_email is None:
                raise Refused(f"Contact not found: {email}")
        if contact_id is not None:
            if not isinstance(contact_id, str) or not contact_id:
                raise Refused("contactId must be a contact's id")
            by_id = self.contacts.find_live(contact_id=contact_id)
            if by_id is None:
                raise Refused(f"Contact not found: {contact_id}")
        if by_email is not None and by_id is not None and by_email is not by_id:
            raise Refused(f"email {email} and contactId {contact_id} name different contacts")
        contact = by_email or by_id
        assert contact is not None
        return contact

    def _add_one(self, item: object, owner: str) -> str:
        if not isinstance(item, dict):
            raise Refused("an event must be a JSON object")
        fields = self._parse_event(item.get("contactEvent"), creating=True)
        opt_in = item.get("forceOptIn")
        if opt_in is not None and not isinstance(opt_in, bool):
            raise Refused("forceOptIn must be true or false")
        contact = self._event_contact(item)
        if opt_in:
            contact.opted_out = False
        return self.events.add(contact_id=contact.contact_id, owner=owner, fields=fields).event_id

    def _add_event(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        return ok(eventId=self._add_one(body, owner))

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
        value = body.get("contactEvent")
        fields = self._parse_event(value, creating=False)
        event_id = value.get("eventId") if isinstance(value, dict) else None
        return ok(eventId=self.events.update(event_id, fields).event_id)

    def _delete_event(self, body: dict[str, Any], owner: str) -> dict[str, Any]:
        event_id, external_id = body.get("eventId"), body.get("externalId")
        if event_id is None and external_id is None:
            raise Refused("eventId or externalId is required")
        if external_id is not None and (not isinstance(external_id, str) or not external_id):
            raise Refused("externalId must be a non-empty string")
        if event_id is not None:
            event = self.events.get(event_id)
            if external_id is not None and event.fields.get("externalId") != external_id:
                raise Refused(f"Event {event_id} does not carry externalId {external_id}")
            chosen = [event]
        else:
            assert external_id is not None
            chosen = self.events.with_external_id(external_id)
            if not chosen:
                raise Refused(f"Event not found: {external_id}")
            rule = self.behaviour.delete_external_id
            if rule == "refuse" and len(chosen) > 1:
                raise Refused(f"{len(chosen)} events carry externalId {external_id}: delete them by eventId")
            if rule == "newest":
                chosen = chosen[-1:]
        self.events.remove(chosen)
        return ok(result="deleted")


def _strings(body: dict[str, Any], key: str, what: str) -> list[str]:
    values = body.get(key)
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise Refused(f"{key} must be a list of {what}")
    return values


def _item_problem(n: int, item: object, exc: Refused) -> str:
    contact = item.get("contact") if isinstance(item, dict) else None
    email = contact.get("email") if isinstance(contact, dict) else None
    return f"upsertDetails[{n}] {email}: {exc}"

"""SALESmanago's external-event calls: add one (`v2/contact/addContactExtEvent`, which answers the eventId), add many
(`contact/batchAddContactExtEvent`, at most 1000 per call, which answers only counts and the refused items), update
and delete by eventId (`v2/contact/updateContactExtEvent`, `v2/contact/deleteContactExtEvent`), and read a
contact's events back (`contact/listById` or `contact/list`, each event's id as `eventId` or `id`). Every failure
is raised as one of syncd's error classes (through SalesmanagoApi); a batch's refused items are returned by index.
Events go on a contact by its contactId when syncd knows it (a rename keeps it), else by its e-mail.

Deleting goes by eventId only: deleting by externalId removes every event carrying it, only the newest, or is
refused, depending on the account (no public source settles which), and syncd never needs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.sinks.salesmanago.http import SalesmanagoApi
from syncd.sinks.salesmanago.protocol import contact_id

ADD = "v2/contact/addContactExtEvent"
BATCH_ADD = "contact/batchAddContactExtEvent"
UPDATE = "v2/contact/updateContactExtEvent"
DELETE = "v2/contact/deleteContactExtEvent"
LIST = "contact/list"
LIST_BY_ID = "contact/listById"
BATCH_LIMIT = 1000  # events per batchAddContactExtEvent
_ITEM = re.compile(r"^\s*events\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class Listed:
    """An event as `contact/list` shows it."""

    event_id: str
    external_id: str
    fields: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Who:
    """The SALESmanago contact events go on: by its contactId when syncd knows it (a rename keeps it), else by
    its e-mail."""

    contact_id: str | None
    email: str

    @property
    def key(self) -> str:
        return self.contact_id or self.email.lower()

    def fields(self) -> dict[str, str]:
        return {"contactId": self.contact_id} if self.contact_id else {"email": self.email}


@dataclass(frozen=True, slots=True)
class Item:
    """One event to add: the contact it goes on and its `contactEvent`."""

    who: Who
    event: Mapping[str, Any]

    def body(self) -> dict[str, Any]:
        return {**self.who.fields(), "contactEvent": dict(self.event)}


class EventCalls:
    """The external-event calls of one SALESmanago account. Every method raises a CallError when the call fails."""

    def __init__(self, api: SalesmanagoApi) -> None:
        self.api = api

    async def add(self, item: Item) -> str | None:
        """Add one event: its eventId (None when the reply carries none)."""
        reply = await self.api.call(ADD, item.body(), known=(item.who.email,))
        event_id = reply.body.get("eventId") if reply.body is not None else None
        return event_id if isinstance(event_id, str) and event_id else None

    async def batch_add(self, items: Sequence[Item]) -> dict[int, str]:
        """Add up to BATCH_LIMIT events in ONE call: the items the reply names as refused (index -> message). The
        reply names no eventId, and its counts say nothing of which item failed: read the contacts' events back
        (`listed`) to know which were added."""
        assert len(items) <= BATCH_LIMIT
        reply = await self.api.call(
            BATCH_ADD, {"events": [i.body() for i in items]}, known=[i.who.email for i in items]
        )
        refused: dict[int, str] = {}
        for message in reply.messages:
            found = _ITEM.match(message)
            if found is not None and 0 <= int(found.group(1)) < len(items):
                refused.setdefault(int(found.group(1)), message)
        return refused

    async def update(self, event_id: str, event: Mapping[str, Any]) -> None:
        """Update the event `event_id` with every field of `event` (only the sent fields change)."""
        await self.api.call(UPDATE, {"contactEvent": {**event, "eventId": event_id}})

    async def delete(self, event_id: str) -> None:
        """Delete the event `event_id`."""
        await self.api.call(DELETE, {"eventId": event_id})

    async def listed(self, whos: Sequence[Who]) -> dict[str, list[Listed]]:
        """Each live contact's events (`Who.key` -> events, in the order SALESmanago lists them: oldest first):
        one `contact/listById` for those known by id, one `contact/list` for those known by e-mail. Contacts
        SALESmanago does not hold are left out."""
        ids = sorted({w.contact_id for w in whos if w.contact_id})
        emails = sorted({w.email for w in whos if not w.contact_id and w.email})
        found: dict[str, list[Listed]] = {}
        if ids:
            reply = await self.api.call(LIST_BY_ID, {"contactId": ids})
            found.update({contact_id(c) or "": events for c, events in _contacts(reply.body)})
        if emails:
            reply = await self.api.call(LIST, {"email": emails}, known=emails)
            found.update({str(c["email"]).lower(): events for c, events in _contacts(reply.body) if "email" in c})
        found.pop("", None)
        return found


def _contacts(body: Mapping[str, Any] | None) -> Iterator[tuple[Mapping[str, Any], list[Listed]]]:
    """The live contacts of a listing, each with its events."""
    contacts = body.get("contacts") if body is not None else None
    for contact in contacts if isinstance(contacts, list) else ():
        if not isinstance(contact, dict) or contact.get("deleted"):
            continue
        events = contact.get("contactExtEvents")
        yield (
            contact,
            [
                Listed(event_id, str(e.get("externalId") or ""), e)
                for e in (events if isinstance(events, list) else ())
                if isinstance(e, dict) and (event_id := _event_id(e)) is not None
            ],
        )


def _event_id(entry: Mapping[str, Any]) -> str | None:
    """An event's id as a listing carries it: `eventId`, or `id` in some accounts."""
    for key in ("eventId", "id"):
        value = entry.get(key)
        if isinstance(value, str) and value:
            return value
    return None

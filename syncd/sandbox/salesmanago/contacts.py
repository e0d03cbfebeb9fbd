"""The simulated SALESmanago account's contacts: matched by e-mail, renamed by `newEmail`, soft- or hard-deleted.

In memory and not thread-safe on its own: the simulator holds its lock around every call.
"""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.sandbox.salesmanago.fields import ADDRESS_KEYS, Refused, Upsert


@dataclass(slots=True)
class Contact:
    contact_id: str
    email: str  # lower-case
    owner: str
    created_on: int  # epoch ms
    modified_on: int
    text: dict[str, str] = field(default_factory=dict)  # name, phone, fax, company, state, externalId
    address: dict[str, str] = field(default_factory=dict)
    province: str | None = None
    tags: dict[str, int] = field(default_factory=dict)  # tag -> when it was added (epoch ms), insertion-ordered
    properties: dict[str, str] = field(default_factory=dict)
    dictionary: dict[str, dict[str, Any]] = field(default_factory=dict)
    birthday: tuple[int | None, int, int] | None = None
    opted_out: bool = False
    opted_out_phone: bool = False
    deleted: bool = False

    def apply(self, change: Upsert, now_ms: int) -> None:
        self.text.update(change.text)
        self.address.update(change.address)
        if change.province is not None:
            self.province = change.province
        for tag in change.add_tags:
            self.tags.setdefault(tag, now_ms)
        for tag in change.remove_tags:
            self.tags.pop(tag, None)
        self.properties.update(change.properties)
        self.dictionary.update(change.dictionary)
        if change.birthday is not None:
            self.birthday = change.birthday
        elif change.clear_birthday:
            self.birthday = None
        for attribute, value in change.flags.items():
            setattr(self, attribute, value)
        self.deleted = False
        self.modified_on = now_ms

    def basic(self) -> dict[str, Any]:
        """The contact as `contact/basic` answers it."""
        year, month, day = self.birthday or (None, None, None)
        return {
            "contactId": self.contact_id,
            "email": self.email,
            "name": self.text.get("name"),
            "phone": self.text.get("phone"),
            "fax": self.text.get("fax"),
            "company": self.text.get("company"),
            "state": self.text.get("state"),
            "externalId": self.text.get("externalId"),
            "address": {key: self.address.get(key) for key in ADDRESS_KEYS} if self.address else None,
            "score": 0,
            "optedOut": self.opted_out,
            "optedOutPhone": self.opted_out_phone,
            "deleted": self.deleted,
            "invalid": False,
            "birthdayYear": year,
            "birthdayMonth": month,
            "birthdayDay": day,
            "createdOn": self.created_on,
            "modifiedOn": self.modified_on,
            "lastVisit": None,
        }

    def listed(self, ext_events: list[dict[str, Any]]) -> dict[str, Any]:
        """The contact as `contact/list` and `contact/listById` answer it: the id keyed `id`, tags and properties
        as lists of objects, and the collections the simulator does not model (visits, e-mails, …) empty."""
        basic = self.basic()
        return {
            "id": basic.pop("contactId"),
            **{key: basic[key] for key in ("name", "email", "phone", "fax", "score", "state", "optedOut")},
            **{key: basic[key] for key in ("optedOutPhone", "deleted", "invalid", "company", "externalId", "address")},
            **{key: basic[key] for key in ("birthdayYear", "birthdayMonth", "birthdayDay")},
            "province": self.province,
            "mainContactOwner": self.owner,
            "contactVisits": [],
            "contactTags": [
                {"tag": tag, "tagName": tag, "score": 1, "createdOn": added, "tagWithScore": f"{tag} (1)"}
                for tag, added in self.tags.items()
            ],
            "contactEvents": [],
            "emailMessages": [],
            "properties": [{"name": name, "value": value} for name, value in self.properties.items()],
            "contactFunnels": [],
            "contactNotes": [],
            "contactTasks": [],
            "incomingEmailMessages": [],
            "contactExtEvents": ext_events,
            "coupons": [],
            "smsMessages": [],
            "modifiedOn": self.modified_on,
            "createdOn": self.created_on,
        }

    def dump(self) -> dict[str, Any]:
        """Everything the simulator keeps of the contact (for `GET /_sandbox/contacts`)."""
        return {
            **self.basic(),
            "owner": self.owner,
            "province": self.province,
            "tags": list(self.tags),
            "properties": dict(self.properties),
            "dictionaryProperties": [dict(entry) for entry in self.dictionary.values()],
        }


class ContactBook:
    def __init__(self) -> None:
        self._contacts: dict[str, Contact] = {}  # by contactId
        self._ids: dict[str, str] = {}  # lower-case e-mail -> contactId

    def find(self, email: str) -> Contact | None:
        """The contact with this e-mail (soft-deleted ones included)."""
        contact_id = self._ids.get(email.lower())
        return None if contact_id is None else self._contacts[contact_id]

    def by_id(self, contact_id: str) -> Contact | None:
        """The contact with this contactId (soft-deleted ones included)."""
        return self._contacts.get(contact_id)

    def find_live(self, *, email: str | None = None, contact_id: str | None = None) -> Contact | None:
        """The contact with this e-mail or id, unless it is deleted."""
        contact = self.find(email) if email is not None else self._contacts.get(contact_id or "")
        return None if contact is None or contact.deleted else contact

    def contacts(self) -> list[Contact]:
        return list(self._contacts.values())

    def counts(self) -> tuple[int, int]:
        """(live, soft-deleted) contacts."""
        deleted = sum(contact.deleted for contact in self._contacts.values())
        return len(self._contacts) - deleted, deleted

    def check(self, changes: Sequence[Upsert]) -> None:
        """Refuse (changing nothing) if applying `changes` in order would hit a rename conflict."""
        ids = dict(self._ids)
        for n, change in enumerate(changes):
            _claim(ids, change, _target(ids, change) or f"new-{n}")

    def upsert(self, change: Upsert, owner: str, now_ms: int) -> Contact:
        """Create or update the contact `change` matches; a soft-deleted one comes back."""
        target = _target(self._ids, change)
        contact = self._contacts.get(target) if target else None
        if contact is None:
            contact = Contact(str(uuid.uuid4()), change.final_email, owner, now_ms, now_ms)
            self._contacts[contact.contact_id] = contact
        _claim(self._ids, change, contact.contact_id)
        contact.email = change.final_email
        contact.apply(change, now_ms)
        return contact

    def delete(self, email: str, *, permanently: bool, now_ms: int) -> Contact | None:
        """Soft- or hard-delete the contact of `email`; None when the account holds no such contact."""
        contact = self.find(email)
        if contact is None:
            return None
        if permanently:
            del self._contacts[contact.contact_id]
            del self._ids[contact.email]
        else:
            contact.deleted = True
            contact.modified_on = now_ms
        return contact


def _target(ids: MutableMapping[str, str], change: Upsert) -> str | None:
    """The id of the contact an upsert updates (None: it creates one)."""
    current = ids.get(change.email)
    if change.new_email is None or change.new_email == change.email:
        return current
    taken = ids.get(change.new_email)
    if current is not None and taken is not None and current != taken:
        raise Refused(f"Cannot change email {change.email} to {change.new_email}: that contact already exists")
    return current or taken


def _claim(ids: MutableMapping[str, str], change: Upsert, contact_id: str) -> None:
    """Point the upsert's resulting e-mail at `contact_id` (and drop the old e-mail on a rename)."""
    if change.final_email != change.email and ids.get(change.email) == contact_id:
        del ids[change.email]
    ids[change.final_email] = contact_id

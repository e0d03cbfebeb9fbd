"""The Sell person a fact (a deal's event, an order, a note) belongs to, and whether that person has reached the
destination yet: the one place writers decide between writing the fact, waiting for the person, and skipping.

- `Person`: the person is in the destination (its link there says so): write the fact on it.
- `NotThere`: not yet (never read from Sell, or not written to the destination yet): the writer answers
  `Waiting(work.key, on=NotThere.on, reason=...)`. The store releases the waiter as soon as the person's key has an
  outcome in the destination, or a change of the person is stored; nothing ever creates the person for the fact.
- `Unreachable`: never (deleted in Sell, no person named): the writer answers `Skipped`.

A destination adds its own reasons for "never" (SALESmanago: no e-mail; an organisation where organisations are not
written) on the `Person`'s record: `person_in(..., never=...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from state.keys import record_key, split_key
from syncd.events import Contact, Deal, Lead, Note
from syncd.sinks.base import Lookups
from syncd.work import Link


@dataclass(frozen=True, slots=True)
class Person:
    """The Sell person, as the destination holds it."""

    key: str  # "contact:5" / "lead:9"
    record: Lead | Contact
    link: Link


@dataclass(frozen=True, slots=True)
class NotThere:
    """Not in the destination yet: wait on `on`."""

    on: str
    reason: str


@dataclass(frozen=True, slots=True)
class Unreachable:
    """Never in the destination as things stand: skip the fact, for `reason`."""

    reason: str


def has_remote_id(link: Link) -> bool:
    """A person counts as written when the destination gave it an id."""
    return link.remote_id is not None


async def person_in(
    lookups: Lookups,
    sink: str,
    key: str,
    *,
    written: Callable[[Link], bool] = has_remote_id,
    never: Callable[[Lead | Contact], str | None] | None = None,
) -> Person | NotThere | Unreachable:
    """Whether the person `key` names ("contact:5", "lead:9"; "" for none) is in `sink`. `written` says whether a
    link counts as written there; `never` gives the reason a destination can never hold a person as Sell has it
    (SALESmanago: no e-mail), None when it can."""
    if not key:
        return Unreachable("it names no Sell person (lead or contact)")
    kind, record_id = split_key(key)
    shadow = await lookups.shadow(kind, record_id)
    if shadow is None or not isinstance(shadow.record, Lead | Contact):
        return NotThere(key, f"{key} has not been read from Sell yet")
    if shadow.deleted:
        return Unreachable(f"{key} was deleted in Sell")
    link = await lookups.link(sink, key)
    reason = never(shadow.record) if never is not None and (link is None or not written(link)) else None
    if reason is not None:
        return Unreachable(f"{key} {reason}")
    if link is None or not written(link):
        return NotThere(key, f"{key} is not in {sink} yet")
    return Person(key, shadow.record, link)


async def note_person(lookups: Lookups, note: Note) -> str | NotThere:
    """The key of the person a note is about: its lead or contact, or the contact of its deal ("" when it names
    none); NotThere when the note is on a deal syncd has not read yet."""
    if note.resource_id is None:
        return ""
    if note.resource_type in ("lead", "contact"):
        return record_key(note.resource_type, note.resource_id)
    if note.resource_type != "deal":
        return ""
    deal_key = record_key("deal", note.resource_id)
    shadow = await lookups.shadow("deal", note.resource_id)
    if shadow is None or not isinstance(shadow.record, Deal):
        return NotThere(deal_key, f"{deal_key} has not been read from Sell yet")
    contact_id = shadow.record.contact_id
    return record_key("contact", contact_id) if contact_id is not None else ""

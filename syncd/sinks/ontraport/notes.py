"""Sell notes on leads, contacts and deals -> Ontraport notes (object 12) on the contact: the note key's writer.

A note goes on the Ontraport contact of its lead or contact, or of its deal's contact: `POST /1/Notes` with
`contact_id`, `object_type_id` 0, `data` (the text), `author` (`notes.author`, an Ontraport user id) and `time`
(when it was written in Sell, epoch seconds). Its id (answered as the whole note or as `{"id": ...}`) is kept in the
link; an edit is `PUT /1/Notes` by that id (a note deleted in Ontraport meanwhile is made again), a delete
`DELETE /1/Note?id=` (already gone counts as done). A note whose contact is not in Ontraport yet waits for it;
nothing ever creates the contact for a note. Ontraport does not deduplicate notes: a note tried before whose
outcome was lost is looked for on its contact (same text and time) before it is made again.
"""

from __future__ import annotations

from datetime import datetime

from syncd.config import OntraportConfig
from syncd.events import Note
from syncd.sinks.base import Lookups
from syncd.sinks.dependencies import NotThere, Unreachable, note_person
from syncd.sinks.mapping import digest
from syncd.sinks.ontraport.contacts import contact_for, never
from syncd.sinks.ontraport.http import OntraportApi
from syncd.sinks.ontraport.objects import record_id, search
from syncd.work import Done, KeyWork, Result, Skipped, Waiting

SINK = "ontraport"
CONTACT_OBJECT = 0


def note_fields(note: Note, contact_id: str, author: int) -> dict[str, str | int]:
    """The Ontraport note a Sell note becomes on contact `contact_id`."""
    fields: dict[str, str | int] = {
        "contact_id": int(contact_id),
        "object_type_id": CONTACT_OBJECT,
        "data": note.content,
        "author": author,
    }
    written = _epoch(note.created_at)
    if written is not None:
        fields["time"] = written
    return fields


class NoteWriter:
    """Delivers note keys to one Ontraport account."""

    def __init__(self, config: OntraportConfig, api: OntraportApi, *, lookups: Lookups) -> None:
        self._settings = config.notes
        self._never = never(config)
        self._api = api
        self._lookups = lookups

    async def deliver(self, work: KeyWork) -> Result:
        if not self._settings.enabled:
            return Skipped(work.key, work.seqs, "notes are off (sinks.ontraport.notes.enabled = false)")
        shadow = work.shadow
        if shadow is None or not isinstance(shadow.record, Note):
            return Skipped(work.key, work.seqs, "no snapshot of the note to write")
        note = shadow.record
        linked = work.link.remote_id if work.link is not None else None
        if shadow.deleted:
            return await self._delete(work, note, linked)
        if not note.content.strip() and not linked:
            return Skipped(work.key, work.seqs, "the note is empty")
        person_key = await note_person(self._lookups, note)
        if isinstance(person_key, NotThere):
            return Waiting(work.key, person_key.on, person_key.reason)
        person = await contact_for(self._lookups, person_key, self._never)
        if isinstance(person, NotThere):
            return Waiting(work.key, person.on, person.reason)
        if isinstance(person, Unreachable):
            return Skipped(work.key, work.seqs, f"the note has no contact to go on: {person.reason}")
        fields = note_fields(note, str(person.link.remote_id), self._settings.author)
        sign = digest(fields)
        if linked and work.link is not None and work.link.digest == sign:
            return Skipped(work.key, work.seqs, "unchanged since the last write", digest=sign)
        sent = dict(fields)
        if linked:
            answer = await self._api.call("PUT", "/1/Notes", body={"id": linked, **fields}, missing_ok=True)
            if not answer.missing:
                return Done(work.key, work.seqs, remote_id=linked, digest=sign, sent=sent, detail="updated")
        elif work.tried:
            found = await self._find(fields)
            if found is not None:
                return Done(work.key, work.seqs, remote_id=found, digest=sign, sent=sent, detail="found written")
        answer = await self._api.call("POST", "/1/Notes", body=fields)
        created = record_id(answer.data)
        return Done(work.key, work.seqs, remote_id=created, digest=sign, sent=sent, detail="created")

    async def _delete(self, work: KeyWork, note: Note, linked: str | None) -> Result:
        if not linked and work.tried and work.link is None:
            person_key = await note_person(self._lookups, note)
            person = await contact_for(self._lookups, person_key, self._never) if isinstance(person_key, str) else None
            if person is not None and not isinstance(person, NotThere | Unreachable):
                linked = await self._find(note_fields(note, str(person.link.remote_id), self._settings.author))
        if not linked:
            return Done(work.key, work.seqs, unlink=True, detail="not in Ontraport: nothing to delete", wrote=False)
        answer = await self._api.call("DELETE", "/1/Note", params={"id": linked}, missing_ok=True)
        detail = "already gone" if answer.missing else "deleted"
        return Done(work.key, work.seqs, unlink=True, detail=detail, wrote=False)

    async def _find(self, fields: dict[str, str | int]) -> str | None:
        """A note already on the contact with this text and time (a create whose outcome was lost)."""
        clauses: list[tuple[str, str | int]] = [("contact_id", fields["contact_id"])]
        if "time" in fields:
            clauses.append(("time", fields["time"]))
        for found in await search(self._api, "Notes", clauses):
            if str(found.get("data") or "") == str(fields["data"]) and found.get("id"):
                return str(found["id"])
        return None


def _epoch(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    seconds = int(moment.timestamp())
    return seconds if seconds > 0 else None

"""Deal and note keys in SALESmanago: their facts as external events on the contact they belong to.

Per key (`deal:77`, `note:12`) the writer gathers what a plan needs (the deal as syncd knows it, its stages, the
person and whether that person is in SALESmanago), decides the facts and the events they should be
(salesmanago/events.py, pure), and compares them with what the key's link says was sent: events to add, to update
by eventId, to delete. Then, for every key of the delivery at once: deletes and updates (one call each), and the
adds — ONE `contact/batchAddContactExtEvent` per 1000 when several are due (the eventIds read back with one
`contact/list`), `v2/contact/addContactExtEvent` for a lone one. The eventIds go into the link, so a re-delivery
updates an event instead of adding a second.

A write whose outcome was lost (a timeout, a crash: the key was tried before) may have added events already: a
tried key reads its contact's events first and takes over those carrying its externalIds (the newest; any other
copy is deleted), so a fact never has two events. An update or delete SALESmanago refuses is judged by reading the
contact's events back: an event that is no longer there is added again (update) or counts as deleted (delete).

A deal whose contact is not in SALESmanago yet waits for it (`Waiting`, released when the contact is written); one
whose stage syncd has not read waits for the stage. Nothing here ever creates a contact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import anyio

from syncd.config import SalesmanagoConfig
from syncd.errors import CallError, PermanentError, TransientError
from syncd.events import Contact, Deal, Lead, Note, Stage, email_of
from syncd.sinks.base import Lookups, crashed
from syncd.sinks.deals import DealView, deal_view
from syncd.sinks.dependencies import NotThere, Person, Unreachable, note_person, person_in
from syncd.sinks.mapping import digest
from syncd.sinks.salesmanago.event_calls import BATCH_ADD, BATCH_LIMIT, EventCalls, Item, Listed, Who
from syncd.sinks.salesmanago.events import (
    EventMappingError,
    EventPlan,
    Passed,
    SentEvent,
    SentEvents,
    Wanted,
    deal_event,
    deal_facts,
    note_event,
    note_facts,
    plan_events,
)
from syncd.sinks.salesmanago.protocol import redact, request_text
from syncd.work import Dead, Done, Failed, KeyWork, Link, Result, Skipped, Waiting

HISTORY_KINDS = frozenset({"deal", "note"})
SINK = "salesmanago"


def written(link: Link) -> bool:
    """A person counts as in SALESmanago once syncd wrote it (its link has the e-mail written, or a contactId)."""
    return link.remote_id is not None or bool(link.sent and isinstance(link.sent.get("email"), str))


def never(config: SalesmanagoConfig) -> Callable[[Lead | Contact], str | None]:
    """Why SALESmanago can never hold a Sell person as it is (None when it can)."""

    def reason(record: Lead | Contact) -> str | None:
        if isinstance(record, Contact) and record.is_organization and config.organisations == "skip":
            return "is an organisation, and organisations are not written (sinks.salesmanago.organisations)"
        if not email_of(record):
            return "has no e-mail, and SALESmanago identifies contacts by e-mail"
        return None

    return reason


@dataclass
class KeyPlan:
    """One key's events to write, on one contact, and what its link will say afterwards."""

    work: KeyWork
    who: Who | None  # the SALESmanago contact the events are on (None: a gone record's, no longer known)
    contact: str  # the Sell person the events are on ("contact:5"): they move when it changes
    plan: EventPlan
    wanted_digest: str
    done: dict[str, SentEvent] = field(default_factory=dict)  # facts whose event is written now
    actions: list[str] = field(default_factory=list)

    def note(self, action: str, want: Wanted) -> None:
        self.actions.append(f"{action} {want.fact.type} {want.external_id}")

    def result(self) -> Done:
        sent = SentEvents(self.contact, {**self.plan.keep, **self.done})
        return Done(
            self.work.key,
            self.work.seqs,
            digest=self.wanted_digest,
            sent=sent.to_sent(),
            detail="; ".join(self.actions),
            wrote=bool(self.plan.add or self.plan.update),
        )


class HistoryWriter:
    """Writes deal and note keys to one SALESmanago account (the SALESmanago writer hands them over)."""

    def __init__(self, config: SalesmanagoConfig, calls: EventCalls, lookups: Lookups) -> None:
        self.config = config
        self.events = config.events
        self.calls = calls
        self._lookups = lookups
        self._planning = anyio.CapacityLimiter(8)
        self._never = never(config)

    async def deliver(self, works: Sequence[KeyWork]) -> dict[str, Result]:
        """One Result per key: planned together, then written together (adds batched)."""
        planned: dict[str, Result | KeyPlan] = {}
        async with anyio.create_task_group() as tg:
            for work in works:
                tg.start_soon(self._plan_into, work, planned)
        results: dict[str, Result] = {k: p for k, p in planned.items() if not isinstance(p, KeyPlan)}
        plans = [p for w in works if isinstance(p := planned[w.key], KeyPlan)]
        live: list[KeyPlan] = []
        for key_plan in plans:
            try:
                await self._change(key_plan)
                live.append(key_plan)
            except CallError as exc:
                results[key_plan.work.key] = Failed(key_plan.work.key, key_plan.work.seqs, exc)
            except Exception as exc:
                results[key_plan.work.key] = crashed(SINK, key_plan.work.key, key_plan.work.seqs, exc)
        results.update(await self._add(live))
        return results

    # -----------------------------------------------------------------------------------------------------------
    # planning

    async def _plan_into(self, work: KeyWork, planned: dict[str, Result | KeyPlan]) -> None:
        async with self._planning:
            try:
                planned[work.key] = await (self._plan_deal(work) if work.kind == "deal" else self._plan_note(work))
            except CallError as exc:
                planned[work.key] = Failed(work.key, work.seqs, exc)
            except EventMappingError as exc:
                planned[work.key] = Dead(work.key, work.seqs, f"SALESmanago cannot take this deal: {exc}")
            except Exception as exc:  # this key's alone: the batch's other keys go on
                planned[work.key] = crashed(SINK, work.key, work.seqs, exc)

    async def _plan_deal(self, work: KeyWork) -> Result | KeyPlan:
        view = await deal_view(self._lookups, work.record_id)
        if view is None:
            return Waiting(work.key, work.key, f"{work.key} has not been read from Sell yet")
        sent = SentEvents.from_sent(work.link.sent if work.link is not None else None)
        if view.deleted:
            return await self._gone(work, sent, "the deal was deleted in Sell", view.contact_key)
        if view.stage_unread:
            return Waiting(work.key, view.stage_key, view.stage_wait)
        person = await person_in(self._lookups, SINK, view.contact_key, written=written, never=self._never)
        if isinstance(person, NotThere):
            return Waiting(work.key, person.on, f"the deal's contact: {person.reason}")
        if isinstance(person, Unreachable):
            return Skipped(work.key, work.seqs, f"the deal's contact {person.reason}")
        created, passed = await self._history(work)
        facts = deal_facts(
            view, config=self.events, sent=sent.events, created=created, passed=passed, now=_newest(work)
        )
        wanted = [Wanted(fact, deal_event(fact, view, self.events)) for fact in facts]
        if not wanted and not sent.events:
            return Skipped(work.key, work.seqs, self._nothing_for(view))
        return await self._planned(work, person, sent, wanted)

    async def _plan_note(self, work: KeyWork) -> Result | KeyPlan:
        shadow = work.shadow
        note = shadow.record if shadow is not None else None
        if not isinstance(note, Note):
            return Waiting(work.key, work.key, f"{work.key} has not been read from Sell yet")
        sent = SentEvents.from_sent(work.link.sent if work.link is not None else None)
        if not self.events.notes and not sent.events:
            return Skipped(work.key, work.seqs, "notes make no SALESmanago events (sinks.salesmanago.events.notes)")
        key = await note_person(self._lookups, note)
        if shadow is not None and shadow.deleted:
            return await self._gone(work, sent, "the note was deleted in Sell", key if isinstance(key, str) else "")
        if isinstance(key, NotThere):
            return Waiting(work.key, key.on, f"the note's deal: {key.reason}")
        person = await person_in(self._lookups, SINK, key, written=written, never=self._never)
        if isinstance(person, NotThere):
            return Waiting(work.key, person.on, f"the note's person: {person.reason}")
        if isinstance(person, Unreachable):
            return Skipped(work.key, work.seqs, f"the note's person {person.reason}")
        facts = note_facts(note, deleted=False, config=self.events, now=_newest(work))
        wanted = [Wanted(fact, note_event(fact, note, self.events)) for fact in facts]
        return await self._planned(work, person, sent, wanted)

    async def _gone(self, work: KeyWork, sent: SentEvents, why: str, person_key: str) -> Result | KeyPlan:
        """A deleted record: its events are deleted, by eventId (the contact's e-mail, when it is still in
        SALESmanago, only to tell a refusal from an event already gone)."""
        if not sent.events:
            return Skipped(work.key, work.seqs, f"{why}; no events were sent for it")
        person = await person_in(self._lookups, SINK, sent.contact or person_key, written=written)
        who = _who(person) if isinstance(person, Person) else None
        plan = plan_events([], sent, contact=sent.contact, gone=True)
        return KeyPlan(work, who, sent.contact, plan, digest([]))

    async def _planned(self, work: KeyWork, person: Person, sent: SentEvents, wanted: list[Wanted]) -> Result | KeyPlan:
        who = _who(person)
        contact = person.key
        # A replay forgets the link's digest: it asks for the writes even if nothing changed.
        force = work.link is not None and work.link.digest is None
        plan = plan_events(wanted, sent, contact=contact, force=force)
        wanted_digest = digest({"contact": contact, "events": [w.event for w in wanted]})
        if work.tried and plan.add:
            plan = await self._adopt(plan, who)
        if plan.empty:
            return Skipped(work.key, work.seqs, "unchanged since the last write")
        return KeyPlan(work, who, contact, plan, wanted_digest)

    async def _history(self, work: KeyWork) -> tuple[datetime | None, list[Passed]]:
        """When the deal was created (if its created event is pending) and the stages its pending changes show."""
        created: datetime | None = None
        passed: list[Passed] = []
        stages: dict[int, Stage | None] = {}
        for delivery in work.deliveries:
            event = delivery.event
            record = event.record
            if event.kind != "deal" or not isinstance(record, Deal):
                continue
            if event.introduces:
                created = record.created_at or event.occurred_at
            if record.stage_id is None:
                continue
            if record.stage_id not in stages:
                shadow = await self._lookups.shadow("stage", record.stage_id)
                stages[record.stage_id] = shadow.record if shadow and isinstance(shadow.record, Stage) else None
            stage = stages[record.stage_id]
            if stage is not None:
                passed.append(Passed(stage, record.last_stage_change_at or event.occurred_at))
        return created, passed

    def _nothing_for(self, view: DealView) -> str:
        category = view.category or "unknown"
        return f"no SALESmanago event for a deal in a {category} stage (sinks.salesmanago.events)"

    async def _adopt(self, plan: EventPlan, who: Who) -> EventPlan:
        """A key tried before may have added events whose eventIds were lost: take over the newest event with each
        externalId to be added (updating it), and delete the other copies."""
        listed = (await self.calls.listed([who])).get(who.key, [])
        by_external: dict[str, list[Listed]] = {}
        for entry in listed:
            by_external.setdefault(entry.external_id, []).append(entry)
        add: list[Wanted] = []
        update = list(plan.update)
        delete = list(plan.delete)
        for want in plan.add:
            copies = by_external.get(want.external_id, [])
            if not copies:
                add.append(want)
                continue
            *extra, newest = copies
            update.append((SentEvent(newest.event_id, "", want.external_id), want))
            delete += [(want.fact.name, SentEvent(e.event_id, "", want.external_id)) for e in extra]
        return replace(plan, add=tuple(add), update=tuple(update), delete=tuple(delete))

    # -----------------------------------------------------------------------------------------------------------
    # writing

    async def _change(self, key_plan: KeyPlan) -> None:
        """Deletes and updates of one key (one call each). Raises CallError."""
        for _, event in key_plan.plan.delete:
            await self._delete(event, key_plan.who)
            key_plan.actions.append(f"deleted {event.external_id}")
        for before, want in key_plan.plan.update:
            assert key_plan.who is not None  # only a gone record has no contact, and it only deletes
            event_id = await self._update(before, want, key_plan.who)
            key_plan.done[want.fact.name] = SentEvent(event_id, want.digest, want.external_id)
            key_plan.note("updated", want)

    async def _delete(self, event: SentEvent, who: Who | None) -> None:
        try:
            await self.calls.delete(event.event_id)
        except PermanentError:
            if who is not None and await self._still_there(event.event_id, who):
                raise
            # Gone already (deleted in SALESmanago, or with its contact): nothing left to do.

    async def _update(self, before: SentEvent, want: Wanted, who: Who) -> str:
        """Update the event; one that is no longer there is added again. The event's id."""
        try:
            await self.calls.update(before.event_id, want.event)
            return before.event_id
        except PermanentError:
            if await self._still_there(before.event_id, who):
                raise
        event_id = await self.calls.add(Item(who, want.event))
        if event_id is None:
            raise TransientError(f"SALESmanago added {want.external_id} again but named no eventId")
        return event_id

    async def _still_there(self, event_id: str, who: Who) -> bool:
        listed = (await self.calls.listed([who])).get(who.key, [])
        return any(entry.event_id == event_id for entry in listed)

    async def _add(self, plans: Sequence[KeyPlan]) -> dict[str, Result]:
        """Every planned add: one call for a lone one, batches of BATCH_LIMIT for several (their eventIds read
        back). A Result per key."""
        items = [(p, want) for p in plans for want in p.plan.add]
        failed: dict[str, Result] = {}
        if len(items) == 1:
            key_plan, want = items[0]
            try:
                event_id = await self.calls.add(Item(_who_of(key_plan), want.event))
            except PermanentError as exc:
                failed[key_plan.work.key] = await self._refused(key_plan, exc)
            except CallError as exc:
                failed[key_plan.work.key] = Failed(key_plan.work.key, key_plan.work.seqs, exc)
            else:
                if event_id is None:
                    failed[key_plan.work.key] = self._unsure(key_plan, want, "the reply named no eventId")
                else:
                    key_plan.done[want.fact.name] = SentEvent(event_id, want.digest, want.external_id)
                    key_plan.note("added", want)
        for start in range(0, len(items) if len(items) > 1 else 0, BATCH_LIMIT):
            failed.update(await self._batch(items[start : start + BATCH_LIMIT]))
        return {p.work.key: failed.get(p.work.key) or p.result() for p in plans}

    async def _batch(self, items: Sequence[tuple[KeyPlan, Wanted]]) -> dict[str, Result]:
        """ONE batch add, then ONE read-back of the contacts' events for the eventIds: an event found is added;
        one refused by name fails its key (or makes it wait, when its contact is not in SALESmanago); one neither
        found nor refused fails its key for a retry."""
        failed: dict[str, Result] = {}
        whos = [_who_of(p) for p, _ in items]
        try:
            refused = await self.calls.batch_add(
                [Item(who, want.event) for who, (_, want) in zip(whos, items, strict=True)]
            )
            listed = await self.calls.listed(whos)
        except CallError as exc:
            return {p.work.key: Failed(p.work.key, p.work.seqs, exc) for p, _ in items}
        for n, (key_plan, want) in enumerate(items):
            copies = [e for e in listed.get(whos[n].key, []) if e.external_id == want.external_id]
            if copies:
                key_plan.done[want.fact.name] = SentEvent(copies[-1].event_id, want.digest, want.external_id)
                key_plan.note("added", want)
            elif key_plan.work.key in failed:
                continue
            elif n in refused:
                request = request_text(BATCH_ADD, {"events": [Item(whos[n], want.event).body()]})
                reason = _reason(refused[n], whos[n].email)
                error = PermanentError(
                    f"SALESmanago {BATCH_ADD} refused the event {want.external_id}: {reason}",
                    http_status=200,
                    request=request,
                )
                failed[key_plan.work.key] = await self._refused(key_plan, error)
            else:
                failed[key_plan.work.key] = self._unsure(key_plan, want, "not listed after the batch add")
        return failed

    async def _refused(self, key_plan: KeyPlan, error: PermanentError) -> Result:
        """An add SALESmanago refused: when the contact is no longer there under the e-mail syncd knows (deleted,
        or renamed by a write not committed yet), the key waits for the person's next write; otherwise the
        refusal is about the event, and final."""
        work, who = key_plan.work, _who_of(key_plan)
        try:
            present = who.email.lower() in await self.calls.api.existing([who.email]) if who.email else False
        except CallError as exc:
            return Failed(work.key, work.seqs, exc)
        if present:
            return Failed(work.key, work.seqs, error)
        return Waiting(work.key, key_plan.contact, f"{key_plan.contact} is not in SALESmanago under its e-mail now")

    def _unsure(self, key_plan: KeyPlan, want: Wanted, why: str) -> Failed:
        error = TransientError(f"SALESmanago event {want.external_id}: {why}; looked for again on the next try")
        return Failed(key_plan.work.key, key_plan.work.seqs, error)


def _who_of(key_plan: KeyPlan) -> Who:
    assert key_plan.who is not None  # a plan with adds is on a contact syncd knows
    return key_plan.who


def _who(person: Person) -> Who:
    """The SALESmanago contact of a person: its contactId when syncd has it, and its e-mail."""
    return Who(person.link.remote_id, _email(person))


def _email(person: Person) -> str:
    """The e-mail a person's SALESmanago contact has: the one syncd last wrote, else the Sell record's."""
    sent = person.link.sent
    last = sent.get("email") if sent else None
    return last if isinstance(last, str) and last else email_of(person.record)


def _newest(work: KeyWork) -> datetime:
    """When the newest pending change happened (the time of a fact Sell gives no time for)."""
    return max((d.event.occurred_at for d in work.deliveries), default=datetime.now(UTC))


def _reason(message: str, email: str) -> str:
    """A batch item's refusal without its `events[n] <who>:` prefix, e-mail addresses replaced."""
    _, _, reason = message.partition(": ")
    return redact(reason or message, (email,))

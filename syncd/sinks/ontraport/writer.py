"""The Ontraport writer: brings one Ontraport contact to the latest state of a Sell lead or contact (person or
organisation); a deal's key goes to its purchase history (ontraport/purchases.py), a note's to its note
(ontraport/notes.py), a product's to its product (ontraport/catalogue.py).

Identity. An Ontraport contact is known by its id, kept in the link. The first write with an e-mail is a
merge-or-create by e-mail (`POST /1/Contacts/saveorupdate`), so a retried first write merges instead of
duplicating; later writes are `PUT /1/Contacts` by id, so an e-mail changed in Sell updates the SAME contact. A PUT
answered "Object not found" (the contact was deleted in Ontraport; the text counts, on any 4xx) falls back to the
merge-or-create. Without an e-mail the contact is created with the configured external id field ("sell-lead-9");
a key tried before (a claim that may have left a write) first searches that field (`GET /1/Contacts?condition=...`),
so a create that timed out and is retried finds the first one; a key's first write creates at once (only syncd's
writes of the key set that field). Without that setting such a record is skipped with the reason.

Shared e-mails (sinks/persons.py decides): of several live Sell people with one e-mail, one owns the contact
(`shared_email`); the others are skipped with the reason (what they wrote under e-mails no one holds now goes as
leftovers do). Of several records linked to one contact, the first by the same order keeps it; another one writes a
contact of its own (merge-or-create by its e-mail), and one that writes the contact queues the others linked to it
with another e-mail.

Leftovers (sinks/persons.py decides; this writer carries the plans out): a record syncd holds no link for whose
key was tried before looks for the contact a lost write may have left (by the external id field, then under its
earlier e-mails) and updates it rather than make a second one.

Organisations (sinks/persons.py decides): one with an e-mail is written like a person (its name as firstname and
company), one without is skipped, and all are skipped under organisations = "skip"; when one appears or is
renamed, its members are queued to be written again with its name as their company.

Deletes: the own contact is the linked one; without a link, the one under the record's e-mail (`GET
/1/object/getByEmail`: one made outside syncd, or by another record before its rename), else, for a key tried
before, the one with its external id. Of a set of keys the dispatcher claimed together (`prepare`), the unlinked
deletes that are due ask ONE search (`email IN (...)`) which of their e-mails hold a contact: one that holds none
sends nothing, one that holds one asks getByEmail as above. `on_delete = "delete"` deletes it (`DELETE
/1/Contact?id=`; already gone counts as done), "tag" tags it with `deleted_tag` (`PUT /1/objects/tagByName`),
"ignore" leaves it; leftovers go the same way. While other live Sell people map to the own contact it stays;
leftovers are removed all the same.

The contact fields come from ontraport/map.py (pure), converted by the field types of `GET /1/Contacts/meta`, which is
fetched once and again when a configured field is missing from it. An unchanged payload (same digest as the last
write) is not sent again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import anyio

from syncd.config import OntraportConfig
from syncd.errors import CallError, DestinationError, TransientError
from syncd.events import Contact, Lead
from syncd.logs import get_logger
from syncd.ratelimit import Limiter
from syncd.sinks.base import DestinationField, Lookups, crashed, organisation_name, source_name
from syncd.sinks.mapping import digest, external_id
from syncd.sinks.ontraport.catalogue import Catalogue
from syncd.sinks.ontraport.http import OntraportApi
from syncd.sinks.ontraport.inspect import by_emails
from syncd.sinks.ontraport.map import (
    EXTERNAL_ID_KEY,
    SINK,
    Related,
    map_person,
    missing_targets,
    parse_meta,
)
from syncd.sinks.ontraport.notes import NoteWriter
from syncd.sinks.ontraport.purchases import PurchaseWriter
from syncd.sinks.persons import (
    Facts,
    Keep,
    Own,
    PersonChange,
    Policy,
    Question,
    ask,
    coalesce_person,
    delete_due_at,
    follow_up,
    gather,
    held_back,
    is_leftover,
    keeps_link,
    leftovers,
    located_keep,
    organisation_without_email,
    own_contact,
    people_caught_up_since,
    plan_delete,
    plan_lost_email,
    skipped_organisation,
)
from syncd.work import Deferred, Done, Failed, KeyWork, Result, Skipped

CONTACT_OBJECT = "0"
META_REFRESH = 60.0  # at most one meta refetch per minute for a field the meta does not list
UNCHANGED = "unchanged since the last write"
ABSENT_FOR = 30.0  # seconds a set's answer "no contact holds this e-mail" stands for the deletes it was asked for


class OntraportWriter:
    """Delivers person keys to one Ontraport account."""

    name = SINK
    batch_size = 1  # Ontraport has no batch upsert; the dispatcher runs several keys at once instead

    def __init__(
        self,
        config: OntraportConfig,
        *,
        lookups: Lookups,
        limiter: Limiter,
        streams: Sequence[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._lookups = lookups
        self._policy = Policy(
            "id",
            config.on_delete,
            config.delete_grace,
            tuple(streams),
            organisations=config.organisations,
            shared_email=config.shared_email,
        )
        self._clock = clock
        self._api = OntraportApi(config, limiter)
        catalogue = Catalogue(self._api, lookups, config, clock)
        purchases = PurchaseWriter(config, self._api, catalogue, lookups=lookups, streams=streams, clock=clock)
        notes = NoteWriter(config, self._api, lookups=lookups)
        # The kinds that are not people, each with its own writer (sharing the account's client and limiter).
        self._facts: dict[str, Callable[[KeyWork], Awaitable[Result]]] = {
            "deal": purchases.deliver,
            "note": notes.deliver,
            "product": catalogue.deliver,
        }
        self._rows = config.mapping
        self._meta: dict[str, DestinationField] | None = None
        self._meta_at = 0.0
        self._meta_lock = anyio.Lock()
        self._reported_missing: set[str] = set()
        self._drift_checked = False
        # key -> (e-mail, when asked): a set's search found no contact under the e-mail of this key's unlinked delete
        self._absent: dict[str, tuple[str, float]] = {}
        self._log = get_logger(sink=SINK)

    # ------------------------------------------------------------------------------------------------- Writer

    async def deliver(self, works: Sequence[KeyWork]) -> list[Result]:
        return [await self._deliver_one(work) for work in works]

    async def prepare(self, works: Sequence[KeyWork]) -> None:
        """A set of keys claimed together: when two or more are deletes of records syncd holds no link for, due now
        (their grace over, every person stream caught up since), ONE search says which of their e-mails hold no
        contact, so those deletes send nothing (`_locate`); the answer stands ABSENT_FOR seconds."""
        now = self._clock()
        self._absent = {key: held for key, held in self._absent.items() if now - held[1] <= ABSENT_FOR}
        wanted: dict[str, str] = {}
        latest = 0.0
        for work in works:
            due = self._unlinked_delete(work, now)
            if due is not None:
                wanted[work.key], at = due
                latest = max(latest, at)
        if len(wanted) < 2:  # one alone asks getByEmail: the same one call
            return
        if not await people_caught_up_since(self._lookups, self._policy, latest):
            return  # they wait (plan_delete) and are asked again when they come back
        found = await by_emails(self._api, sorted(set(wanted.values())))
        self._absent.update({key: (email, now) for key, email in wanted.items() if email not in found})

    async def payload(self, record: Lead | Contact) -> dict[str, str]:
        """The contact fields this writer writes for `record` (also what `syncd reconcile` compares with what
        Ontraport holds: one mapping for both). Raises PermanentError when a value cannot be converted."""
        return map_person(
            record,
            rows=self._rows,
            meta=await self._current_meta(),
            related=await self._related(record),
            external_id_field=self.config.external_id_field,
        )

    @property
    def api(self) -> OntraportApi:
        """The account's API (its reads are what `syncd reconcile` asks)."""
        return self._api

    @property
    def policy(self) -> Policy:
        """How this destination treats people (identity, deletes, organisations, shared e-mails)."""
        return self._policy

    async def probe(self) -> None:
        """`GET /1/Contacts/meta`: DestinationError when the credentials are refused, else TransientError."""
        await self._load_meta()

    async def fields(self) -> list[DestinationField]:
        return list((await self._load_meta()).values())

    async def aclose(self) -> None:
        await self._api.aclose()

    # ------------------------------------------------------------------------------------------------- upsert

    async def _deliver_one(self, work: KeyWork) -> Result:
        fact = self._facts.get(work.kind)
        if fact is not None:
            try:
                return await fact(work)
            except CallError as exc:
                return Failed(work.key, work.seqs, exc)
            except Exception as exc:  # this key's alone
                return crashed(self.name, work.key, work.seqs, exc)
        try:
            return await self._deliver_person(work)
        finally:
            self._absent.pop(work.key, None)  # a set's answer serves this claim alone

    async def _deliver_person(self, work: KeyWork) -> Result:
        try:
            change = coalesce_person(work)
            if change.record is None and change.intent == "upsert":
                return Skipped(work.key, work.seqs, "no snapshot of the record to write")
            facts = await gather(self._lookups, work, change, self._policy, now=self._clock())
            result = await self._decide(work, facts)
            if not isinstance(result, Deferred):
                wrote = isinstance(result, Done) and result.wrote
                await follow_up(self._lookups, work, facts, self._policy, wrote=wrote)
        except CallError as exc:
            return Failed(work.key, work.seqs, exc)
        except Exception as exc:  # this key's alone
            return crashed(self.name, work.key, work.seqs, exc)
        return result

    async def _decide(self, work: KeyWork, facts: Facts) -> Result:
        change = facts.change
        skipped = skipped_organisation(change.record, self._policy) if change.record is not None else None
        if skipped:
            return Skipped(work.key, work.seqs, skipped)
        if change.intent == "delete":
            return await self._delete(work, facts)
        return await self._upsert(work, facts)

    async def _upsert(self, work: KeyWork, facts: Facts) -> Result:
        change = facts.change
        record = change.record
        assert record is not None  # _deliver_one skipped an upsert without one
        unwritable = organisation_without_email(record)
        if unwritable:
            return Skipped(work.key, work.seqs, unwritable)
        held = held_back(facts, self._policy)
        if held:
            return await self._held_back(work, facts, held)
        payload = await self.payload(record)
        sign = digest(payload)
        link = work.link
        # A contact another linked record comes before (it renamed the contact away) is left to it.
        keeps = keeps_link(facts, self._policy)
        remote_id = link.remote_id if link is not None and keeps else None
        if remote_id and link is not None and link.digest == sign and not change.rewrite:
            return Skipped(work.key, work.seqs, UNCHANGED, digest=sign)
        email = payload.get("email") or record.email.strip()
        sent = {"email": email, "fields": payload}
        if remote_id and await self._update(remote_id, payload):
            return Done(work.key, work.seqs, remote_id=remote_id, digest=sign, sent=sent, detail="updated")
        if email and not remote_id and change.earlier_emails and keeps:
            # A write under an e-mail this record had before may have landed before a crash lost its outcome:
            # update that contact rather than make a second one.
            found = await self._found_again(work, facts)
            if found is not None and await self._update(found, payload):
                return Done(work.key, work.seqs, remote_id=found, digest=sign, sent=sent, detail="found again")
        if email:
            created_or_merged = await self._save_or_update(payload)
            return Done(
                work.key, work.seqs, remote_id=created_or_merged, digest=sign, sent=sent, detail="merged or created"
            )
        field = self.config.external_id_field
        if not field:
            return Skipped(
                work.key,
                work.seqs,
                f"no e-mail, and {EXTERNAL_ID_KEY} is not set: without an e-mail or an external id field a"
                " contact cannot be found again, so it is not created (set the field to sync such records)",
            )
        # Only syncd's writes of this key set its external id, and only a claim whose outcome may have been lost
        # (the key tried, or its late-write check) can have left one behind: a key's first write just creates.
        found = await self._find_by_external_id(field, external_id(record)) if _unsure(work) else None
        if found is not None and await self._update(found, payload):
            return Done(work.key, work.seqs, remote_id=found, digest=sign, sent=sent, detail="found by external id")
        created = await self._create(payload)
        return Done(work.key, work.seqs, remote_id=created, digest=sign, sent=sent, detail="created")

    async def _held_back(self, work: KeyWork, facts: Facts, held: str) -> Result:
        """Another record owns the contact of this record's e-mail: nothing is written, and the contacts it wrote
        under e-mails it had, which no one holds now, go as on_delete says."""
        lost = plan_lost_email(facts, self._policy, reason=held)
        if isinstance(lost, Keep):
            return Skipped(work.key, work.seqs, lost.reason)
        if lost is None:
            return Skipped(work.key, work.seqs, held)
        removed = await self._remove_leftovers(work, facts, lost.leftovers)
        if not removed:
            return Skipped(work.key, work.seqs, held)
        linked = work.link.remote_id if work.link is not None else None
        detail = f"{held}; {self._removed(removed)}"
        return Done(work.key, work.seqs, unlink=linked in removed, detail=detail, wrote=False)

    async def _related(self, record: Lead | Contact) -> Related:
        """The names the mapping needs from other Sell records (None when syncd has not seen them)."""
        if isinstance(record, Lead):
            return Related(source=await source_name(self._lookups, "lead", record.source_id))
        return Related(company=await organisation_name(self._lookups, record))

    async def _update(self, remote_id: str, payload: dict[str, str]) -> bool:
        """`PUT /1/Contacts` by id; False when Ontraport no longer has the contact."""
        answer = await self._api.call("PUT", "/1/Contacts", body={"id": remote_id, **payload}, missing_ok=True)
        return not answer.missing

    async def _save_or_update(self, payload: dict[str, str]) -> str:
        answer = await self._api.call("POST", "/1/Contacts/saveorupdate", body=payload)
        return _contact_id(answer.data)

    async def _create(self, payload: dict[str, str]) -> str:
        answer = await self._api.call("POST", "/1/Contacts", body=payload)
        return _contact_id(answer.data)

    async def _find_by_external_id(self, field: str, value: str) -> str | None:
        condition = [{"field": {"field": field}, "op": "=", "value": {"value": value}}]
        params = {"condition": json.dumps(condition), "range": "50", "start": "0", "sort": "id", "sortDir": "asc"}
        answer = await self._api.call("GET", "/1/Contacts", params=params)
        found = answer.data if isinstance(answer.data, list) else []
        ids = [str(item["id"]) for item in found if isinstance(item, dict) and item.get("id")]
        return ids[0] if ids else None

    # ------------------------------------------------------------------------------------------------- leftovers

    async def _found_again(self, work: KeyWork, facts: Facts) -> str | None:
        """The contact a lost first write of this unlinked record may have made: by the external id field, else the
        first leftover under its earlier e-mails."""
        field = self.config.external_id_field
        record = facts.change.record
        if field and record is not None:
            found = await self._find_by_external_id(field, external_id(record))
            if found is not None:
                return found
        first = await self._leftover_contacts(work, facts, leftovers(facts, self._policy.identity), first=True)
        return first[0] if first else None

    async def _leftover_contacts(
        self, work: KeyWork, facts: Facts, emails: Sequence[str], *, first: bool = False
    ) -> list[str]:
        """The ids of the leftovers under `emails` (e-mails no other live person has), newest first (only the
        first found when `first`): the contact Ontraport has under each, unless another live person is linked to
        that contact."""
        found: list[str] = []
        for email in emails:
            remote_id = await self._id_by_email(email)
            if remote_id is None:
                continue
            linked = await ask(self._lookups, work, [Question("", remote_id)])
            if is_leftover({**facts.peers, **linked}, email, remote_id):
                found.append(remote_id)
                if first:
                    break
        return found

    # ------------------------------------------------------------------------------------------------- delete

    async def _delete(self, work: KeyWork, facts: Facts) -> Result:
        change = facts.change
        plan = plan_delete(facts, self._policy)
        if isinstance(plan, Deferred):
            return plan
        linked = work.link.remote_id if work.link is not None else None
        if isinstance(plan, Keep):
            if not plan.holders:
                return Skipped(work.key, work.seqs, plan.reason)
            removed = await self._remove_leftovers(work, facts, plan.leftovers)
            if not removed:
                return Skipped(work.key, work.seqs, plan.reason)
            detail = f"{plan.reason}; {self._removed(removed)}"
            return Done(work.key, work.seqs, unlink=linked in removed, detail=detail, wrote=False)
        own = linked
        if own is None:
            # Not linked: the contact under its e-mail may be another record's, still there before its rename.
            own = await self._locate(work, change, plan.own)
            kept = await located_keep(self._lookups, work, own) if own is not None else None
            if kept is not None:
                removed = await self._remove_leftovers(work, facts, plan.leftovers, besides=own)
                if not removed:
                    return Skipped(work.key, work.seqs, kept.reason)
                return Done(work.key, work.seqs, detail=f"{kept.reason}; {self._removed(removed)}", wrote=False)
        done = await self._remove_own(work, own)
        removed = await self._remove_leftovers(work, facts, plan.leftovers, besides=own)
        return replace(done, detail=f"{done.detail}; {self._removed(removed)}") if removed else done

    async def _remove_own(self, work: KeyWork, remote_id: str | None) -> Done:
        """on_delete applied to the own contact (`remote_id`; None when Ontraport has none for the record)."""
        if remote_id is None:
            return Done(work.key, work.seqs, unlink=True, detail="not in Ontraport: nothing to delete", wrote=False)
        removed = await self._remove(remote_id)
        if self.config.on_delete == "delete":
            return Done(work.key, work.seqs, unlink=True, detail="deleted" if removed else "already gone", wrote=False)
        before = work.link.sent if work.link is not None and work.link.sent is not None else {}
        sent: dict[str, Any] = {**before, "tagged": self.config.deleted_tag}
        return Done(work.key, work.seqs, remote_id=remote_id, sent=sent, detail="tagged as deleted", wrote=False)

    async def _remove(self, remote_id: str) -> bool:
        """Apply on_delete ("delete" or "tag") to one Ontraport contact; False when it was already gone."""
        if self.config.on_delete == "delete":
            answer = await self._api.call("DELETE", "/1/Contact", params={"id": remote_id}, missing_ok=True)
            return not answer.missing
        body = {"objectID": CONTACT_OBJECT, "ids": [int(remote_id)], "add_names": [self.config.deleted_tag]}
        await self._api.call("PUT", "/1/objects/tagByName", body=body)
        return True

    def _removed(self, ids: Sequence[str]) -> str:
        action = "deleted" if self.config.on_delete == "delete" else "tagged"
        return f"{len(ids)} contact(s) under earlier e-mails {action}"

    async def _remove_leftovers(
        self, work: KeyWork, facts: Facts, emails: Sequence[str], *, besides: str | None = None
    ) -> list[str]:
        """on_delete applied to the leftovers under `emails` (other than the contact `besides`): their ids."""
        removed: list[str] = []
        for found in await self._leftover_contacts(work, facts, emails):
            if found != besides and found not in removed:
                await self._remove(found)
                removed.append(found)
        return removed

    async def _locate(self, work: KeyWork, change: PersonChange, own: Own | None) -> str | None:
        """The own contact of a record syncd holds no link for: under its e-mail (one made outside syncd, or by
        another record before its rename), else, when a lost outcome may have left one (`_unsure`), by the external
        id field, which only syncd's writes of this key set."""
        if own is not None and own.email and not self._known_absent(work, own.email):
            found = await self._id_by_email(own.email)
            if found is not None:
                return found
        field = self.config.external_id_field
        if field and change.record is not None and _unsure(work):
            return await self._find_by_external_id(field, external_id(change.record))
        return None

    def _unlinked_delete(self, work: KeyWork, now: float) -> tuple[str, float] | None:
        """The e-mail of a person key's delete of a record syncd holds no link for, due now by its grace, and when
        it fell due (None for any other key)."""
        if work.kind in self._facts or work.link is not None or self.config.on_delete == "ignore":
            return None
        change = coalesce_person(work)
        if change.intent != "delete" or change.record is None or change.deleted_ingested_at is None:
            return None
        due = delete_due_at(change, self._policy, now=now)
        email = own_contact(change, None, self._policy.identity).email
        return (email.casefold(), due) if email and due <= now else None

    def _known_absent(self, work: KeyWork, email: str) -> bool:
        """Whether this claim's set found no contact under `email` (asked at most ABSENT_FOR seconds ago)."""
        held = self._absent.pop(work.key, None)
        return held is not None and held[0] == email.casefold() and self._clock() - held[1] <= ABSENT_FOR

    async def _id_by_email(self, email: str) -> str | None:
        params = {"objectID": CONTACT_OBJECT, "email": email}
        answer = await self._api.call("GET", "/1/object/getByEmail", params=params, missing_ok=True)
        data = answer.data if isinstance(answer.data, dict) else {}
        return str(data["id"]) if not answer.missing and data.get("id") else None

    # ------------------------------------------------------------------------------------------------- meta

    async def _current_meta(self) -> dict[str, DestinationField]:
        """The cached contact fields; fetched again (at most once a minute) when a configured field is missing."""
        field = self.config.external_id_field
        meta = self._meta if self._meta is not None else await self._load_meta(max_age=None)
        missing = missing_targets(self._rows, meta, external_id_field=field)
        if missing:
            meta = await self._load_meta(max_age=META_REFRESH)
            missing = missing_targets(self._rows, meta, external_id_field=field)
        new = sorted(set(missing) - self._reported_missing)
        back = sorted(self._reported_missing - set(missing))
        if not self._drift_checked:  # a field back while syncd was down: its drift, recorded before, is resolved
            self._drift_checked = True
            wanted = {row.target for row in self._rows} | ({field} if field else set())
            back = sorted(wanted - set(missing))
        if new:
            self._reported_missing.update(new)
            self._log.warning(
                "destination_fields_missing",
                fields=new,
                hint="these configured fields are not in the Ontraport account and are not written; run syncd check",
            )
        for key in new:  # mapping drift too: shown by status and check, readiness degraded, until it is back
            problem = "the configured Ontraport contact field is not in the account (deleted?): it is not written"
            await self._lookups.report_drift(SINK, f"field {key}", problem)
        for key in back:
            self._reported_missing.discard(key)
            await self._lookups.report_drift(SINK, f"field {key}", None)
        return meta

    async def _load_meta(self, *, max_age: float | None = 0.0) -> dict[str, DestinationField]:
        """The contact fields, fetched unless the cached ones are younger than `max_age` seconds (None: any age).
        Concurrent callers share one fetch."""
        async with self._meta_lock:
            cached = self._meta
            if cached is not None and (max_age is None or self._clock() - self._meta_at < max_age):
                return cached
            try:
                answer = await self._api.call("GET", "/1/Contacts/meta")
                meta = parse_meta(answer.data)
            except (DestinationError, TransientError):
                raise
            except CallError as exc:  # the account answered, but not with its fields: not any record's fault
                message = f"reading the contact fields failed: {exc.message}"
                raise TransientError(message, http_status=exc.http_status) from None
            except ValueError as exc:
                raise TransientError(f"Ontraport answered an unreadable contact meta: {exc}") from None
            self._meta, self._meta_at = meta, self._clock()
            return meta


def _unsure(work: KeyWork) -> bool:
    """Whether a write of this key whose outcome was lost may have landed: the key was tried since its last
    finishing outcome (a claim that may have left a write: the store's claims count), or this claim is its
    late-write check."""
    return work.tried or work.reassert


def _contact_id(data: Any) -> str:
    """The contact id of a create (`data.id`) or a merge (`data.attrs.id`)."""
    if isinstance(data, dict):
        for holder in (data, data.get("attrs")):
            if isinstance(holder, dict) and holder.get("id") not in (None, ""):
                return str(holder["id"])
    raise TransientError("Ontraport answered the write without a contact id")

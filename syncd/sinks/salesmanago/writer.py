"""The SALESmanago writer: Sell people → SALESmanago contacts over its JSON API, every outcome classified; Sell
deals and notes → external events on those contacts (salesmanago/history.py).

Per `deliver(works)`: each key is coalesced to its latest state and planned (sinks/persons.py decides; this writer
carries the plans out) — skipped (no e-mail, unchanged, an organisation under organisations = skip), an upsert, or a
delete — the keys of a batch concurrently; the people a plan says must be written again (an organisation's
members after its rename) are queued. All upserts of the call then go out as ONE `contact/batchupsert` per
`batch_size` (a lone one as `contact/upsert`).

Shared e-mails: of several live Sell people with one e-mail, one owns the contact (`shared_email`); the others are
skipped with the reason, and what they wrote under e-mails they had goes as a leftover does.

E-mails: SALESmanago keys contacts by e-mail. When a record has leftovers (contacts under e-mails it had before
that no other live Sell person holds), `contact/basic` tells which of them exist: the newest is renamed
(`newEmail`, same contactId) unless the current e-mail already has a contact; the other leftovers are removed
(`on_delete`) once the upsert is done. A record that lost its e-mail has its leftovers removed.

Deletes (`on_delete`): "delete" → `contact/delete` of the own contact's e-mail, an unknown e-mail counting as
already deleted (for a contact syncd holds no link to, one `contact/basic` for the batch's such deletes says which
e-mails hold one, and whose: an absent one is not sent); "tag" → an upsert adding `tags.deleted` to an existing
contact; "ignore" → nothing. Leftovers go the same way. When other live Sell people map to the own contact (a lead
and the contact it became), it stays, and only the tags this record alone wanted are removed from it. The calls
are in salesmanago/http.py (every failure raised as a CallError, which becomes a `Failed` for that key only);
batches and their bad items in salesmanago/upserts.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import anyio

from syncd.config import SalesmanagoConfig
from syncd.errors import CallError, ConfigError, DestinationError, TransientError
from syncd.events import Contact, Lead, email_of
from syncd.ratelimit import Limiter
from syncd.sinks.base import DestinationField, Lookups, crashed, organisation_name
from syncd.sinks.mapping import digest
from syncd.sinks.persons import (
    Facts,
    Keep,
    Own,
    Policy,
    Remove,
    coalesce_person,
    follow_up,
    gather,
    held_back,
    leftovers,
    located_keep,
    plan_delete,
    plan_lost_email,
    skipped_organisation,
    write_target,
)
from syncd.sinks.salesmanago.event_calls import EventCalls
from syncd.sinks.salesmanago.fields import FIELDS
from syncd.sinks.salesmanago.history import HISTORY_KINDS, HistoryWriter
from syncd.sinks.salesmanago.http import SalesmanagoApi
from syncd.sinks.salesmanago.map import LastWrite, MappedContact, map_person
from syncd.sinks.salesmanago.protocol import API
from syncd.sinks.salesmanago.targets import tag_name
from syncd.sinks.salesmanago.upserts import PlannedUpsert, send_upserts
from syncd.work import Deferred, Done, Failed, KeyWork, Result, Skipped, split_key

NO_EMAIL = "no e-mail: SALESmanago identifies contacts by e-mail"


@dataclass(frozen=True, slots=True)
class UnlinkedDelete:
    """A delete of the contact under `email`, which syncd holds no link to (it never wrote this record, or another
    record owns the e-mail): the batch asks SALESmanago at once which such e-mails hold a contact, and whose."""

    work: KeyWork
    email: str
    leftovers: tuple[str, ...] = ()  # e-mails whose contacts go the way of a delete once this one is done


class SalesmanagoWriter:
    """Delivers Sell leads and contacts to one SALESmanago account."""

    name = "salesmanago"

    def __init__(
        self,
        config: SalesmanagoConfig,
        *,
        lookups: Lookups,
        limiter: Limiter,
        streams: Sequence[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        if config.api_secret is None:
            raise ConfigError("required when the destination is enabled", key="sinks.salesmanago.api_secret")
        self.config = config
        self.batch_size = config.batch_size
        self._api = SalesmanagoApi(config, config.api_secret, limiter, clock)
        self._lookups = lookups
        self._policy = Policy(
            "email",
            config.on_delete,
            config.delete_grace,
            tuple(streams),
            organisations=config.organisations,
            shared_email=config.shared_email,
        )
        self._deleted_tags = list(dict.fromkeys(tag_name(tag) for tag in config.tags.deleted))
        self._clock = clock
        self._rows = config.mapping
        self._planning = anyio.CapacityLimiter(8)  # keys of one batch planned (and deleted) at the same time
        self._history = HistoryWriter(config, EventCalls(self._api), lookups)  # deal and note keys

    async def aclose(self) -> None:
        await self._api.aclose()

    # -----------------------------------------------------------------------------------------------------------
    # the Writer interface

    async def deliver(self, works: Sequence[KeyWork]) -> list[Result]:
        """One Result per key, in the order of `works`; expected failures come back as `Failed`, never raised. Deal
        and note keys become external events (salesmanago/history.py), the others contacts."""
        history = [work for work in works if work.kind in HISTORY_KINDS]
        people = [work for work in works if work.kind not in HISTORY_KINDS]
        planned: dict[str, Result | PlannedUpsert | UnlinkedDelete] = {}
        # Plan every key at once: look-ups, and the deletes (one call each: there is no batch delete), overlap.
        async with anyio.create_task_group() as tg:
            for work in people:
                tg.start_soon(self._plan_into, work, planned)
        upserts = [p for w in people if isinstance(p := planned[w.key], PlannedUpsert)]
        unlinked = [p for w in people if isinstance(p := planned[w.key], UnlinkedDelete)]
        results = {key: p for key, p in planned.items() if not isinstance(p, PlannedUpsert | UnlinkedDelete)}
        if unlinked:
            results.update(await self._delete_unlinked(unlinked))
        results.update(await send_upserts(self._api, upserts, self.batch_size))
        for upsert in upserts:
            done = results[upsert.key]
            if upsert.leftovers and isinstance(done, Done):
                # The leftovers the write did not rename are held by no Sell person any more (on_delete).
                try:
                    results[upsert.key] = await self._remove_leftovers(upsert.leftovers, done)
                except CallError as exc:
                    results[upsert.key] = Failed(upsert.key, upsert.seqs, exc)
                except Exception as exc:
                    results[upsert.key] = crashed(self.name, upsert.key, upsert.seqs, exc)
        if history:
            results.update(await self._history.deliver(history))
        return [results[work.key] for work in works]

    async def payload(self, record: Lead | Contact) -> MappedContact:
        """The contact this writer writes for `record` (also what `syncd reconcile` compares with what SALESmanago
        holds: one mapping for both)."""
        organisation = await organisation_name(self._lookups, record) or ""
        return map_person(record, config=self.config, rows=self._rows, organization=organisation)

    @property
    def api(self) -> SalesmanagoApi:
        """The account's API (its reads are what `syncd reconcile` asks)."""
        return self._api

    @property
    def policy(self) -> Policy:
        """How this destination treats people (identity, deletes, organisations, shared e-mails)."""
        return self._policy

    async def probe(self) -> None:
        """`contact/hasContact` for the owner's own e-mail: any authenticated call proves the credentials."""
        try:
            await self._api.call("contact/hasContact", {"email": self.config.owner}, known=(self.config.owner,))
        except (TransientError, DestinationError):
            raise
        except CallError as error:
            # Anything else (a 400, a refusal) still means the destination is not usable as configured.
            raise DestinationError(f"{API} refused the probe: {error.message}", http_status=error.http_status) from None

    async def fields(self) -> list[DestinationField]:
        """SALESmanago has no field-list endpoint: the fixed contact fields, and the free-form kinds of detail."""
        return list(FIELDS)

    # -----------------------------------------------------------------------------------------------------------
    # planning one key

    async def _plan_into(self, work: KeyWork, planned: dict[str, Result | PlannedUpsert | UnlinkedDelete]) -> None:
        async with self._planning:
            try:
                planned[work.key] = await self._plan(work)
            except CallError as exc:
                planned[work.key] = Failed(work.key, work.seqs, exc)
            except Exception as exc:  # this key's alone: the batch's other keys go on
                planned[work.key] = crashed(self.name, work.key, work.seqs, exc)

    async def _plan(self, work: KeyWork) -> Result | PlannedUpsert | UnlinkedDelete:
        change = coalesce_person(work)
        if change.record is None:
            return Skipped(work.key, work.seqs, "no known state of this Sell record")
        facts = await gather(self._lookups, work, change, self._policy, now=self._clock())
        planned = await self._decide(work, change.record, facts)
        if not isinstance(planned, Deferred):
            await follow_up(self._lookups, work, facts, self._policy)
        return planned

    async def _decide(
        self, work: KeyWork, record: Lead | Contact, facts: Facts
    ) -> Result | PlannedUpsert | UnlinkedDelete:
        change = facts.change
        skipped = skipped_organisation(record, self._policy)
        if skipped:
            return Skipped(work.key, work.seqs, skipped)
        last = LastWrite.from_sent(work.link.sent if work.link is not None else None)
        if change.intent == "delete":
            return await self._carry_out(work, last, plan_delete(facts, self._policy))
        unwritten = NO_EMAIL if not email_of(record) else held_back(facts, self._policy)
        if unwritten:
            # No contact of its own (no e-mail, or another record owns the one it has): what it wrote under the
            # e-mails it had stands for no one.
            lost = plan_lost_email(facts, self._policy, reason=unwritten)
            if lost is None or isinstance(lost, Keep):
                return Skipped(work.key, work.seqs, lost.reason if lost is not None else unwritten)
            detail = "the Sell record has no e-mail any more" if unwritten == NO_EMAIL else unwritten
            done = Done(work.key, work.seqs, unlink=True, detail=detail, wrote=False)
            return await self._remove_leftovers(lost.leftovers, done)
        found = leftovers(facts, self._policy.identity)
        mapped = await self.payload(record)
        unchanged = work.link is not None and work.link.digest == mapped.digest
        if unchanged and not found and not change.rewrite:
            return Skipped(work.key, work.seqs, "unchanged since the last write")
        rename_from: str | None = None
        remove: tuple[str, ...] = ()
        if found:
            # Which leftovers exist decides the contact the write targets (a rename keeps the contactId).
            target = write_target(mapped.email, found, await self._api.existing((mapped.email, *found)))
            rename_from, remove = target.rename_from, target.leftovers
        item = mapped.upsert(last, rename_from=rename_from)
        return PlannedUpsert(work.key, work.seqs, item, mapped.digest, mapped.sent(), leftovers=remove)

    # -----------------------------------------------------------------------------------------------------------
    # carrying out a delete

    async def _carry_out(
        self, work: KeyWork, last: LastWrite, plan: Deferred | Keep | Remove
    ) -> Result | PlannedUpsert | UnlinkedDelete:
        if isinstance(plan, Deferred):
            return plan
        if isinstance(plan, Keep):
            if not plan.holders:
                return Skipped(work.key, work.seqs, plan.reason)
            kept = await self._release_tags(work, last, plan)
            return await self._then_leftovers(kept, plan.leftovers)
        own = await self._tag_own(work, last) if plan.mode == "tag" else await self._delete_own(work, plan.own)
        return await self._then_leftovers(own, plan.leftovers)

    async def _release_tags(self, work: KeyWork, last: LastWrite, plan: Keep) -> Skipped | PlannedUpsert:
        """The own contact stays for the people who map to it: take away the tags only this record wanted."""
        kept = Skipped(work.key, work.seqs, plan.reason)
        if not last.email or not last.tags:
            return kept
        wanted: set[str] = set()
        holder = False
        for peer in plan.holders:
            shadow = await self._lookups.shadow(*split_key(peer))
            if shadow is not None and isinstance(shadow.record, Lead | Contact):
                wanted.update(map_person(shadow.record, config=self.config, rows=self._rows).tags)
                holder = holder or email_of(shadow.record) == last.email
        stale = [tag for tag in last.tags if tag not in wanted]
        if not stale or not holder:
            # Without a live peer on this very e-mail the shared contact has moved on (renamed by its other
            # record); an upsert addressed to the old e-mail would create it again.
            return kept
        item = {"contact": {"email": last.email}, "removeTags": stale}
        return PlannedUpsert(
            work.key, work.seqs, item, None, None, unlink=True, detail=f"{plan.reason}; removed its own tags"
        )

    async def _tag_own(self, work: KeyWork, last: LastWrite) -> Skipped | PlannedUpsert:
        """on_delete = tag: an upsert adding tags.deleted to the contact last written, when it still exists."""
        if not last.email:
            return Skipped(work.key, work.seqs, "nothing to tag: syncd never wrote this record to SALESmanago")
        if last.email not in await self._api.existing((last.email,)):
            return Skipped(work.key, work.seqs, "nothing to tag: the contact is no longer in SALESmanago")
        item = {"contact": {"email": last.email}, "tags": self._deleted_tags}
        written = list(dict.fromkeys([*last.tags, *self._deleted_tags]))
        sent = {"email": last.email, "tags": written, "properties": list(last.properties)}
        return PlannedUpsert(work.key, work.seqs, item, digest(item), sent, detail="tagged as deleted")

    async def _delete_own(self, work: KeyWork, own: Own | None) -> Result | UnlinkedDelete:
        if own is None or not own.email:
            return Skipped(work.key, work.seqs, "nothing to delete: the record has no e-mail")
        if own.remote_id is None:
            # Not linked: whether a contact is under its e-mail, and whose, is asked for the batch's keys at once.
            return UnlinkedDelete(work, own.email)
        return await self._delete_email(work, own.email, remote_id=own.remote_id)

    async def _delete_email(self, work: KeyWork, email: str, *, remote_id: str | None = None) -> Done:
        """`contact/delete` of the own contact under `email`: done, and unlinked (an unknown e-mail is already
        absent)."""
        detail = "deleted" if await self._api.delete(email) else "already absent"
        return Done(work.key, work.seqs, remote_id=remote_id, unlink=True, detail=detail, wrote=False)

    async def _delete_unlinked(self, deletes: Sequence[UnlinkedDelete]) -> dict[str, Result]:
        """The deletes of contacts syncd holds no link to: ONE `contact/basic` per `batch_size` of them says which
        e-mails hold a contact (an absent one is already deleted: nothing is sent), then each found contact is
        deleted unless another live person is linked to it (one whose e-mail change waits to be written still holds
        it there), and the leftovers go."""
        results: dict[str, Result] = {}
        for start in range(0, len(deletes), self.batch_size):
            chunk = deletes[start : start + self.batch_size]
            try:
                live = await self._api.live(list(dict.fromkeys(d.email for d in chunk)))
            except CallError as exc:
                results.update({d.work.key: Failed(d.work.key, d.work.seqs, exc) for d in chunk})
                continue
            async with anyio.create_task_group() as tg:
                for delete in chunk:
                    tg.start_soon(self._delete_found, delete, delete.email in live, live.get(delete.email), results)
        return results

    async def _delete_found(
        self, delete: UnlinkedDelete, present: bool, found: str | None, results: dict[str, Result]
    ) -> None:
        """One unlinked delete, once the batch knows whether its e-mail holds a live contact (`found`: its id)."""
        work = delete.work
        async with self._planning:
            try:
                if not present:
                    own: Result = Done(work.key, work.seqs, unlink=True, detail="already absent", wrote=False)
                elif found is not None and (kept := await located_keep(self._lookups, work, found)) is not None:
                    own = Skipped(work.key, work.seqs, kept.reason)
                else:
                    own = await self._delete_email(work, delete.email)
                done = await self._then_leftovers(own, delete.leftovers)
                assert not isinstance(done, PlannedUpsert | UnlinkedDelete)
                results[work.key] = done
            except CallError as exc:
                results[work.key] = Failed(work.key, work.seqs, exc)
            except Exception as exc:  # this key's alone
                results[work.key] = crashed(self.name, work.key, work.seqs, exc)

    async def _then_leftovers(
        self, result: Result | PlannedUpsert | UnlinkedDelete, emails: Sequence[str]
    ) -> Result | PlannedUpsert | UnlinkedDelete:
        """`result` for the own contact, and the leftovers under `emails` removed: after a planned upsert or delete
        is done, or now (what was skipped for the own contact becomes the detail of a Done)."""
        if not emails:
            return result
        if isinstance(result, PlannedUpsert | UnlinkedDelete):
            return replace(result, leftovers=tuple(emails))
        if isinstance(result, Skipped):
            return await self._remove_leftovers(
                emails, Done(result.key, result.seqs, detail=result.reason, wrote=False)
            )
        if isinstance(result, Done):
            return await self._remove_leftovers(emails, result)
        return result

    async def _remove_leftovers(self, emails: Sequence[str], done: Done) -> Done:
        """Apply on_delete to the contacts under `emails` (no Sell person holds them any more): `done` with what
        happened added to its detail. A contact already absent counts as removed; a tag goes only on a contact that
        exists (an upsert to an absent e-mail would create one just to tag it). Raises CallError."""
        mode = self.config.on_delete
        if mode == "ignore":
            return done
        present = await self._api.existing(emails) if mode == "tag" else set(emails)
        action = "tagged" if mode == "tag" else "deleted"
        for email in emails:
            if email not in present:
                continue
            if mode == "tag":
                await self._api.tag(email, self._deleted_tags)
            else:
                await self._api.delete(email)
            note = f"old contact {action}"
            done = replace(done, detail=f"{done.detail}; {note}" if done.detail else note)
        return done

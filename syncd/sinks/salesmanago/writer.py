"""The SALESmanago writer: Sell people → SALESmanago contacts over its JSON API, every outcome classified.

Per `deliver(works)`: each key is coalesced to its latest state (syncd.coalesce) and planned — skipped (no e-mail,
unchanged, an organisation), an upsert, or a delete (after the deletion guard) — the keys of a batch concurrently.
All upserts of the call then go out as ONE `contact/batchupsert` per `batch_size` (a lone one as `contact/upsert`).

E-mails: SALESmanago keys contacts by e-mail. When a record's e-mail changed (or a write under an earlier one may
have landed before a crash lost its outcome), `contact/basic` tells which of its e-mails have a contact: the newest
is renamed (`newEmail`, same contactId) unless the current e-mail already has one; contacts under earlier e-mails
that no other live Sell person holds go the way of a deleted record.

Deletes (`on_delete`): "delete" → `contact/delete` of the last e-mail written (or the record's), an unknown e-mail
counting as already deleted; "tag" → an upsert adding `tags.deleted` to an existing contact; "ignore" → nothing.
When the guard finds another live Sell person on the same SALESmanago contact (a lead and the contact it became),
the contact stays, and only the tags that this record alone wanted are removed from it. The calls are in
salesmanago/http.py (every failure raised as a CallError, which becomes a `Failed` for that key only); batches and
their bad items in salesmanago/upserts.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import anyio

from syncd.coalesce import PersonChange, coalesce_person
from syncd.config import SalesmanagoConfig
from syncd.errors import CallError, ConfigError, DestinationError, TransientError
from syncd.events import Contact, Lead, email_of
from syncd.ratelimit import Limiter
from syncd.sinks.base import DestinationField, Lookups
from syncd.sinks.guard import guard_delete
from syncd.sinks.mapping import digest, parse_fields
from syncd.sinks.salesmanago.fields import FIELDS
from syncd.sinks.salesmanago.http import SalesmanagoApi
from syncd.sinks.salesmanago.map import LastWrite, map_person
from syncd.sinks.salesmanago.protocol import API
from syncd.sinks.salesmanago.targets import tag_name
from syncd.sinks.salesmanago.upserts import PlannedUpsert, send_upserts
from syncd.work import Done, Failed, KeyWork, Result, Skipped

NO_EMAIL = "no e-mail: SALESmanago identifies contacts by e-mail"


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
        self._streams = tuple(streams)
        self._clock = clock
        self._rows = parse_fields(self.name, config.fields)
        self._planning = anyio.CapacityLimiter(8)  # keys of one batch planned (and deleted) at the same time

    async def aclose(self) -> None:
        await self._api.aclose()

    # -----------------------------------------------------------------------------------------------------------
    # the Writer interface

    async def deliver(self, works: Sequence[KeyWork]) -> list[Result]:
        """One Result per key, in the order of `works`; expected failures come back as `Failed`, never raised."""
        planned: dict[str, Result | PlannedUpsert] = {}
        # Plan every key at once: look-ups, and the deletes (one call each: there is no batch delete), overlap.
        async with anyio.create_task_group() as tg:
            for work in works:
                tg.start_soon(self._plan_into, work, planned)
        upserts = [p for w in works if isinstance(p := planned[w.key], PlannedUpsert)]
        results = {key: p for key, p in planned.items() if not isinstance(p, PlannedUpsert)}
        results.update(await send_upserts(self._api, upserts, self.batch_size))
        for upsert in upserts:
            done = results[upsert.key]
            if upsert.leftovers and isinstance(done, Done):
                # Contacts under earlier e-mails of the record are held by no Sell person any more (on_delete).
                try:
                    results[upsert.key] = await self._retire_all(upsert.leftovers, done)
                except CallError as exc:
                    results[upsert.key] = Failed(upsert.key, upsert.seqs, exc)
        return [results[work.key] for work in works]

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

    async def _plan_into(self, work: KeyWork, planned: dict[str, Result | PlannedUpsert]) -> None:
        async with self._planning:
            try:
                planned[work.key] = await self._plan(work)
            except CallError as exc:
                planned[work.key] = Failed(work.key, work.seqs, exc)

    async def _plan(self, work: KeyWork) -> Result | PlannedUpsert:
        change = coalesce_person(work)
        record = change.record
        if record is None:
            return Skipped(work.key, work.seqs, "no known state of this Sell record")
        if isinstance(record, Contact) and record.is_organization:
            return Skipped(work.key, work.seqs, "an organisation: only people are synced to SALESmanago")
        last = LastWrite.from_sent(work.link.sent if work.link is not None else None)
        orphans = await self._orphans(work, change, last)
        if change.intent == "delete":
            return await self._plan_delete(work, change, record, last, orphans)
        if not email_of(record):
            if orphans:
                # The Sell person lost the e-mail it had: the contacts written under it now stand for no one.
                return await self._retire_lost(work, orphans)
            return Skipped(work.key, work.seqs, NO_EMAIL)
        mapped = map_person(record, config=self.config, rows=self._rows, organization=await self._organization(record))
        if work.link is not None and work.link.digest == mapped.digest and not orphans:
            return Skipped(work.key, work.seqs, "unchanged since the last write")
        rename_from: str | None = None
        retire: tuple[str, ...] = ()
        if orphans:
            # The e-mail changed (or a write under an earlier one may have landed before a crash lost its
            # outcome). Ask which of these contacts exist: rename the newest existing one (the contactId stays),
            # unless the current e-mail already has a contact (a rename onto it would be refused: write to that
            # one); contacts under the other earlier e-mails stand for no one and are retired (on_delete).
            existing = await self._api.existing((mapped.email, *orphans))
            held = [email for email in orphans if email in existing]
            if held and mapped.email not in existing:
                rename_from, held = held[0], held[1:]
            retire = tuple(held)
        item = mapped.upsert(last, rename_from=rename_from)
        return PlannedUpsert(work.key, work.seqs, item, mapped.digest, mapped.sent(), leftovers=retire)

    async def _orphans(self, work: KeyWork, change: PersonChange, last: LastWrite) -> tuple[str, ...]:
        """E-mails this record may have written a contact under, other than its current one, that no other live
        Sell person holds (newest first). The contact last written counts as held while another live person is
        linked to it (by contactId), whatever e-mail that person now has."""
        linked = work.link.remote_id if work.link is not None else None
        found = []
        for email in change.earlier_emails:
            peers = await self._lookups.live_peers(self.name, work.kind, work.record_id, email=email, remote_id=None)
            if not peers and linked and email == last.email:
                peers = await self._lookups.live_peers(self.name, work.kind, work.record_id, email="", remote_id=linked)
            if not peers:
                found.append(email)
        return tuple(found)

    async def _organization(self, record: Lead | Contact) -> str:
        """The name of a contact's organisation, from the shadow of that Sell organisation ("" when unknown)."""
        if not isinstance(record, Contact) or record.organization_id is None:
            return ""
        shadow = await self._lookups.shadow("contact", record.organization_id)
        if shadow is None or shadow.deleted or not isinstance(shadow.record, Contact):
            return ""
        return shadow.record.name

    async def _plan_delete(
        self, work: KeyWork, change: PersonChange, record: Lead | Contact, last: LastWrite, orphans: Sequence[str]
    ) -> Result | PlannedUpsert:
        mode = self.config.on_delete
        if mode == "ignore":
            return Skipped(work.key, work.seqs, "on_delete = ignore")
        remote_id = work.link.remote_id if work.link is not None else None
        guarded = await guard_delete(
            change,
            sink=self.name,
            lookups=self._lookups,
            streams=self._streams,
            grace=self.config.delete_grace,
            now=self._clock(),
            remote_id=remote_id,
            email=last.email or None,  # the contact this record wrote is the one a delete would remove
        )
        if isinstance(guarded, Skipped):
            # The shared contact stays for the other person; contacts under e-mails no live person holds (written
            # by this record, its outcome maybe lost in a crash) go the way of the delete.
            kept = await self._release_tags(work, record, last, remote_id, guarded)
            if not orphans:
                return kept
            if isinstance(kept, PlannedUpsert):
                return replace(kept, leftovers=tuple(orphans))
            if isinstance(kept, Skipped):
                return await self._retire_all(orphans, Done(work.key, work.seqs, detail=kept.reason, wrote=False))
            return kept
        if guarded is not None:
            return guarded
        if mode == "tag":
            if not last.email:
                return Skipped(work.key, work.seqs, "nothing to tag: syncd never wrote this record to SALESmanago")
            existing = await self._api.existing((last.email,))
            if last.email not in existing:
                return Skipped(work.key, work.seqs, "nothing to tag: the contact is no longer in SALESmanago")
            tags = list(dict.fromkeys(tag_name(tag) for tag in self.config.tags.deleted))
            item: dict[str, Any] = {"contact": {"email": last.email}, "tags": tags}
            written = list(dict.fromkeys([*last.tags, *tags]))
            sent = {"email": last.email, "tags": written, "properties": list(last.properties)}
            return PlannedUpsert(work.key, work.seqs, item, digest(item), sent, detail="tagged as deleted")
        # The contact last written, and any a lost write may have made under an earlier e-mail no one else holds.
        emails = [e for e in dict.fromkeys([last.email or email_of(record), *orphans]) if e]
        if not emails:
            return Skipped(work.key, work.seqs, "nothing to delete: the record has no e-mail")
        result = await self._delete(work, emails[0], remote_id)
        if isinstance(result, Done) and emails[1:]:
            return await self._retire_all(emails[1:], result)
        return result

    async def _release_tags(
        self, work: KeyWork, record: Lead | Contact, last: LastWrite, remote_id: str | None, guarded: Skipped
    ) -> Result | PlannedUpsert:
        """The contact stays (another live person maps to it): take away the tags only this record wanted."""
        if not last.email or not last.tags:
            return guarded
        peers = await self._lookups.live_peers(
            self.name, work.kind, work.record_id, email=email_of(record), remote_id=remote_id
        )
        kept: set[str] = set()
        holder = False
        for peer in peers:
            kind, _, record_id = peer.partition(":")
            shadow = await self._lookups.shadow(kind, int(record_id))
            if shadow is not None and isinstance(shadow.record, Lead | Contact):
                kept.update(map_person(shadow.record, config=self.config, rows=self._rows).tags)
                holder = holder or email_of(shadow.record) == last.email
        stale = [tag for tag in last.tags if tag not in kept]
        if not stale or not holder:
            # Without a live peer on this very e-mail the shared contact has moved on (renamed by its other
            # record); an upsert addressed to the old e-mail would create it again.
            return guarded
        item = {"contact": {"email": last.email}, "removeTags": stale}
        return PlannedUpsert(
            work.key, work.seqs, item, None, None, unlink=True, detail=f"{guarded.reason}; removed its own tags"
        )

    async def _delete(self, work: KeyWork, email: str, remote_id: str | None) -> Result:
        deleted = await self._api.delete(email)
        detail = "deleted" if deleted else "already absent"
        return Done(work.key, work.seqs, remote_id=remote_id, unlink=True, detail=detail, wrote=False)

    async def _retire_lost(self, work: KeyWork, emails: Sequence[str]) -> Result:
        done = Done(work.key, work.seqs, unlink=True, detail="the Sell record has no e-mail any more", wrote=False)
        retired = await self._retire_all(emails, done)
        if isinstance(retired, Done) and self.config.on_delete == "ignore":
            return Skipped(work.key, work.seqs, f"{NO_EMAIL} (on_delete = ignore: its old contact stays)")
        return retired

    async def _retire_all(self, emails: Sequence[str], done: Done) -> Result:
        for email in emails:
            result = await self._retire_email(email, done)
            if not isinstance(result, Done):
                return result
            done = result
        return done

    async def _retire_email(self, email: str, done: Done) -> Result:
        """Apply on_delete to the contact of `email` (no Sell person holds it any more); `done` when it worked."""
        mode = self.config.on_delete
        if mode == "ignore":
            return done
        if mode == "tag":
            # Tag only a contact that exists: an upsert to an absent e-mail would create one just to tag it.
            if email not in await self._api.existing((email,)):
                return done
            await self._api.tag(email, list(dict.fromkeys(tag_name(tag) for tag in self.config.tags.deleted)))
        else:
            await self._api.delete(email)  # one already absent counts as retired
        action = "tagged" if mode == "tag" else "deleted"
        return replace(done, detail=f"{done.detail}; old contact {action}" if done.detail else f"old contact {action}")

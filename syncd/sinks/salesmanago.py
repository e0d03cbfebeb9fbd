"""The SALESmanago writer: Sell people → SALESmanago contacts over its JSON API, every outcome classified.

Per `deliver(works)`: each key is coalesced to its latest state (syncd.coalesce) and planned — skipped (no e-mail,
unchanged, an organisation), an upsert, or a delete (after the deletion guard). All upserts of the call then go out
as ONE `contact/batchupsert` per `batch_size` (a lone one as `contact/upsert`). When SALESmanago refuses a batch
because of some items, those items are failed permanently and the rest is sent again (one by one when the reply
does not say which item was at fault): a good record is never dead-lettered for a bad neighbour. Both readings of a
refused batch are handled: the whole call refused (`success: false`) or the good items written (`success: true`,
`contactIds` without the bad ones).

Deletes (`on_delete`): "delete" → `contact/delete` of the last e-mail written (or the record's), an unknown e-mail
counting as already deleted; "tag" → an upsert adding `tags.deleted`; "ignore" → nothing. When the guard finds
another live Sell person on the same SALESmanago contact (a lead and the contact it became), the contact stays,
and only the tags that this record alone wanted are removed from it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from syncd.coalesce import PersonChange, coalesce_person
from syncd.config import SalesmanagoConfig
from syncd.errors import CallError, ConfigError, DestinationError, PermanentError, TransientError
from syncd.events import Contact, Lead, email_of
from syncd.httpclient import make_client, transport_error
from syncd.logs import get_logger
from syncd.ratelimit import Limiter
from syncd.sinks.base import DestinationField, Lookups
from syncd.sinks.guard import guard_delete
from syncd.sinks.mapping import parse_fields
from syncd.sinks.salesmanago_fields import FIELDS
from syncd.sinks.salesmanago_map import LastWrite, map_person, payload_digest
from syncd.sinks.salesmanago_protocol import (
    API,
    Reply,
    auth_fields,
    blamed_items,
    classify,
    is_not_found,
    item_error,
    read_reply,
    request_text,
    with_request,
)
from syncd.sinks.salesmanago_targets import tag_name
from syncd.work import Done, Failed, KeyWork, Result, Skipped

NO_EMAIL = "no e-mail: SALESmanago identifies contacts by e-mail"


@dataclass(frozen=True, slots=True)
class _Upsert:
    """One key's planned upsert, and what its Done records."""

    key: str
    seqs: tuple[int, ...]
    item: dict[str, Any]
    digest: str | None
    sent: dict[str, Any] | None
    unlink: bool = False
    detail: str = ""
    retire: str | None = None  # an old e-mail whose contact no Sell person holds any more (handled per on_delete)
    emails: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        contact = self.item["contact"]["email"]
        new = self.item.get("newEmail")
        object.__setattr__(self, "emails", (contact, new) if new else (contact,))

    @property
    def final_email(self) -> str:
        return str(self.emails[-1]).lower()

    def done(self, contact_id: str | None) -> Done:
        return Done(
            self.key,
            self.seqs,
            remote_id=contact_id,
            digest=self.digest,
            sent=self.sent,
            unlink=self.unlink,
            detail=self.detail,
        )


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
        self._secret = config.api_secret
        self._lookups = lookups
        self._limiter = limiter
        self._streams = tuple(streams)
        self._clock = clock
        self._rows = parse_fields(self.name, config.fields)
        path = urlsplit(config.base_url).path.rstrip("/")
        self._prefix = "/" if path.endswith("/api") else "/api/"
        self._client = make_client(
            config.base_url,
            api=API,
            timeout=config.timeout,
            headers={"Content-Type": "application/json;charset=UTF-8"},
        )
        self._log = get_logger(sink=self.name)
        self._planning = anyio.CapacityLimiter(8)  # keys of one batch planned (and deleted) at the same time

    async def aclose(self) -> None:
        await self._client.aclose()

    # -----------------------------------------------------------------------------------------------------------
    # the Writer interface

    async def deliver(self, works: Sequence[KeyWork]) -> list[Result]:
        """One Result per key, in the order of `works`; expected failures come back as `Failed`, never raised."""
        results: dict[str, Result] = {}
        planned: dict[str, Result | _Upsert] = {}
        # Plan every key at once: look-ups, and the deletes (one call each: there is no batch delete), overlap.
        async with anyio.create_task_group() as tg:
            for work in works:
                tg.start_soon(self._plan_into, work, planned)
        upserts = [p for w in works if isinstance(p := planned[w.key], _Upsert)]
        results.update({key: p for key, p in planned.items() if not isinstance(p, _Upsert)})
        for start in range(0, len(upserts), self.batch_size):
            chunk = upserts[start : start + self.batch_size]
            results.update(await self._upsert_many(chunk) if len(chunk) > 1 else await self._upsert_one(chunk[0]))
        for upsert in upserts:
            done = results[upsert.key]
            if upsert.retire is not None and isinstance(done, Done):
                results[upsert.key] = await self._retire(upsert, done)
        return [results[work.key] for work in works]

    async def probe(self) -> None:
        """`contact/hasContact` for the owner's own e-mail: any authenticated call proves the credentials."""
        body = {**self._auth(), "email": self.config.owner}
        reply = await self._call("contact/hasContact", body)
        if isinstance(reply, CallError):
            raise reply
        error = classify(reply, method="contact/hasContact", request=None, known=(self.config.owner,))
        if error is None:
            return
        if isinstance(error, TransientError | DestinationError):
            raise error
        # Anything else (a 400, a refusal) still means the destination is not usable as configured.
        raise DestinationError(f"{API} refused the probe: {error.message}", http_status=error.http_status)

    async def fields(self) -> list[DestinationField]:
        """SALESmanago has no field-list endpoint: the fixed contact fields, and the free-form kinds of detail."""
        return list(FIELDS)

    # -----------------------------------------------------------------------------------------------------------
    # planning one key

    async def _plan_into(self, work: KeyWork, planned: dict[str, Result | _Upsert]) -> None:
        async with self._planning:
            planned[work.key] = await self._plan(work)

    async def _plan(self, work: KeyWork) -> Result | _Upsert:
        change = coalesce_person(work)
        record = change.record
        if record is None:
            return Skipped(work.key, work.seqs, "no known state of this Sell record")
        if isinstance(record, Contact) and record.is_organization:
            return Skipped(work.key, work.seqs, "an organisation: only people are synced to SALESmanago")
        last = LastWrite.from_sent(work.link.sent if work.link is not None else None)
        if change.intent == "delete":
            return await self._plan_delete(work, change, record, last)
        if not email_of(record):
            if last.email and not await self._lookups.live_peers(
                self.name, work.kind, work.record_id, email=last.email, remote_id=None
            ):
                # The Sell person lost the e-mail it had: the contact written under it now stands for no one.
                return await self._retire_lost(work, last.email)
            return Skipped(work.key, work.seqs, NO_EMAIL)
        mapped = map_person(record, config=self.config, rows=self._rows, organization=await self._organization(record))
        if work.link is not None and work.link.digest == mapped.digest:
            return Skipped(work.key, work.seqs, "unchanged since the last write")
        rename, retire = True, None
        if last.email and last.email != mapped.email:
            # The e-mail changed. Rename the contact (same contactId) unless another live Sell person still holds
            # the old e-mail (leave that contact to it) or already holds the new one (a rename onto an existing
            # contact is refused: write to that one, and retire the old contact no one holds any more).
            old_peers = await self._lookups.live_peers(
                self.name, work.kind, work.record_id, email=last.email, remote_id=None
            )
            new_peers = await self._lookups.live_peers(
                self.name, work.kind, work.record_id, email=mapped.email, remote_id=None
            )
            rename = not old_peers and not new_peers
            retire = last.email if new_peers and not old_peers else None
        item = mapped.upsert(last, rename=rename)
        return _Upsert(work.key, work.seqs, item, mapped.digest, mapped.sent(), retire=retire)

    async def _organization(self, record: Lead | Contact) -> str:
        """The name of a contact's organisation, from the shadow of that Sell organisation ("" when unknown)."""
        if not isinstance(record, Contact) or record.organization_id is None:
            return ""
        shadow = await self._lookups.shadow("contact", record.organization_id)
        if shadow is None or shadow.deleted or not isinstance(shadow.record, Contact):
            return ""
        return shadow.record.name

    async def _plan_delete(
        self, work: KeyWork, change: PersonChange, record: Lead | Contact, last: LastWrite
    ) -> Result | _Upsert:
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
            return await self._release_tags(work, record, last, remote_id, guarded)
        if guarded is not None:
            return guarded
        if mode == "tag":
            if not last.email:
                return Skipped(work.key, work.seqs, "nothing to tag: syncd never wrote this record to SALESmanago")
            tags = list(dict.fromkeys(tag_name(tag) for tag in self.config.tags.deleted))
            item: dict[str, Any] = {"contact": {"email": last.email}, "tags": tags}
            written = list(dict.fromkeys([*last.tags, *tags]))
            sent = {"email": last.email, "tags": written, "properties": list(last.properties)}
            return _Upsert(work.key, work.seqs, item, payload_digest(item), sent, detail="tagged as deleted")
        email = last.email or email_of(record)
        if not email:
            return Skipped(work.key, work.seqs, "nothing to delete: the record has no e-mail")
        return await self._delete(work, email, remote_id)

    async def _release_tags(
        self, work: KeyWork, record: Lead | Contact, last: LastWrite, remote_id: str | None, guarded: Skipped
    ) -> Result | _Upsert:
        """The contact stays (another live person maps to it): take away the tags only this record wanted."""
        if not last.email or not last.tags:
            return guarded
        peers = await self._lookups.live_peers(
            self.name, work.kind, work.record_id, email=email_of(record), remote_id=remote_id
        )
        kept: set[str] = set()
        for peer in peers:
            kind, _, record_id = peer.partition(":")
            shadow = await self._lookups.shadow(kind, int(record_id))
            if shadow is not None and isinstance(shadow.record, Lead | Contact):
                kept.update(map_person(shadow.record, config=self.config, rows=self._rows).tags)
        stale = [tag for tag in last.tags if tag not in kept]
        if not stale:
            return guarded
        item = {"contact": {"email": last.email}, "removeTags": stale}
        return _Upsert(
            work.key, work.seqs, item, None, None, unlink=True, detail=f"{guarded.reason}; removed its own tags"
        )

    # -----------------------------------------------------------------------------------------------------------
    # calls

    def _auth(self) -> dict[str, Any]:
        return auth_fields(
            client_id=self.config.client_id, api_secret=self._secret.value, owner=self.config.owner, now=self._clock()
        )

    async def _call(self, method: str, body: dict[str, Any]) -> Reply | CallError:
        """POST one signed body (after the shared limiter lets it go); a transport failure comes back classified."""
        await self._limiter.acquire()
        try:
            response = await self._client.post(
                self._prefix + method, content=json.dumps(body, ensure_ascii=False).encode()
            )
        except httpx.HTTPError as exc:
            return transport_error(API, exc)
        return read_reply(response.status_code, response.content, response.headers.get("Retry-After"))

    async def _delete(self, work: KeyWork, email: str, remote_id: str | None) -> Result:
        body = {**self._auth(), "email": email}
        request = request_text("contact/delete", body)
        reply = await self._call("contact/delete", body)
        if isinstance(reply, CallError):
            return Failed(work.key, work.seqs, with_request(reply, request))
        error = classify(reply, method="contact/delete", request=request, known=(email,))
        if error is None:
            return Done(work.key, work.seqs, remote_id=remote_id, unlink=True, detail="deleted", wrote=False)
        if isinstance(error, PermanentError) and is_not_found(reply.messages):
            return Done(work.key, work.seqs, remote_id=remote_id, unlink=True, detail="already absent", wrote=False)
        return Failed(work.key, work.seqs, error)

    async def _retire_lost(self, work: KeyWork, email: str) -> Result:
        done = Done(work.key, work.seqs, unlink=True, detail="the Sell record has no e-mail any more", wrote=False)
        retired = await self._retire_email(email, done)
        if isinstance(retired, Done) and self.config.on_delete == "ignore":
            return Skipped(work.key, work.seqs, f"{NO_EMAIL} (on_delete = ignore: its old contact stays)")
        return retired

    async def _retire(self, upsert: _Upsert, done: Done) -> Result:
        """After a write under a new e-mail that another contact already had: the old e-mail's contact is held by
        no Sell person any more, so it goes the way of a deleted record (on_delete)."""
        assert upsert.retire is not None
        retired = await self._retire_email(upsert.retire, done)
        if not isinstance(retired, Done) or self.config.on_delete == "ignore":
            return retired
        detail = f"{done.detail}; " if done.detail else ""
        return replace(retired, detail=f"{detail}merged into the contact of its new e-mail")

    async def _retire_email(self, email: str, done: Done) -> Result:
        """Apply on_delete to the contact of `email` (no Sell person holds it any more); `done` when it worked."""
        mode = self.config.on_delete
        if mode == "ignore":
            return done
        if mode == "tag":
            tags = list(dict.fromkeys(tag_name(tag) for tag in self.config.tags.deleted))
            body = {**self._auth(), "contact": {"email": email}, "tags": tags}
            method = "contact/upsert"
        else:
            body = {**self._auth(), "email": email}
            method = "contact/delete"
        request = request_text(method, body)
        reply = await self._call(method, body)
        if isinstance(reply, CallError):
            return Failed(done.key, done.seqs, with_request(reply, request))
        error = classify(reply, method=method, request=request, known=(email,))
        if error is not None and not (isinstance(error, PermanentError) and is_not_found(reply.messages)):
            return Failed(done.key, done.seqs, error)
        action = "tagged" if mode == "tag" else "deleted"
        return replace(done, detail=f"{done.detail}; old contact {action}" if done.detail else f"old contact {action}")

    async def _upsert_one(self, upsert: _Upsert) -> dict[str, Result]:
        body = {**self._auth(), **upsert.item}
        request = request_text("contact/upsert", body)
        reply = await self._call("contact/upsert", body)
        if isinstance(reply, CallError):
            return {upsert.key: Failed(upsert.key, upsert.seqs, with_request(reply, request))}
        error = classify(reply, method="contact/upsert", request=request, known=upsert.emails)
        if error is not None:
            return {upsert.key: Failed(upsert.key, upsert.seqs, error)}
        contact_id = reply.body.get("contactId") if reply.body is not None else None
        return {upsert.key: upsert.done(contact_id if isinstance(contact_id, str) else None)}

    async def _upsert_many(self, upserts: Sequence[_Upsert]) -> dict[str, Result]:
        """ONE `contact/batchupsert` for all; refused items are failed and the others sent again."""
        results: dict[str, Result] = {}
        remaining = list(upserts)
        while len(remaining) > 1:
            body = {**self._auth(), "upsertDetails": [upsert.item for upsert in remaining]}
            reply = await self._call("contact/batchupsert", body)
            if isinstance(reply, CallError):
                return results | self._fail_all(remaining, reply)
            emails = [upsert.emails for upsert in remaining]
            known = [email for item in emails for email in item]
            blamed = blamed_items(reply.messages, emails)
            if reply.success:
                ids = reply.body.get("contactIds") if reply.body is not None else None
                by_email = {str(k).lower(): v for k, v in ids.items()} if isinstance(ids, dict) else {}
                unsure: list[_Upsert] = []
                for n, upsert in enumerate(remaining):
                    contact_id = by_email.get(upsert.final_email)
                    if n in blamed:
                        results[upsert.key] = self._item_failed(upsert, blamed[n], reply)
                    elif isinstance(contact_id, str):
                        results[upsert.key] = upsert.done(contact_id)
                    else:
                        unsure.append(upsert)
                return results | await self._one_by_one(unsure)
            error = classify(reply, method="contact/batchupsert", request=None, known=known)
            assert error is not None
            if not isinstance(error, PermanentError):
                return results | self._fail_all(remaining, error)
            if not blamed:
                self._log.info("salesmanago_batch_isolating", items=len(remaining), reason=error.message)
                return results | await self._one_by_one(remaining)
            for n in blamed:
                results[remaining[n].key] = self._item_failed(remaining[n], blamed[n], reply)
            remaining = [upsert for n, upsert in enumerate(remaining) if n not in blamed]
        return results | await self._one_by_one(remaining)

    async def _one_by_one(self, upserts: Sequence[_Upsert]) -> dict[str, Result]:
        results: dict[str, Result] = {}
        for upsert in upserts:
            results.update(await self._upsert_one(upsert))
        return results

    def _batch_request(self, upsert: _Upsert) -> str:
        return request_text("contact/batchupsert", {"owner": self.config.owner, "upsertDetails": [upsert.item]})

    def _item_failed(self, upsert: _Upsert, message: str, reply: Reply) -> Failed:
        error = item_error(
            "contact/batchupsert",
            message,
            request=self._batch_request(upsert),
            response=message,
            known=upsert.emails,
        )
        if reply.status != 200:
            error.http_status = reply.status
        return Failed(upsert.key, upsert.seqs, error)

    def _fail_all(self, upserts: Sequence[_Upsert], error: CallError) -> dict[str, Result]:
        """A batch failed as a whole (transport, throttle, credentials, server): every key gets the error, each
        with only its own item as the request."""
        return {u.key: Failed(u.key, u.seqs, with_request(error, self._batch_request(u))) for u in upserts}

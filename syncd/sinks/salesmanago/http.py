"""The SALESmanago HTTP layer: signed calls through the shared limiter, replies judged by `success` and `message`,
and every failure RAISED as one of syncd's error classes, carrying the request (auth fields removed) for the
dead-letter queue. What a batch reply says about each of its items is read here; what that means for each key is
decided by the caller (salesmanago/upserts.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from syncd.config import SalesmanagoConfig, Secret
from syncd.errors import CallError, PermanentError
from syncd.httpclient import bounded_request, foreign, make_client
from syncd.ratelimit import Limiter
from syncd.sinks.salesmanago.protocol import (
    API,
    Reply,
    auth_fields,
    blamed_items,
    classify,
    contact_id,
    read_reply,
    request_text,
)

BATCH_UPSERT = "contact/batchupsert"


@dataclass(frozen=True, slots=True)
class BatchReply:
    """What a `contact/batchupsert` reply says about its items (a batch refused as a whole is raised instead)."""

    status: int
    contact_ids: Mapping[str, str]  # lower-case e-mail -> contactId, for the items written
    refused: Mapping[int, str]  # item index -> SALESmanago's message about it
    success: bool  # False: nothing was written; the items not refused may be sent again


class SalesmanagoApi:
    """One SALESmanago account's API. Every method raises a CallError (TransientError, RateLimited, PermanentError,
    DestinationError) when the call fails."""

    def __init__(
        self, config: SalesmanagoConfig, secret: Secret, limiter: Limiter, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self._secret = secret
        self._limiter = limiter
        self._clock = clock
        path = urlsplit(config.base_url).path.rstrip("/")
        self._prefix = "/" if path.endswith("/api") else "/api/"
        self._client = make_client(
            config.base_url,
            timeout=config.timeout,
            headers={"Content-Type": "application/json;charset=UTF-8"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, method: str, fields: Mapping[str, Any]) -> tuple[Reply, str]:
        """POST `fields` signed (once the shared limiter lets the call go): the reply, whatever it says, and, when
        it is not a success, the request as a dead letter keeps it (empty for a success: it is written out only
        for a call that failed). A call that got no answer raises TransientError carrying the request."""
        body = {
            **auth_fields(
                client_id=self.config.client_id,
                api_secret=self._secret.value,
                owner=self.config.owner,
                now=self._clock(),
            ),
            **fields,
        }
        await self._limiter.acquire()
        try:
            response = await bounded_request(
                self._client, API, "POST", self._prefix + method, content=json.dumps(body, ensure_ascii=False).encode()
            )
        except CallError as exc:
            exc.request = request_text(method, body)
            raise
        reply = read_reply(response.status_code, response.content, response.headers.get("Retry-After"))
        if reply.status != 429:
            # SALESmanago always answers its JSON envelope: a redirect or anything else (a load balancer's HTML
            # page) is the way to it failing, never a verdict on the contact.
            outside = foreign(API, response, own=reply.body is not None)
            if outside is not None:
                outside.request = request_text(method, body)
                raise outside
        return reply, "" if reply.success else request_text(method, body)

    async def call(self, method: str, fields: Mapping[str, Any], *, known: Sequence[str] = ()) -> Reply:
        """One call that must succeed: its reply, or the classified error raised (`known`: the e-mails the request
        carries, kept out of the error's message)."""
        reply, request = await self.send(method, fields)
        error = classify(reply, method=method, request=request, known=known)
        if error is not None:
            raise error
        return reply

    async def existing(self, emails: Sequence[str]) -> set[str]:
        """Which of `emails` have a live (not deleted) SALESmanago contact: one `contact/basic` call."""
        return set(await self.live(emails))

    async def contact_ids(self, emails: Sequence[str]) -> dict[str, str]:
        """The contactId of the live contact of each of `emails` that has one: one `contact/basic` call."""
        return {email: found for email, found in (await self.live(emails)).items() if found is not None}

    async def live(self, emails: Sequence[str]) -> dict[str, str | None]:
        """lower-case e-mail -> contactId (None when the reply names none) of each live contact `contact/basic`
        lists for `emails`."""
        reply = await self.call("contact/basic", {"email": list(emails)}, known=emails)
        contacts = reply.body.get("contacts") if reply.body is not None else None
        return {
            str(c["email"]).lower(): contact_id(c)
            for c in contacts or []
            if isinstance(c, dict) and isinstance(c.get("email"), str) and not c.get("deleted")
        }

    async def upsert(self, item: Mapping[str, Any], *, known: Sequence[str]) -> str | None:
        """`contact/upsert` of one item: the contactId SALESmanago gives (None when the reply has none)."""
        reply = await self.call("contact/upsert", item, known=known)
        return contact_id(reply.body)

    async def delete(self, email: str) -> bool:
        """`contact/delete` by e-mail: True when deleted, False when SALESmanago holds no live contact with it. What
        a refused delete means is decided by `contact/basic` (does the contact exist?), never by the reply's text,
        which no public source settles; a refusal of a contact that exists is raised."""
        reply, request = await self.send("contact/delete", {"email": email})
        error = classify(reply, method="contact/delete", request=request, known=(email,))
        if error is None:
            return True
        if isinstance(error, PermanentError) and email.lower() not in await self.existing((email,)):
            return False
        raise error

    async def tag(self, email: str, tags: Sequence[str]) -> None:
        """Add `tags` to the contact of `email` (`contact/upsert`). Callers check that it exists first: an upsert
        creates a contact that does not."""
        await self.call("contact/upsert", {"contact": {"email": email}, "tags": list(tags)}, known=(email,))

    def batch_item(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """One `upsertDetails` item as sent: with the call's `owner` in it as well, as SALESmanago's own library
        sends every item."""
        return {**item, "owner": self.config.owner}

    async def batch_upsert(self, items: Sequence[Mapping[str, Any]], emails: Sequence[Sequence[str]]) -> BatchReply:
        """ONE `contact/batchupsert` of `items` (`emails`: each item's e-mails). Items the reply names are
        `refused`, whether SALESmanago wrote the others or refused the call; a call that failed as a whole (no
        item named) raises its error, a PermanentError when the batch itself was refused."""
        reply, _ = await self.send(BATCH_UPSERT, {"upsertDetails": [self.batch_item(item) for item in items]})
        refused = blamed_items(reply.messages, emails)
        if reply.success:
            ids = reply.body.get("contactIds") if reply.body is not None else None
            found = ids.items() if isinstance(ids, dict) else ()
            by_email = {str(email).lower(): contact for email, contact in found if isinstance(contact, str) and contact}
            return BatchReply(reply.status, by_email, refused, success=True)
        error = classify(reply, method=BATCH_UPSERT, request=None, known=[e for item in emails for e in item])
        assert error is not None
        if isinstance(error, PermanentError) and refused:
            return BatchReply(reply.status, {}, refused, success=False)
        raise error

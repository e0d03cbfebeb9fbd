"""The SALESmanago HTTP layer: signed calls through the shared limiter, replies judged by `success` and `message`,
and upserts sent one by one or as ONE `contact/batchupsert`, refused items isolated (a good record is never
dead-lettered for a bad neighbour; both readings of a refused batch are handled)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from syncd.config import SalesmanagoConfig, Secret
from syncd.errors import CallError, PermanentError
from syncd.httpclient import make_client, transport_error
from syncd.logs import get_logger
from syncd.ratelimit import Limiter
from syncd.sinks.salesmanago.protocol import (
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
from syncd.work import Done, Failed, Result


@dataclass(frozen=True, slots=True)
class PlannedUpsert:
    """One key's planned upsert, and what its Done records."""

    key: str
    seqs: tuple[int, ...]
    item: dict[str, Any]
    digest: str | None
    sent: dict[str, Any] | None
    unlink: bool = False
    detail: str = ""
    retire: tuple[str, ...] = ()  # earlier e-mails whose contacts no Sell person holds any more (on_delete)
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


class SalesmanagoApi:
    """One SALESmanago account's API."""

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
            api=API,
            timeout=config.timeout,
            headers={"Content-Type": "application/json;charset=UTF-8"},
        )
        self._log = get_logger(sink="salesmanago")

    async def aclose(self) -> None:
        await self._client.aclose()

    def auth(self) -> dict[str, Any]:
        return auth_fields(
            client_id=self.config.client_id, api_secret=self._secret.value, owner=self.config.owner, now=self._clock()
        )

    async def call(self, method: str, body: dict[str, Any]) -> Reply | CallError:
        """POST one signed body (after the shared limiter lets it go); a transport failure comes back classified."""
        await self._limiter.acquire()
        try:
            response = await self._client.post(
                self._prefix + method, content=json.dumps(body, ensure_ascii=False).encode()
            )
        except httpx.HTTPError as exc:
            return transport_error(API, exc)
        return read_reply(response.status_code, response.content, response.headers.get("Retry-After"))

    async def existing(self, emails: Sequence[str]) -> set[str] | CallError:
        """Which of `emails` have a live (not deleted) SALESmanago contact: one `contact/basic` call."""
        body = {**self.auth(), "email": list(emails)}
        reply = await self.call("contact/basic", body)
        if isinstance(reply, CallError):
            return reply
        error = classify(reply, method="contact/basic", request=None, known=tuple(emails))
        if error is not None:
            return error
        contacts = reply.body.get("contacts") if reply.body is not None else None
        return {
            str(c["email"]).lower()
            for c in contacts or []
            if isinstance(c, dict) and isinstance(c.get("email"), str) and not c.get("deleted")
        }

    async def delete(self, email: str) -> bool | CallError:
        """`contact/delete` by e-mail: True when deleted, False when there was no such contact; a failure carries
        the request (secrets removed)."""
        body = {**self.auth(), "email": email}
        request = request_text("contact/delete", body)
        reply = await self.call("contact/delete", body)
        if isinstance(reply, CallError):
            return with_request(reply, request)
        error = classify(reply, method="contact/delete", request=request, known=(email,))
        if error is None:
            return True
        if isinstance(error, PermanentError) and is_not_found(reply.messages):
            return False
        return error

    async def upsert_one(self, upsert: PlannedUpsert) -> dict[str, Result]:
        body = {**self.auth(), **upsert.item}
        request = request_text("contact/upsert", body)
        reply = await self.call("contact/upsert", body)
        if isinstance(reply, CallError):
            return {upsert.key: Failed(upsert.key, upsert.seqs, with_request(reply, request))}
        error = classify(reply, method="contact/upsert", request=request, known=upsert.emails)
        if error is not None:
            return {upsert.key: Failed(upsert.key, upsert.seqs, error)}
        contact_id = reply.body.get("contactId") if reply.body is not None else None
        return {upsert.key: upsert.done(contact_id if isinstance(contact_id, str) else None)}

    async def upsert_many(self, upserts: Sequence[PlannedUpsert]) -> dict[str, Result]:
        """ONE `contact/batchupsert` for all; refused items are failed and the others sent again."""
        results: dict[str, Result] = {}
        remaining = list(upserts)
        while len(remaining) > 1:
            body = {**self.auth(), "upsertDetails": [upsert.item for upsert in remaining]}
            reply = await self.call("contact/batchupsert", body)
            if isinstance(reply, CallError):
                return results | self._fail_all(remaining, reply)
            emails = [upsert.emails for upsert in remaining]
            known = [email for item in emails for email in item]
            blamed = blamed_items(reply.messages, emails)
            if reply.success:
                ids = reply.body.get("contactIds") if reply.body is not None else None
                by_email = {str(k).lower(): v for k, v in ids.items()} if isinstance(ids, dict) else {}
                unsure: list[PlannedUpsert] = []
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

    async def _one_by_one(self, upserts: Sequence[PlannedUpsert]) -> dict[str, Result]:
        results: dict[str, Result] = {}
        for upsert in upserts:
            results.update(await self.upsert_one(upsert))
        return results

    def _batch_request(self, upsert: PlannedUpsert) -> str:
        return request_text("contact/batchupsert", {"owner": self.config.owner, "upsertDetails": [upsert.item]})

    def _item_failed(self, upsert: PlannedUpsert, message: str, reply: Reply) -> Failed:
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

    def _fail_all(self, upserts: Sequence[PlannedUpsert], error: CallError) -> dict[str, Result]:
        """A batch failed as a whole (transport, throttle, credentials, server): every key gets the error, each
        with only its own item as the request."""
        return {u.key: Failed(u.key, u.seqs, with_request(error, self._batch_request(u))) for u in upserts}

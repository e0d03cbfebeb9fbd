"""SALESmanago's request signing and the reading of its replies into syncd's error classes. Pure.

Replies are judged by `success` and `message`, never by the HTTP status alone (SALESmanago answers most refusals
with HTTP 200 and `success: false`): "Not authenticated…" is destination-wide; a limit or throttling message (and
429/503) is throttling; other 5xx are transient; `success: false` about the data is permanent for that record;
HTTP 400 is permanent.

Messages SALESmanago returns quote e-mail addresses ("Invalid email: ada@…"). Error messages end up in logs and in
the dead-letter reason, so every address in them is replaced by `<e-mail>`; the full reply goes to the error's
`response` and the request to its `request` (both stored with the dead letter, never logged), auth fields removed.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from syncd.errors import CallError, DestinationError, PermanentError, RateLimited, TransientError
from syncd.httpclient import clip

API = "SALESmanago"
AUTH_FIELDS = ("clientId", "apiKey", "sha", "requestTime")
NOT_AUTHENTICATED = "not authenticated"
_THROTTLE = re.compile(r"calls? limit|rate limit|requests? limit|limit exceeded|too many requests|throttl", re.I)
_ADDRESS_CHAR = r"[^\s:;,<>()\[\]\"']"
# Anything with an @ and at least one address character beside it (a lone "@" in prose is not an address).
_EMAIL = re.compile(rf"{_ADDRESS_CHAR}+@{_ADDRESS_CHAR}*|@{_ADDRESS_CHAR}+")
_ITEM = re.compile(r"^\s*upsertDetails\[(\d+)\]")


def sign(api_key: str, client_id: str, api_secret: str) -> str:
    """`sha`: lowercase hex SHA-1 of apiKey + clientId + apiSecret."""
    return hashlib.sha1((api_key + client_id + api_secret).encode()).hexdigest()


def auth_fields(*, client_id: str, api_secret: str, owner: str, now: float) -> dict[str, Any]:
    """The top-level fields every body carries: a fresh random apiKey and its signature, the time in ms, the owner."""
    api_key = secrets.token_hex(16)
    return {
        "clientId": client_id,
        "apiKey": api_key,
        "sha": sign(api_key, client_id, api_secret),
        "requestTime": int(now * 1000),
        "owner": owner,
    }


def redact(text: str, known: Sequence[str] = ()) -> str:
    """`text` with every e-mail address replaced by `<e-mail>` (for messages that may be logged): the `known`
    addresses of the request (also malformed ones), and anything else with an @ in it."""
    for email in sorted({e for e in known if e}, key=len, reverse=True):
        text = re.sub(re.escape(email), "<e-mail>", text, flags=re.IGNORECASE)
    return _EMAIL.sub("<e-mail>", text)


def request_text(method: str, body: Mapping[str, Any]) -> str:
    """The request as stored with a dead letter: the method and the body without its auth fields."""
    clean = {key: value for key, value in body.items() if key not in AUTH_FIELDS}
    return json.dumps({"method": method, "body": clean}, ensure_ascii=False, sort_keys=True)


def retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True, slots=True)
class Reply:
    """A SALESmanago reply: the HTTP status, the parsed JSON body (None when not JSON), and the raw text."""

    status: int
    body: dict[str, Any] | None
    text: str
    retry_after: float | None = None

    @property
    def success(self) -> bool:
        return self.status == 200 and self.body is not None and self.body.get("success") is True

    @property
    def messages(self) -> list[str]:
        raw = self.body.get("message") if self.body is not None else None
        if isinstance(raw, str):
            return [raw] if raw else []
        if isinstance(raw, list):
            return [str(m) for m in raw if m not in (None, "")]
        return []


def read_reply(status: int, content: bytes, retry_after_header: str | None) -> Reply:
    text = content.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = None
    return Reply(status, parsed if isinstance(parsed, dict) else None, text, retry_after(retry_after_header))


def _summary(reply: Reply, known: Sequence[str]) -> str:
    joined = "; ".join(reply.messages)
    return clip(redact(joined or reply.text or f"HTTP {reply.status}", known), 300)


def is_auth_failure(messages: Sequence[str]) -> bool:
    return any(NOT_AUTHENTICATED in message.lower() for message in messages)


def is_throttle(messages: Sequence[str]) -> bool:
    return any(_THROTTLE.search(message) for message in messages)


def classify(reply: Reply, *, method: str, request: str | None, known: Sequence[str] = ()) -> CallError | None:
    """The error a reply amounts to (None when it is a success). `success: false` about the data, and HTTP 400,
    are PermanentError for the record the call was about; callers with several records isolate first. `known`
    are the e-mails the request carried (kept out of the message)."""
    if reply.success:
        return None
    status, messages = reply.status, reply.messages
    detail = _summary(reply, known)
    response = clip(reply.text, 2000)
    where = f"{API} {method}"
    common: dict[str, Any] = {"http_status": status, "request": request, "response": response}
    if is_auth_failure(messages) or status in (401, 403):
        return DestinationError(f"{where}: credentials refused: {detail}", **common)
    if status in (429, 503) or is_throttle(messages):
        return RateLimited(f"{where}: throttled: {detail}", retry_after=reply.retry_after, **common)
    if status >= 500 or status in (408, 425):
        return TransientError(f"{where} answered {status}: {detail}", retry_after=reply.retry_after, **common)
    if status == 404:
        return DestinationError(
            f"{where} answered 404 (no such API method here: check base_url, the account's instance): {detail}",
            **common,
        )
    if status == 200 and reply.body is None:
        return TransientError(f"{where} answered 200 without a JSON reply: {detail}", **common)
    if status == 200:
        return PermanentError(f"{where} refused the contact: {detail}", **common)
    return PermanentError(f"{where} answered {status}: {detail}", **common)


def blamed_items(messages: Sequence[str], emails: Sequence[Sequence[str]]) -> dict[int, str]:
    """Which items of a batch the reply's messages name, by index, with the message about each. `emails` holds
    each item's e-mails (its `contact.email`, and its `newEmail` when renaming).

    Two forms are read: `upsertDetails[n] <e-mail>: <reason>` (the index, checked against the item's e-mails when
    the message quotes one), and any message quoting the e-mail of exactly one item."""
    lowered = [{email.lower() for email in item} for item in emails]
    blamed: dict[int, str] = {}
    for message in messages:
        quoted = {m.lower().rstrip(".") for m in _EMAIL.findall(message)}
        indexed = _ITEM.match(message)
        if indexed is not None:
            n = int(indexed.group(1))
            if 0 <= n < len(emails) and (not quoted or quoted & lowered[n]):
                blamed.setdefault(n, message)
                continue
        named = [n for n, item in enumerate(lowered) if quoted & item]
        if len(named) == 1:
            blamed.setdefault(named[0], message)
    return blamed


def item_error(method: str, message: str, *, request: str, response: str, known: Sequence[str]) -> PermanentError:
    """The PermanentError of one refused batch item (`known`: its e-mails, kept out of the message)."""
    detail = clip(redact(_ITEM.sub("", message).lstrip(" :"), known), 300)
    detail = re.sub(r"^<e-mail>:\s*", "", detail)
    return PermanentError(
        f"{API} {method} refused the contact: {detail}", http_status=200, request=request, response=response
    )


def with_request(error: CallError, request: str | None) -> CallError:
    """A copy of `error` (same class) carrying `request`: one record's part of a call that failed as a whole."""
    return type(error)(
        error.message,
        http_status=error.http_status,
        retry_after=error.retry_after,
        request=request,
        response=error.response,
    )


def contact_id(entry: Mapping[str, Any] | None) -> str | None:
    """The contact id a reply or a listed contact carries: `contactId` (upsert, hasContact, contact/basic) or `id`
    (contact/list, contact/listById); None when it carries neither as text (hasContact's null for no contact)."""
    if entry is None:
        return None
    for key in ("contactId", "id"):
        value = entry.get(key)
        if isinstance(value, str) and value:
            return value
    return None

"""Calls to the Ontraport REST API: authentication, the shared limiter, rate-limit headers, and every failure
classified into syncd's error classes. Ontraport authenticates by the `Api-Key` and `Api-Appid` headers and answers
a success as the envelope `{"code": 0, "data": ..., "account_id": ...}`.

- Every call waits on the account's limiter first, and every answer's `X-Rate-Limit-Remaining` /
  `X-Rate-Limit-Reset` (seconds until the window resets; an epoch time is read as one) feeds `limiter.observe`,
  so the account pauses (never longer than max_backoff) before Ontraport has to refuse anything; a 429 is
  `RateLimited` with `retry_after` = the reset.
- Error bodies are short plain text (`Object not found`) or, as the reference claims, a JSON envelope; both read.
- 401/403 → DestinationError; 422 (invalid e-mail), 400 and other 4xx → PermanentError; 5xx, timeouts, dropped
  or refused connections → TransientError.
- "Object not found" (an unknown record) is recognised by its text on any 4xx, never by the status: Ontraport
  answers it with 404 today and answered getByEmail with 400 before 2022, and a 404 without that text (a proxy's
  page for a wrong base URL) is no answer about a record. A caller that can handle a missing record asks for it
  (`missing_ok`) and gets an Answer with `missing` set; for anyone else it is a PermanentError like any 4xx.
- Errors carry the request body (never the headers, where the credentials travel) for the dead-letter queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from syncd.config import OntraportConfig
from syncd.errors import CallError, PermanentError, TransientError
from syncd.httpclient import bounded_request, clip, foreign, is_html, make_client, status_error
from syncd.ratelimit import Limiter, reset_seconds

API = "Ontraport"


@dataclass(frozen=True, slots=True)
class Answer:
    """A call's answer: its status and, on success, the envelope's `data` (None when there is none)."""

    status: int
    data: Any = None
    detail: str = ""  # why a record is missing ("Object not found")
    missing: bool = False  # Ontraport says the record does not exist (asked for with `missing_ok`)


class OntraportApi:
    """One account's HTTP client."""

    def __init__(self, config: OntraportConfig, limiter: Limiter) -> None:
        self._limiter = limiter
        key = config.api_key.value if config.api_key is not None else ""
        self._client = make_client(
            config.base_url,
            timeout=config.timeout,
            headers={"Api-Key": key, "Api-Appid": config.app_id},
        )

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        missing_ok: bool = False,
    ) -> Answer:
        """One call: its `data` on success; with `missing_ok`, an Answer with `missing` set when Ontraport says the
        record does not exist; any other failure raised as a classified CallError."""
        await self._limiter.acquire()
        call = self._limiter.started
        try:
            response = await bounded_request(self._client, API, method, path, params=params, json=body)
        except CallError as exc:
            exc.request = request_text(body, params)
            raise
        self._observe(response, call)
        status = response.status_code
        if status == 200 and not is_html(response):
            try:
                return Answer(200, read_data(response))
            except CallError as exc:
                exc.request = request_text(body, params)
                raise
        # The request as a dead letter keeps it, written out only for a call that failed.
        sent = request_text(body, params)
        if status != 429:
            # A redirect, or a load balancer's HTML page, is not Ontraport speaking: never "not found", never a
            # verdict on the record (checked before anything is read as missing).
            outside = foreign(API, response, own=True, request=sent)
            if outside is not None:
                raise outside
        detail = error_detail(response)
        if missing_ok and is_not_found(status, detail):
            return Answer(status, detail=detail, missing=True)
        reset = _number(response.headers.get("X-Rate-Limit-Reset"))
        reset = reset_seconds(reset, time.time()) if reset is not None else None
        raise classify(status, detail, reset=reset, request=sent)

    def _observe(self, response: httpx.Response, call: int) -> None:
        remaining = _number(response.headers.get("X-Rate-Limit-Remaining"))
        reset = _number(response.headers.get("X-Rate-Limit-Reset"))
        self._limiter.observe(int(remaining) if remaining is not None else None, reset, call=call)

    async def aclose(self) -> None:
        await self._client.aclose()


NOT_FOUND = "object not found"
_NOT_ABOUT_RECORDS = frozenset({401, 403, 408, 429})  # credentials, timeouts and throttling say nothing of a record


def is_not_found(status: int, detail: str) -> bool:
    """Whether a refusal says the record it names does not exist: `Object not found` on any 4xx but those about
    credentials, timeouts or throttling."""
    return 400 <= status < 500 and status not in _NOT_ABOUT_RECORDS and NOT_FOUND in detail.lower()


def classify(status: int, detail: str, *, reset: float | None, request: str) -> CallError:
    """The error class of a refused call."""
    if status == 422 and not detail:
        detail = "Invalid email address"
    return status_error(API, status, detail, retry_after=reset if status == 429 else None, request=request)


def request_text(body: Mapping[str, Any] | None, params: Mapping[str, str] | None) -> str:
    """A call's request as errors and dead letters keep it: its body, else its query (never the headers, where the
    credentials travel)."""
    return json.dumps(body if body is not None else dict(params or {}), ensure_ascii=False)


def read_data(response: httpx.Response) -> Any:
    """The `data` of a success envelope (`{"code": 0, "data": ..., "account_id": 50}`); a refusal inside it is
    raised without the request (the caller adds it)."""
    try:
        body = json.loads(response.content)
    except ValueError:
        raise TransientError(f"{API} answered 200 with a body that is not JSON", http_status=200) from None
    if not isinstance(body, dict):
        raise TransientError(f"{API} answered 200 without its envelope", http_status=200)
    code = body.get("code", 0)
    if str(code) != "0":
        message = body.get("message") or body.get("data") or f"code {code}"
        raise PermanentError(f"{API} refused the call: {clip(str(message), 200)}", http_status=200)
    return body.get("data")


def error_detail(response: httpx.Response) -> str:
    """The reason in an error body: Ontraport's plain text, or the message of a JSON envelope."""
    text = response.text.strip()
    if not text:
        return response.reason_phrase
    try:
        body = json.loads(text)
    except ValueError:
        return clip(text, 200)
    if isinstance(body, dict):
        for key in ("message", "error", "data"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return clip(value, 200)
    return clip(text, 200)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if number >= 0 else None

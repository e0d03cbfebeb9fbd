"""Sell's Core API (v2): reads (one GET per list page or record) and the writes of feedback (`PUT` of a lead or
contact), each through the account's limiter (the one the Firehose pollers share: 10 requests a second per token),
every failure classified like the Firehose's (never a silent skip)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from syncd.config import SellConfig
from syncd.errors import CallError
from syncd.httpclient import bounded_request, foreign, make_client, status_error
from syncd.ratelimit import Limiter
from syncd.sell.client import API, THROTTLE, describe, is_envelope


@dataclass(frozen=True, slots=True)
class Answer:
    """A v2 response: its body, and Sell's `Date` header (when it served it)."""

    body: bytes
    date: str | None


class CoreApi:
    """Calls of the Core API with the account's Bearer token, each after a slot of the shared limiter (`slot`: how
    a caller takes one instead, e.g. only what the pollers leave)."""

    def __init__(
        self, config: SellConfig, limiter: Limiter, *, slot: Callable[[], Awaitable[Any]] | None = None
    ) -> None:
        self._limiter = limiter
        self._slot = slot or limiter.acquire
        self._client = make_client(
            config.base_url,
            timeout=config.timeout,
            headers={"Authorization": f"Bearer {config.token.value}"},
        )

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Answer:
        """`GET /v2/...`: the body of a 200; any other answer raised as a classified CallError (429 and 409
        throttle, 401/403 are the account's, 5xx, timeouts (the whole call, connect to last byte), redirects and
        answers that are not Sell's own transient, other 4xx permanent)."""
        await self._slot()
        response = await bounded_request(self._client, API, "GET", path, params=dict(params or {}))
        if response.status_code == 200:
            return Answer(response.content, response.headers.get("Date"))
        raise classify(response)

    async def put(self, path: str, data: Mapping[str, Any]) -> Answer:
        """`PUT /v2/...` with `{"data": data}`: the body of a 200 (the record as written); any other answer raised
        like a GET's, a refusal (422) naming each problem's attribute (`field`)."""
        await self._slot()
        body = msgspec.json.encode({"data": data})
        headers = {"Content-Type": "application/json"}
        response = await bounded_request(self._client, API, "PUT", path, content=body, headers=headers)
        if response.status_code == 200:
            return Answer(response.content, response.headers.get("Date"))
        raise classify(response)

    async def aclose(self) -> None:
        await self._client.aclose()


def classify(response: httpx.Response) -> CallError:
    """A refused Core API call as one of syncd's error classes (a proxy's redirect or HTML page says nothing about
    the record or the token: transient)."""
    if response.status_code not in THROTTLE:
        outside = foreign(API, response, own=is_envelope(response))
        if outside is not None:
            return outside
    return status_error(API, response.status_code, describe(response), throttle=THROTTLE)
